"""paged_attention on a GPU (Proto 3): FP64 reference, bit-exactness against
the contiguous path, page swaps, shared-memory budget."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import cuda, reference
from attention_proto.ops import paged
from tolerance import FLOOR, to_dtype

pytestmark = pytest.mark.gpu


def _problem(rng, lens, *, h=8, kvh=2, d=128, dtype="bfloat16", n=None):
    b = len(lens)
    n = n or max(lens)
    q = to_dtype(rng.standard_normal((b, h, d)).astype(np.float32), dtype)
    k = to_dtype(rng.standard_normal((b, kvh, n, d)).astype(np.float32), dtype)
    v = to_dtype(rng.standard_normal((b, kvh, n, d)).astype(np.float32), dtype)
    return q, k, v, np.asarray(lens, dtype=np.int32)


def _check(out, q, k_pages, v_pages, table, lens, dtype):
    out = np.asarray(out).astype(np.float32)
    assert not np.isnan(out).any()
    ref = reference.paged_decode(q, k_pages, v_pages, table, lens)
    err = float(np.abs(out - ref).max())
    # Decode output is one softmax-weighted average of V rows in float32, rounded
    # to the dtype once: a few units of the dtype's rounding of |out| <= max|V|.
    eps = {"bfloat16": 2**-8, "float16": 2**-11}[dtype]
    assert err <= 4 * eps * float(np.abs(ref).max()) + FLOOR[dtype], err


def _run(q, kp, vp, table, lens, scores, **kw):
    return paged.Prepared(q, kp, vp, table, lens, scores=scores, **kw)()


@pytest.mark.parametrize("scores", paged.SCORE_PATHS)
@pytest.mark.parametrize("page_size", paged.PAGE_SIZES)
@pytest.mark.parametrize("d", paged.HEAD_DIMS)
def test_fragmented_tables_match_fp64(rng, page_size, d, scores):
    lens = [1, 17, page_size - 1 if page_size > 1 else 1, page_size + 1, 1000, 4097]
    q, k, v, lens = _problem(rng, lens, d=d)
    kp, vp, table = ap.build_page_pool(
        k, v, lens, page_size, fragment=True, extra_pages=5, seed=page_size
    )
    for partition in (None, 256, 64, 40):
        out = _run(q, kp, vp, table, lens, scores, partition_size=partition)
        _check(out, q, kp, vp, table, lens, "bfloat16")


@pytest.mark.small
@pytest.mark.parametrize(
    "group,scores", [(1, "lanes"), (2, "mma"), (3, "lanes"), (3, "mma"), (4, "mma"), (8, "mma")]
)
def test_small_cases_and_gqa_groups(rng, group, scores):
    q, k, v, lens = _problem(rng, [1, 9, 40], h=2 * group, kvh=2, d=64, dtype="float16")
    kp, vp, table = ap.build_page_pool(k, v, lens, 8, fragment=True, extra_pages=2)
    for partition in (None, 16):
        out = _run(q, kp, vp, table, lens, scores, partition_size=partition)
        _check(out, q, kp, vp, table, lens, "float16")


def test_default_scores_path_is_mma_for_gqa_only(rng):
    q, k, v, lens = _problem(rng, [5], h=4, kvh=2, d=64)
    kp, vp, table = ap.build_page_pool(k, v, lens, 8)
    assert paged.Prepared(q, kp, vp, table, lens).scores == "mma"
    q1 = q[:, :2]
    assert paged.Prepared(q1, kp, vp, table, lens).scores == "lanes"


@pytest.mark.parametrize("scores", paged.SCORE_PATHS)
def test_bit_exact_against_contiguous_and_page_swaps(rng, scores):
    q, k, v, lens = _problem(rng, [3000, 517, 4097, 64])
    contiguous = paged.decode_contiguous(q, k, v, lens, scores=scores)
    kp, vp, table = ap.build_page_pool(k, v, lens, 16, fragment=False)
    assert contiguous.tobytes() == _run(q, kp, vp, table, lens, scores).tobytes()
    kf, vf, tf = ap.build_page_pool(k, v, lens, 16, fragment=True, extra_pages=7, seed=3)
    fragmented = _run(q, kf, vf, tf, lens, scores)
    assert fragmented.tobytes() == contiguous.tobytes()
    # Swap two physical pages and fix the table: same bits.
    a, b = int(tf[0, 0]), int(tf[2, 5])
    kf[[a, b]], vf[[a, b]] = kf[[b, a]], vf[[b, a]]
    tf = np.where(tf == a, -2, tf)
    tf = np.where(tf == b, a, tf)
    tf = np.where(tf == -2, b, tf).astype(np.int32)
    assert _run(q, kf, vf, tf, lens, scores).tobytes() == contiguous.tobytes()


def test_torch_inputs_stay_on_device(rng):
    torch = pytest.importorskip("torch")
    q, k, v, lens = _problem(rng, [100, 700])
    kp, vp, table = ap.build_page_pool(k, v, lens, 32, fragment=True)
    as_t = [
        torch.from_numpy(np.asarray(x).view(np.int16)).cuda().view(torch.bfloat16)
        for x in (q, kp, vp)
    ]
    out = ap.paged_attention(*as_t, torch.from_numpy(table).cuda(), torch.from_numpy(lens).cuda())
    assert isinstance(out, torch.Tensor) and out.is_cuda
    _check(out.float().cpu().numpy(), q, kp, vp, table, lens, "bfloat16")


@pytest.mark.parametrize("scores", paged.SCORE_PATHS)
@pytest.mark.parametrize("page_size", paged.PAGE_SIZES)
@pytest.mark.parametrize("d", paged.HEAD_DIMS)
def test_shared_memory_fits_the_device(rng, page_size, d, scores):
    q, k, v, lens = _problem(rng, [2 * page_size + 1, 700], h=32, kvh=4, d=d)
    kp, vp, table = ap.build_page_pool(k, v, lens, page_size)
    prep = paged.Prepared(q, kp, vp, table, lens, partition_size=256, scores=scores)
    smem = prep.shared_bytes()
    print(f"page_size={page_size} d={d} group=8 {scores}: {smem} bytes of shared memory")
    assert 0 < smem <= cuda.properties()["shared_memory_per_block_optin"]
    if scores == "lanes":
        assert smem <= 48 * 1024  # static shared memory needs no opt-in
    else:
        assert smem == paged.mma_shared_bytes(d) and prep.phase1.static_shared_bytes == 0
        # Two CTAs per SM keep enough K/V bytes in flight (the benchmark's design).
        assert prep.phase1.occupancy(paged.WARPS * 32, smem) >= 2


def test_bad_device_table_values_are_caught(rng):
    # validate="host" checks before launch; the default checks on the GPU and
    # raises at check_errors() (tests/test_gpu_call_path.py covers the rest).
    torch = pytest.importorskip("torch")
    q, k, v, lens = _problem(rng, [40, 40], d=64)
    kp, vp, table = ap.build_page_pool(k, v, lens, 8)
    table[1, 2] = kp.shape[0] + 3
    t = [
        torch.from_numpy(np.asarray(x).view(np.int16)).cuda().view(torch.bfloat16)
        for x in (q, kp, vp)
    ]
    args = (*t, torch.from_numpy(table).cuda(), torch.from_numpy(lens).cuda())
    with pytest.raises(ValueError, match=r"page_table\[1, 2\] = \d+ is outside the pool"):
        ap.paged_attention(*args, validate="host")
    ap.paged_attention(*args)
    with pytest.raises(ap.DeviceInputError, match=r"page_table\[1, 2\] = \d+ is outside"):
        ap.check_errors()

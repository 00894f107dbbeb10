"""flash_attention on a GPU against the FP64 reference (Proto 1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attention_proto as ap
from attention_proto.ops import flash
from tolerance import assert_close_to_reference, to_dtype

pytestmark = pytest.mark.gpu
LENGTHS = [1, 17, 97, 128, 1000, 1025, 4097]


def _inputs(rng, b, h, nq, nk, d, dtype, kvh=None, scale=1.0):
    kvh = kvh or h
    return tuple(
        to_dtype(rng.standard_normal(s).astype(np.float32) * scale, dtype)
        for s in ((b, h, nq, d), (b, kvh, nk, d), (b, kvh, nk, d))
    )


@settings(max_examples=30, deadline=None)
@given(
    b=st.sampled_from([1, 2]),
    h=st.sampled_from([1, 2, 3]),
    nq=st.sampled_from(LENGTHS),
    nk=st.sampled_from(LENGTHS),
    d=st.sampled_from(flash.HEAD_DIMS),
    causal=st.booleans(),
    dtype=st.sampled_from(flash.DTYPES),
    seed=st.integers(0, 2**31),
)
def test_matches_fp64_on_drawn_shapes(b, h, nq, nk, d, causal, dtype, seed):
    if b * h * nq * nk > 2**25:  # keep the FP64 reference under a second or two
        h, b = 1, 1
    rng = np.random.default_rng(seed)
    q, k, v = _inputs(rng, b, h, nq, nk, d, dtype)
    out, lse = ap.flash_attention(q, k, v, causal=causal, return_lse=True)
    assert out.dtype == q.dtype and out.shape == q.shape
    assert_close_to_reference(out, q, k, v, dtype, causal=causal)
    _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "d,config",
    [(d, c) for d in flash.HEAD_DIMS for c in flash.sweep(d)],
    ids=lambda x: x.label() if hasattr(x, "label") else f"d{x}",
)
@pytest.mark.parametrize("causal", [False, True])
def test_every_sweep_config_on_odd_shapes(rng, config, d, causal):
    # Tile +- 1 on both axes: partial query and key blocks, diagonal crossings.
    nq, nk = config.block_m + 1, 2 * config.block_n - 1
    q, k, v = _inputs(rng, 1, 2, nq, nk, d, "bfloat16")
    out = ap.flash_attention(q, k, v, causal=causal, config=config)
    assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal)
    q, k, v = _inputs(rng, 1, 1, config.block_m - 1, config.block_n + 1, d, "float16")
    out = ap.flash_attention(q, k, v, causal=causal, config=config)
    assert_close_to_reference(out, q, k, v, "float16", causal=causal)


@pytest.mark.small
@pytest.mark.parametrize("causal", [False, True])
def test_small_shapes_for_the_sanitizers(rng, causal):
    for nq, nk in [(1, 1), (17, 33), (65, 17)]:
        q, k, v = _inputs(rng, 1, 2, nq, nk, 64, "bfloat16")
        for config in (flash.FlashConfig(64, 32, 2, 4), flash.FlashConfig(64, 32, 2, 2)):
            out = ap.flash_attention(q, k, v, causal=causal, config=config)
            assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal)


def test_gqa_and_logits_scaled_by_100(rng):
    q, k, v = _inputs(rng, 2, 6, 300, 513, 128, "bfloat16", kvh=2)
    q10 = to_dtype(np.asarray(q, np.float32) * 10, "bfloat16")
    k10 = to_dtype(np.asarray(k, np.float32) * 10, "bfloat16")
    for causal in (False, True):
        out = ap.flash_attention(q10, k10, v, causal=causal)
        assert_close_to_reference(out, q10, k10, v, "bfloat16", causal=causal)


def test_rows_without_keys_are_zero_with_neg_inf_lse(rng):
    q, k, v = _inputs(rng, 1, 1, 200, 70, 64, "float16")
    out, lse = ap.flash_attention(q, k, v, causal=True, return_lse=True)
    assert np.all(out[0, 0, :130] == 0) and np.all(np.isneginf(lse[0, 0, :130]))
    assert_close_to_reference(out, q, k, v, "float16", causal=True)


def test_two_runs_are_bitwise_equal(rng):
    q, k, v = _inputs(rng, 2, 4, 1000, 1025, 128, "bfloat16")
    a = ap.flash_attention(q, k, v, causal=True)
    b = ap.flash_attention(q, k, v, causal=True)
    assert a.tobytes() == b.tobytes()


def test_strided_torch_inputs_from_packed_qkv():
    torch = pytest.importorskip("torch")
    qkv = torch.randn(2, 1025, 3, 4, 128, device="cuda", dtype=torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous()
    out = ap.flash_attention(q, k, v, causal=True)
    assert isinstance(out, torch.Tensor)
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
    assert_close_to_reference(out.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=True)


def test_offsets_beyond_int32():
    torch = pytest.importorskip("torch")
    # Batch 1 starts 2^31 + 2^20 elements into the allocation: only 64-bit
    # offsets reach it. The data in between is never read.
    n, d, h = 256, 64, 2
    stride_b = 2**31 + 2**20
    big = torch.empty(stride_b + h * n * d, device="cuda", dtype=torch.float16)
    x = torch.as_strided(big, (2, h, n, d), (stride_b, n * d, d, 1))
    x.normal_()
    out = ap.flash_attention(x, x, x)
    xn = x[1:].float().cpu().numpy()
    assert_close_to_reference(out[1:].float().cpu().numpy(), xn, xn, xn, "float16")
    del big, x, out
    torch.cuda.empty_cache()


def test_unaligned_strides_are_rejected():
    torch = pytest.importorskip("torch")
    base = torch.randn(1, 2, 17, 68, device="cuda", dtype=torch.float16)
    q = base[..., :64]  # row stride 68: not a multiple of 8 elements
    with pytest.raises(ValueError, match="16-byte aligned"):
        ap.flash_attention(q, q, q)


def test_shared_memory_budget_is_checked():
    q = np.zeros((1, 1, 4, 128), np.float16)
    with pytest.raises(ValueError, match="bytes of shared memory"):
        ap.flash_attention(q, q, q, config=flash.FlashConfig(512, 256, 2, 16))


@pytest.mark.parametrize("causal", [False, True])
def test_stitch_modes_match_reference_and_mode_0_is_proto_1(rng, causal):
    q, k, v = _inputs(rng, 2, 3, 333, 517, 128, "bfloat16")
    proto1 = ap.flash_attention(q, k, v, causal=causal)
    outs = {}
    for mode in flash.STITCH_MODES:
        outs[mode] = flash.Prepared(q, k, v, causal=causal, stitch_mode=mode)()
        assert_close_to_reference(outs[mode], q, k, v, "bfloat16", causal=causal)
    assert outs[0].tobytes() == proto1.tobytes()
    with pytest.raises(ValueError, match="stitch_mode must be one of"):
        flash.Prepared(q, k, v, stitch_mode=3)

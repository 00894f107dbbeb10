"""The Hopper wgmma flash kernel (Proto 1, ablation step (a)) on a GPU: the
one-wgmma layout probe bit for bit, then the same FP64-reference checks as
flash_attention's. Outputs start as NaN (conftest sets debug.poison_outputs),
so a row the kernel forgets to write fails. Needs an sm_90a GPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import buffers, cuda, runtime, sass
from attention_proto.ops import flash_hopper
from tolerance import assert_close_to_reference, attention_inputs, to_dtype

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("hopper_only")]


_inputs = attention_inputs


def _run(q, k, v, *, causal=False, return_lse=False, config=None):
    return flash_hopper.Prepared(q, k, v, causal=causal, return_lse=return_lse, config=config)()


@pytest.mark.small
@pytest.mark.parametrize("dtype", flash_hopper.DTYPES)
def test_one_wgmma_on_known_data(rng, dtype):
    # Entries in {-1, 0, 1}: S = A B^T has |S| <= 128 (exact in bf16 and fp16),
    # O = S V has |O| <= 8192 (exact in f32), so any layout error is visible.
    a, b, v = (rng.integers(-1, 2, (64, 128)).astype(np.float32) for _ in range(3))
    bufs = [buffers.alloc_buffer_with_data(to_dtype(x, dtype)) for x in (a, b, v)]
    s_out, o_out = buffers.alloc_buffer(4 * 64 * 64), buffers.alloc_buffer(4 * 64 * 128)
    buffers.poison(s_out, "float32")
    buffers.poison(o_out, "float32")
    pipe = runtime.pipeline(flash_hopper.probe_spec(dtype))
    addresses = [x.address for x in (*bufs, s_out, o_out)]
    pipe.launch([1, 1, 1], [128, 1, 1], 0, flash_hopper.probe_args(*addresses))
    s = a @ b.T
    np.testing.assert_array_equal(buffers.read_buffer(s_out, np.float32, (64, 64)), s)
    np.testing.assert_array_equal(buffers.read_buffer(o_out, np.float32, (64, 128)), s @ v)


# One small case per kernel shape the dispatch runs or the ablation names, for
# the sanitizers (bench/sanitize.sh runs racecheck, synccheck and initcheck on
# the small tests): (head dim, config, alibi, rope).
SANITIZED = [
    *((64, flash_hopper.HopperConfig(128, 64, step), False, 0) for step in (1, 2, 3)),
    (128, flash_hopper.HopperConfig(128, 128, 4), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True), False, 0),
    (128, flash_hopper.HopperConfig(128, 192, 5, persistent=True), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True, alibi_mma=True), True, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, True, o_tma=1, alibi_start=True), True, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True), False, 1),
    (128, flash_hopper.HopperConfig(128, 192, 5), False, 2),
    (64, flash_hopper.HopperConfig(192, 128, 5, persistent=True), False, 0),
    (64, flash_hopper.HopperConfig(192, 128, 5, persistent=True, alibi_mma=True), True, 0),
    (64, flash_hopper.HopperConfig(192, 128, 5), False, 1),
    (128, flash_hopper.HopperConfig(128, 176, 5, persistent=True, alibi_mma=True), True, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, alibi_mma=True), True, 1),
    (128, flash_hopper.HopperConfig(128, 176, 5, alibi_mma=True), True, 2),
    (64, flash_hopper.HopperConfig(192, 128, 5, alibi_mma=True, rope_tables=True), True, 1),
    (64, flash_hopper.HopperConfig(128, 64, 3), True, 1),
    # ALiBi's dispatched key orders (one turn; the diagonal's tile, then ascending).
    (
        128,
        flash_hopper.HopperConfig(128, 128, 5, True, o_tma=1, alibi_mma=True, key_order=2),
        True,
        0,
    ),
    (
        128,
        flash_hopper.HopperConfig(128, 128, 5, True, o_tma=1, alibi_start=True, key_order=3),
        True,
        0,
    ),
    (128, flash_hopper.HopperConfig(128, 128, 2), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True, rope_tables=True), False, 1),
    (64, flash_hopper.HopperConfig(192, 128, 5, rope_tables=True), False, 2),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1), False, 0),
    (64, flash_hopper.HopperConfig(192, 128, 5, persistent=True, o_tma=1), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 4, o_tma=1), False, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1), True, 0),
    (128, flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1), False, 1),
    (128, flash_hopper.HopperConfig(128, 192, 5, persistent=True, early_q=True), False, 0),
    (64, flash_hopper.HopperConfig(192, 128, 5, persistent=True, early_q=True), False, 0),
    (
        128,
        flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, rope_ahead=True),
        False,
        1,
    ),
    (64, flash_hopper.HopperConfig(128, 128, 4, rope_ahead=True), True, 2),
    # ALiBi's window (its norms kernel first), as dispatched at 2K without the mask.
    (
        128,
        flash_hopper.HopperConfig(
            128, 128, 5, True, o_tma=1, alibi_mma=True, key_order=2, alibi_window=True
        ),
        True,
        0,
    ),
]


@pytest.mark.small
@pytest.mark.parametrize(
    "d, cfg, alibi, rope", SANITIZED, ids=lambda x: x.label() if hasattr(x, "label") else str(x)
)
@pytest.mark.parametrize("causal", [False, True])
def test_small_case_of_each_dispatched_kernel(rng, d, cfg, alibi, rope, causal, monkeypatch):
    # Two query blocks and a partial key tile, GQA, Nq != Nk; the persistent
    # grid on 2 CTAs (an item after another). Against FP64 with ALiBi's bias
    # spelled out and q, k rotated by the standalone pass.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 2)
    q, k, v = _inputs(rng, 1, 2, cfg.block_m + 5, 300, d, "bfloat16", kvh=1)
    slopes = np.array([[0.25, 0.0625]], np.float32) if alibi else None
    kwargs = {"alibi_slopes": slopes} if alibi else {}
    nq, nk = q.shape[2], k.shape[2]
    if rope:
        cos, sin = ap.rope_tables(nk, d)
        kwargs |= {"rope": (cos, sin), "rope_interleaved": rope == 2}
        k = ap.rope(k, cos, sin, interleaved=rope == 2)
    out = flash_hopper.Prepared(q, k, v, causal=causal, config=cfg, **kwargs)()
    if rope:
        q = ap.rope(q, cos, sin, offset=nk - nq, interleaved=rope == 2)
    bias = _alibi_bias(slopes, nq, nk) if alibi else None
    assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal, bias=bias)


@pytest.mark.parametrize("cfg", flash_hopper.CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("d", flash_hopper.HEAD_DIMS)
@pytest.mark.parametrize("causal", [False, True])
def test_matches_fp64_on_edge_lengths(rng, cfg, d, causal):
    for nq, nk in [(1, 1), (17, 17), (63, 65), (64, 64), (65, 63), (1025, 1025), (17, 1025)]:
        dtype = "bfloat16" if (nq + nk) % 2 else "float16"
        q, k, v = _inputs(rng, 1, 2, nq, nk, d, dtype)
        out, lse = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
        assert out.dtype == q.dtype and out.shape == q.shape
        assert_close_to_reference(out, q, k, v, dtype, causal=causal)
        _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
        np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("causal", [False, True])
def test_gqa_and_unequal_lengths(rng, causal):
    for d in flash_hopper.HEAD_DIMS:
        q, k, v = _inputs(rng, 2, 6, 300, 513, d, "bfloat16", kvh=2)
        assert_close_to_reference(_run(q, k, v, causal=causal), q, k, v, "bfloat16", causal=causal)
        q, k, v = _inputs(rng, 1, 4, 513, 300, d, "float16", kvh=1)
        assert_close_to_reference(_run(q, k, v, causal=causal), q, k, v, "float16", causal=causal)


def test_rows_without_keys_are_zero_with_neg_inf_lse(rng):
    q, k, v = _inputs(rng, 1, 1, 200, 70, 64, "float16")
    out, lse = _run(q, k, v, causal=True, return_lse=True)
    assert np.all(out[0, 0, :130] == 0) and np.all(np.isneginf(lse[0, 0, :130]))
    assert_close_to_reference(out, q, k, v, "float16", causal=True)


def test_matches_the_mma_sync_kernel_closely(rng):
    q, k, v = _inputs(rng, 2, 4, 1000, 1025, 128, "bfloat16")
    for causal in (False, True):
        a = np.asarray(_run(q, k, v, causal=causal), np.float32)
        b = np.asarray(ap.flash_attention(q, k, v, causal=causal), np.float32)
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-2)


def test_two_runs_are_bitwise_equal(rng):
    q, k, v = _inputs(rng, 2, 4, 1000, 1025, 128, "bfloat16")
    a = _run(q, k, v, causal=True)
    b = _run(q, k, v, causal=True)
    assert a.tobytes() == b.tobytes()


def test_strided_torch_inputs_from_packed_qkv():
    torch = pytest.importorskip("torch")
    qkv = torch.randn(2, 1025, 3, 4, 128, device="cuda", dtype=torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous()
    out = _run(q, k, v, causal=True)
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
    assert_close_to_reference(out.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=True)


@pytest.mark.parametrize("step", [2, 3, 4, 5])
@pytest.mark.parametrize("cfg", flash_hopper.CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_later_steps_do_step_a_arithmetic(rng, cfg, causal, step):
    # Step (b) only reorders when things run (the softmax of step n while
    # P V(n - 1) runs; the output rescale after it), step (c) only how tiles
    # load (TMA, zero-filled past the end): the same arithmetic in the same
    # order as step (a). A separate compile may contract a multiply-add
    # differently, so allow one ulp of the output dtype; an operand hazard (a
    # register reused while a wgmma reads it) would be far larger. Poisoned
    # outputs (conftest), edge lengths, GQA, Nq != Nk.
    later = flash_hopper.HopperConfig(cfg.block_m, cfg.block_n, step=step)
    for b, h, kvh, nq, nk, d in [
        (1, 2, 2, 1, 1, 64),
        (1, 2, 2, 17, 17, 128),
        (1, 2, 1, 65, 63, 64),
        (2, 4, 2, 300, 513, 128),
        (1, 2, 2, 513, 300, 64),
        (1, 2, 2, 1025, 1025, 128),
    ]:
        dtype = "bfloat16" if nk % 2 else "float16"
        q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
        out_a, lse_a = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
        out_b, lse_b = _run(q, k, v, causal=causal, return_lse=True, config=later)
        ulp = 2.0**-7 if dtype == "bfloat16" else 2.0**-10
        a32, b32 = (np.asarray(x, np.float32) for x in (out_a, out_b))
        np.testing.assert_allclose(
            b32, a32, rtol=ulp, atol=1e-6, equal_nan=False, err_msg=f"{(nq, nk, d)}"
        )
        np.testing.assert_allclose(lse_b, lse_a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("step", [2, 3, 4, 5])
@pytest.mark.parametrize("d", flash_hopper.HEAD_DIMS)
def test_later_steps_match_fp64(rng, d, step):
    cfg = flash_hopper.HopperConfig(step=step)
    for causal in (False, True):
        q, k, v = _inputs(rng, 1, 2, 1000, 1025, d, "bfloat16")
        out = _run(q, k, v, causal=causal, config=cfg)
        assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal)


# Key tiles wider than 128 (the S wgmma's N = 160, 176, 192), at step (e)
# (the dispatch's wide tiles) and step (c).
WIDE = [
    flash_hopper.HopperConfig(128, 160, 5),
    flash_hopper.HopperConfig(128, 176, 5),
    flash_hopper.HopperConfig(128, 192, 5),
    flash_hopper.HopperConfig(128, 192, 3),
]


@pytest.mark.parametrize("cfg", WIDE, ids=lambda c: c.label())
@pytest.mark.parametrize("d", flash_hopper.HEAD_DIMS)
@pytest.mark.parametrize("causal", [False, True])
def test_wide_tiles_match_fp64(rng, cfg, d, causal):
    # Partial last tiles either side of the width (N +- 1), one row, GQA,
    # Nq != Nk both ways (rows without keys under causal), lse; poisoned outputs.
    n = cfg.block_n
    for b, h, kvh, nq, nk in [
        (1, 2, 2, 1, 1),
        (1, 2, 1, n - 1, n + 1),
        (2, 4, 2, n + 1, n - 1),
        (1, 2, 2, 17, 1025),
        (1, 2, 2, 1025, 1025),
    ]:
        dtype = "bfloat16" if nk % 2 else "float16"
        q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
        out, lse = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
        assert_close_to_reference(out, q, k, v, dtype, causal=causal)
        _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
        np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3, err_msg=f"{(nq, nk)}")


@pytest.mark.parametrize("cfg", WIDE[1:3], ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_wide_tiles_with_alibi(rng, cfg, causal):
    for d in flash_hopper.HEAD_DIMS:
        q, k, v = _inputs(rng, 2, 4, 300, 1025, d, "bfloat16", kvh=2)
        slopes = rng.uniform(0.01, 1.0, (2, 4)).astype(np.float32)
        _check_alibi(q, k, v, slopes, causal, cfg)


@pytest.mark.parametrize("cfg", flash_hopper.PERSISTENT_CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("ctas", [1, 3, 7])
@pytest.mark.parametrize("causal", [False, True])
def test_persistent_grid_matches_fp64(rng, cfg, ctas, causal, monkeypatch):
    # A grid of `ctas` CTAs taking every work item in turn: the barriers'
    # phases run on across items, the ping-pong turns alternate from one item
    # into the next, and causal items with no keys (Nq > Nk) still take their Q
    # phase. GQA, partial tiles, lse; poisoned outputs.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
    # Items: 24 and 36 (on 7 CTAs the last round is odd and partial), 16 (on 7
    # CTAs even and partial, on 3 odd): causal rounds alternate direction.
    shapes = [(2, 4, 2, 300, 1025, 128), (1, 4, 1, 1025, 300, 64), (1, 2, 1, 1000, 900, 128)]
    for b, h, kvh, nq, nk, d in shapes:
        q, k, v = _inputs(rng, b, h, nq, nk, d, "bfloat16", kvh=kvh)
        prep = flash_hopper.Prepared(q, k, v, causal=causal, return_lse=True, config=cfg)
        assert prep.grid() == [min(prep.query_blocks() * h * b, ctas), 1, 1]
        out, lse = prep()
        assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal)
        _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
        np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3, err_msg=f"{(nq, nk, d)}")


@pytest.mark.parametrize("cfg", flash_hopper.THREE_WARPGROUP_CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_three_consumer_warpgroups_match_fp64(rng, cfg, causal, monkeypatch):
    # 192 query rows, the turns going round three warpgroups: one row, partial
    # query blocks either side of 192 (Nq != Nk both ways, rows without keys
    # under causal), GQA, lse; poisoned outputs. The persistent grid on 3 CTAs
    # (rounds of partial items) and on one CTA per SM.
    for ctas in (3, None) if cfg.persistent else (None,):
        monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
        for b, h, kvh, nq, nk in [
            (1, 2, 2, 1, 1),
            (1, 2, 1, 191, 193),
            (2, 4, 2, 193, 191),
            (1, 2, 2, 17, 1025),
            (2, 4, 1, 1025, 1000),
            (1, 2, 1, 1025, 300),  # causal: 192-row items without keys
        ]:
            dtype = "bfloat16" if nk % 2 else "float16"
            q, k, v = _inputs(rng, b, h, nq, nk, 64, dtype, kvh=kvh)
            out, lse = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
            assert_close_to_reference(out, q, k, v, dtype, causal=causal)
            _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
            np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3, err_msg=f"{(nq, nk)}")
    if cfg.step >= 4:
        # ALiBi per score and its key part on the tensor cores (the plan's
        # ALiBi calls at D=64), GQA, Nq != Nk; persistent ones on 3 CTAs.
        monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
        q, k, v = _inputs(rng, 2, 4, 700, 1000, 64, "bfloat16", kvh=2)
        slopes = rng.uniform(0.01, 1.0, (2, 4)).astype(np.float32)
        _check_alibi(q, k, v, slopes, causal, cfg)
        _check_alibi(q, k, v, slopes, causal, replace(cfg, alibi_mma=True))


@pytest.mark.parametrize("tables", [False, True])
@pytest.mark.parametrize("cfg", flash_hopper.THREE_WARPGROUP_CONFIGS[:2], ids=lambda c: c.label())
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_three_consumer_warpgroups_with_rope(cfg, interleaved, causal, tables):
    # Each consumer warpgroup rotates its 64 of the 192 Q rows (the plan's
    # RoPE calls at D=64 run one CTA per block: rope_fits_persistent), from
    # global tables or (ROPE_TABLES) the producer's shared-memory copy.
    cfg = replace(cfg, rope_tables=tables)
    _check_rope(cfg, 11 + cfg.step, interleaved, causal, dims=(64,))


@pytest.mark.parametrize("cfg", flash_hopper.EXP2_POLY_CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_exp2_on_the_fma_pipe_matches_fp64(rng, cfg, causal, monkeypatch):
    # Some softmax exponents by exp2_poly: FP64 at both dtypes and the head
    # dims it is built for, partial tiles, rows without keys (zero output,
    # lse -inf), large logits; the persistent ones on 3 CTAs.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    dims = [64] if cfg.block_m == 192 else list(flash_hopper.HEAD_DIMS)
    for d in dims:
        for b, h, kvh, nq, nk, dtype in [
            (1, 2, 2, 1, 1, "float16"),
            (2, 4, 2, 300, 1025, "bfloat16"),
            (1, 2, 1, 1025, 97, "float16"),
        ]:
            q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
            out, lse = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
            assert_close_to_reference(out, q, k, v, dtype, causal=causal)
            _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
            np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3, err_msg=f"{nq, nk}")
        # Large logits: q scaled by 20 (a softmax close to one-hot).
        q, k, v = _inputs(rng, 1, 2, 257, 513, d, "bfloat16")
        q = to_dtype(np.asarray(q, np.float32) * 20, "bfloat16")
        out = _run(q, k, v, causal=causal, config=cfg)
        assert_close_to_reference(out, q, k, v, "bfloat16", causal=causal)
        # The polynomial ran: the output differs from the all-MUFU kernel's.
        mufu = _run(q, k, v, causal=causal, config=replace(cfg, exp2_poly=0))
        assert not np.array_equal(np.asarray(out, np.float32), np.asarray(mufu, np.float32))


@pytest.mark.parametrize("causal", [False, True])
def test_persistent_grid_of_one_cta_per_sm(rng, causal):
    # More than two items per SM: against the one-item-per-CTA grid (the same
    # arithmetic; one ulp for a different compile's contractions).
    q, k, v = _inputs(rng, 4, 16, 1100, 700, 64, "bfloat16", kvh=4)
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True)
    prep = flash_hopper.Prepared(q, k, v, causal=causal, config=cfg)
    sms = cuda.properties()["sm_count"]
    assert prep.grid() == [sms, 1, 1] and prep.query_blocks() * 16 * 4 > 2 * sms
    out = np.asarray(prep(), np.float32)
    base = flash_hopper.Prepared(
        q, k, v, causal=causal, config=flash_hopper.HopperConfig(128, 128, 5)
    )
    np.testing.assert_allclose(out, np.asarray(base(), np.float32), rtol=2.0**-7, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_persistent_grid_with_alibi(rng, causal, monkeypatch):
    # ALiBi's per-item slope and tile order on 3 CTAs.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    q, k, v = _inputs(rng, 2, 4, 700, 900, 128, "bfloat16", kvh=2)
    slopes = rng.uniform(0.01, 1.0, (2, 4)).astype(np.float32)
    _check_alibi(q, k, v, slopes, causal, flash_hopper.HopperConfig(128, 128, 5, persistent=True))


ALIBI_MMA = [
    flash_hopper.HopperConfig(128, 128, 5, alibi_mma=True),
    flash_hopper.HopperConfig(128, 176, 5, alibi_mma=True),
    flash_hopper.HopperConfig(128, 128, 4, alibi_mma=True),
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, alibi_mma=True),
]


@pytest.mark.parametrize("cfg", ALIBI_MMA, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_alibi_key_part_on_tensor_cores_matches_fp64(rng, cfg, causal, monkeypatch):
    # ALIBI=2: the key part by one more k16 step of the S wgmma (hi + lo halves
    # of the slope in the input dtype), the row part and the diagonal's tiles
    # in the softmax. Both dtypes (the split differs), both head dims, slopes
    # up to 1 (the largest key parts), the standard slopes, Nq != Nk both ways,
    # GQA; the persistent grid on 3 CTAs.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    for d in flash_hopper.HEAD_DIMS:
        for dtype in flash_hopper.DTYPES:
            for b, h, kvh, nq, nk in [(2, 4, 2, 300, 1025), (1, 8, 8, 1000, 700)]:
                q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
                slopes = rng.uniform(0.01, 1.0, (b, h)).astype(np.float32)
                if b == 1:
                    slopes = ap.reference.alibi_slopes(h).astype(np.float32)[None]
                _check_alibi(q, k, v, slopes, causal, cfg, dtype)


def _check_alibi_cases(rng, cfg, causal):
    """_check_alibi on both head dims (192 query rows: D=64 only) and dtypes,
    over Nq != Nk both ways, N = 17 and 97 and GQA; slopes up to 1, the
    standard ones on the 8-head case."""
    shapes = [(2, 4, 2, 300, 1025), (1, 8, 8, 1000, 700), (1, 4, 1, 1025, 300), (2, 2, 2, 17, 97)]
    for d in flash_hopper.HEAD_DIMS:
        if cfg.block_m == 192 and d != 64:
            continue
        for dtype in flash_hopper.DTYPES:
            for b, h, kvh, nq, nk in shapes:
                q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
                slopes = rng.uniform(0.01, 1.0, (b, h)).astype(np.float32)
                if b == 1 and h == 8:
                    slopes = ap.reference.alibi_slopes(h).astype(np.float32)[None]
                _check_alibi(q, k, v, slopes, causal, cfg, dtype)


ALIBI_START = [
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, alibi_start=True),
    flash_hopper.HopperConfig(128, 192, 5, persistent=True, alibi_start=True),
    flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=2, alibi_start=True),
    flash_hopper.HopperConfig(128, 128, 4, alibi_start=True),
    flash_hopper.HopperConfig(192, 128, 5, persistent=True, o_tma=1, alibi_start=True),
]


@pytest.mark.parametrize("cfg", ALIBI_START, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_alibi_key_part_as_the_scores_start_matches_fp64(rng, cfg, causal, monkeypatch):
    # ALIBI=3: the key part written into S before its wgmma, which accumulates
    # onto it; the row part and the diagonal's tiles in the softmax. Both
    # dtypes, both head dims (192 query rows: D=64 only), slopes up to 1, the
    # standard slopes, Nq != Nk both ways, N = 17 and 97, GQA; the persistent
    # grid on 3 CTAs, so one CTA's items start S on both sides of the diagonal.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    _check_alibi_cases(rng, cfg, causal)


ALIBI_ORDERS = [
    # What flash.hopper_config dispatches (one turn from the diagonal without
    # the mask, the diagonal's tile then ascending causal on 128 x 128), and
    # each order on each form beyond it; steps (d) and (e).
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, alibi_mma=True, key_order=2),
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, alibi_start=True, key_order=3),
    flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=2, alibi_start=True, key_order=2),
    flash_hopper.HopperConfig(192, 128, 5, persistent=True, o_tma=1, alibi_mma=True, key_order=2),
    flash_hopper.HopperConfig(128, 128, 4, alibi_start=True, key_order=2),
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, alibi_mma=True, key_order=3),
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, alibi_start=True, key_order=0),
]


@pytest.mark.parametrize("cfg", ALIBI_ORDERS, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_alibi_in_each_key_order_matches_fp64(rng, cfg, causal, monkeypatch):
    # KEY_ORDER 0 / 2 / 3 visit every key tile of an item once, in another
    # order than the zig-zag (flash_alibi.h): the diagonal past either end
    # (Nq != Nk both ways), a partial last tile, N = 17 and 97, GQA, slopes
    # up to 1 and the standard ones, lse; the persistent grid on 3 CTAs, so
    # one CTA's items start on both sides of the diagonal. Both dtypes; 192
    # query rows at D=64 only.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    _check_alibi_cases(rng, cfg, causal)


@pytest.mark.parametrize("causal", [False, True])
def test_alibi_key_part_on_tensor_cores_matches_the_per_score_bias(rng, causal):
    # N = 4K: many tiles each side of the diagonal, against ALIBI=1 on the same
    # tile (the bias in fp32 per score); close to the output dtype's rounding.
    # ALIBI=2 (the tensor cores' key part) and ALIBI=3 (S started with it).
    q, k, v = _inputs(rng, 1, 8, 4096, 4096, 128, "bfloat16", kvh=2)
    slopes = ap.reference.alibi_slopes(8).astype(np.float32)
    outs = []
    for mma, start in ((False, False), (True, False), (False, True)):
        cfg = flash_hopper.HopperConfig(128, 128, 5, alibi_mma=mma, alibi_start=start)
        prep = flash_hopper.Prepared(q, k, v, causal=causal, config=cfg, alibi_slopes=slopes)
        outs.append(np.asarray(prep(), np.float32))
    for other in outs[1:]:
        np.testing.assert_allclose(other, outs[0], rtol=2.0**-6, atol=2.0**-8)


@pytest.mark.parametrize("step", [1, 3])
def test_packed_qkv_strides_through_tma(step):
    # Packed qkv: the head stride (D) is smaller than the row stride (3 H D), so
    # the TMA descriptor's strides are not in ascending order; B = 1 and H = 1
    # views report stride 0 for their size-1 dimension.
    torch = pytest.importorskip("torch")
    cfg = flash_hopper.HopperConfig(step=step)
    for b, h in [(2, 4), (1, 1)]:
        qkv = torch.randn(b, 333, 3, h, 128, device="cuda", dtype=torch.bfloat16)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        out = _run(q, k, v, causal=True, config=cfg)
        qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
        assert_close_to_reference(out.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=True)


@pytest.mark.parametrize("alibi", [False, True])
@pytest.mark.parametrize(
    "step, o_tma", [(step, 0) for step in sorted(flash_hopper.STEPS)] + [(4, 1), (5, 2)]
)
def test_argument_block_matches_the_compiled_parameter_layout(rng, step, alibi, o_tma):
    # Python packs the argument block (attention_front; step (c) places its
    # TMA descriptors at the driver's offsets); the compiler lays the parameters out
    # itself. They must agree: params, strides, the five pointer slots, the
    # descriptors, and the block ending where the last parameter does.
    q, k, v = _inputs(rng, 1, 2, 70, 70, 64, "bfloat16")
    cfg = flash_hopper.HopperConfig(step=step, o_tma=o_tma)
    # With ALiBi (or RoPE) the kernel takes three more pointers (slopes, cos,
    # sin) before the descriptors.
    prep = flash_hopper.Prepared(q, k, v, config=cfg, alibi_slopes="default" if alibi else None)
    assert len(prep.slots) == 5 + 3 * alibi
    binary = runtime.compile_for(prep.spec(), "sm_90a").binary
    compiled = sass.parameter_layout(binary, flash_hopper.ENTRY)  # every parameter
    layout = prep.pipeline.parameter_layout(len(compiled))
    offsets = [offset for offset, _ in layout]
    maps = prep.map_offsets if step >= 3 else []
    assert len(maps) == (0 if step < 3 else 4 if o_tma else 3), maps
    assert len(layout) == 2 + len(prep.slots) + len(maps), layout
    assert offsets[0] == 0 and offsets[1] == -(-layout[0][1] // 8) * 8, layout
    assert offsets[2 : 2 + len(prep.slots)] == prep.slots, (layout, prep.slots)
    assert offsets[2 + len(prep.slots) :] == maps, (layout, maps)
    assert all(size == 128 for _, size in layout[2 + len(prep.slots) :])
    assert layout[-1][0] + layout[-1][1] == len(prep.plan.args), layout
    # The CPU reading of the cubin (what CI checks) agrees with the driver.
    assert [tuple(p) for p in layout] == compiled


def _alibi_bias(slopes, nq, nk):
    return ap.reference.alibi_bias(slopes.shape[-1], nq, nk, slopes=slopes, symmetric=True)


def _check_alibi(q, k, v, slopes, causal, cfg, dtype="bfloat16"):
    """The wgmma kernel with ALiBi (`slopes` [B, H]) against FP64 with the bias
    spelled out, output and lse."""
    nq, nk = q.shape[2], k.shape[2]
    bias = _alibi_bias(slopes, nq, nk)
    prep = flash_hopper.Prepared(
        q, k, v, causal=causal, return_lse=True, config=cfg, alibi_slopes=slopes
    )
    out, lse = prep()
    assert_close_to_reference(out, q, k, v, dtype, causal=causal, bias=bias)
    _, ref_lse = ap.reference.attention(q, k, v, causal=causal, bias=bias, return_lse=True)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step", sorted(flash_hopper.STEPS))
@pytest.mark.parametrize("d", flash_hopper.HEAD_DIMS)
@pytest.mark.parametrize("causal", [False, True])
def test_alibi_matches_fp64_at_every_step(rng, step, d, causal):
    # ALiBi (constant ALIBI) on each step: tiles nearest the block's diagonal
    # first, the producer of steps (d)/(e) loading in that order too; the
    # diagonal past either end (Nq != Nk), a partial last tile, GQA, slopes per
    # (batch, head), lse. Poisoned outputs (conftest).
    cfg = flash_hopper.HopperConfig(step=step)
    for b, h, kvh, nq, nk in [(1, 8, 8, 1000, 1000), (2, 4, 2, 300, 1025), (1, 4, 1, 1025, 300)]:
        q, k, v = _inputs(rng, b, h, nq, nk, d, "bfloat16", kvh=kvh)
        slopes = rng.uniform(0.01, 1.0, (b, h)).astype(np.float32)
        if b == 1:  # the standard slopes (1/2 .. 1/256 over 8 heads): far tiles weigh
            slopes = ap.reference.alibi_slopes(h).astype(np.float32)
        _check_alibi(q, k, v, slopes, causal, cfg)


def test_alibi_calls_take_the_wgmma_kernel_on_torch():
    # flash_attention with alibi_slopes dispatches like the plain call (each D's
    # plan from N=512, ALiBi's key part on the tensor cores at steps (d)/(e));
    # 'default' and the same slopes as a tensor agree bit for bit, and the
    # torch fast path passes the slopes' pointer.
    torch = pytest.importorskip("torch")
    from attention_proto.ops import flash

    g = torch.Generator(device="cuda").manual_seed(11)
    for d in flash_hopper.HEAD_DIMS:
        q, k, v = (
            torch.randn(2, 8, 640, d, device="cuda", dtype=torch.bfloat16, generator=g)
            for _ in range(3)
        )
        prep = flash.prepare(q, k, v, alibi_slopes="default", allocate=False)
        assert isinstance(prep, flash_hopper.Prepared)
        assert prep.config == flash.hopper_config(d, False, 640, alibi=True)
        slopes = torch.from_numpy(ap.reference.alibi_slopes(8).astype(np.float32)).cuda()
        for causal in (False, True):
            out = ap.flash_attention(q, k, v, causal=causal, alibi_slopes="default")
            again = ap.flash_attention(q, k, v, causal=causal, alibi_slopes=slopes)
            torch.cuda.synchronize()
            assert torch.equal(out, again)
            qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
            bias = _alibi_bias(ap.reference.alibi_slopes(8), 640, 640)
            assert_close_to_reference(
                out.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=causal, bias=bias
            )


@pytest.mark.parametrize("step", sorted(flash_hopper.STEPS))
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_rope_rotates_q_as_the_standalone_pass_at_every_step(step, interleaved, causal):
    # ROPE on each step: q rotated in shared memory once it lands (steps (d)/(e):
    # each consumer warpgroup its 64 rows), k rotated beforehand.
    _check_rope(flash_hopper.HopperConfig(step=step), step, interleaved, causal)


@pytest.mark.parametrize("tables", [False, True])
@pytest.mark.parametrize("ctas", [3, None])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_rope_on_the_persistent_grid(ctas, interleaved, causal, tables, monkeypatch):
    # Each item's Q rotated once it lands, item after item on 3 CTAs (rounds of
    # several items) and on one CTA per SM; with `tables` (ROPE_TABLES) from the
    # item's cos/sin rows the producer copied into shared memory with Q.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True, rope_tables=tables)
    _check_rope(cfg, 7 + (ctas or 0), interleaved, causal)


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_tables_from_strided_rows(interleaved, monkeypatch):
    # Tables whose rows are not contiguous (the first half of [N, D] rows): the
    # producer copies them row by row (ROPE_TABLES), on 3 CTAs.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True, rope_tables=True)
    _check_rope(cfg, 31, interleaved, True, strided_tables=True)


# Q rotated one item ahead by the producer's warps 1-3 into a second buffer
# (rope_ahead): the persistent grid with and without the output by TMA store,
# one CTA per block (step (d)), and 128 x 192 where the buffer fits (D=64).
AHEAD_CONFIGS = (
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, rope_ahead=True),
    flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, rope_ahead=True),
    flash_hopper.HopperConfig(128, 128, 4, rope_ahead=True),
    flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=1, rope_ahead=True),
)


@pytest.mark.parametrize("cfg", AHEAD_CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("ctas", [3, None])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_rope_rotated_ahead_by_the_producer(cfg, ctas, interleaved, causal, monkeypatch):
    # On 3 CTAs each takes tens of items, so both Q buffers turn over many
    # times (their phases, and the next item's load issued within this one's).
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
    dims = tuple(d for d in flash_hopper.HEAD_DIMS if flash_hopper.builds(cfg, d, rope=1))
    assert dims == ((64,) if cfg.block_n == 192 else (64, 128))
    _check_rope(cfg, 41 + (ctas or 0), interleaved, causal, dims=dims)


def _check_rope(cfg, seed, interleaved, causal, dims=(64, 128), strided_tables=False):
    # The same rounding as the standalone pass (rope_pairs.h), so the output
    # equals the plain kernel's on q and k both rotated by the pass, to one
    # bf16 ulp (two compiles may contract differently); and meets FP64 on the
    # rotated inputs.
    torch = pytest.importorskip("torch")
    g = torch.Generator(device="cuda").manual_seed(seed * 10 + 2 * interleaved + causal)
    shapes = [(64, (1000, 1000)), (64, (193, 400)), (128, (300, 1025)), (128, (17, 129))]
    for d, (nq, nk) in [(d, lengths) for d, lengths in shapes if d in dims]:
        q, k, v = (
            torch.randn(2, h, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
            for h, n in ((4, nq), (2, nk), (2, nk))
        )
        cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(nk + 3, d))
        tables = (cos, sin)
        if strided_tables:  # the kernel's: rows d floats apart, the first half used
            tables = tuple(torch.cat([t, torch.zeros_like(t)], 1)[:, : d // 2] for t in tables)
            assert tables[0].stride() == (d, 1)
        rq = ap.rope(q, cos, sin, offset=nk - nq, interleaved=interleaved)
        rk = ap.rope(k, cos, sin, interleaved=interleaved)
        fused = flash_hopper.Prepared(
            q, rk, v, causal=causal, config=cfg, rope=tables, rope_interleaved=interleaved
        )()
        # The same tile without RoPE (rope_tables and rope_ahead are refused there).
        plain_cfg = replace(cfg, rope_tables=False, rope_ahead=False)
        plain = flash_hopper.Prepared(rq, rk, v, causal=causal, config=plain_cfg)()
        torch.cuda.synchronize()
        scale = plain.float().abs().max().item()
        diff = (fused.float() - plain.float()).abs().max().item()
        assert diff <= 2**-7 * scale + 1e-3, (d, nq, nk, diff)
        np_in = [x.float().cpu().numpy() for x in (rq, rk, v)]
        assert_close_to_reference(fused.float().cpu().numpy(), *np_in, "bfloat16", causal=causal)


def test_rope_calls_take_the_wgmma_kernel():
    # flash_attention(rope=...) dispatches like the plain call from N=512 (k by
    # the standalone pass, q in the wgmma kernel; the plan's grid).
    torch = pytest.importorskip("torch")
    from attention_proto.ops import flash

    q, k, v = (torch.randn(1, 4, 640, 128, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(640, 128))
    prep = flash.prepare(q, k, v, rope=(cos, sin), allocate=False)
    assert isinstance(prep, flash_hopper.Prepared)
    assert prep.config == flash.hopper_config(128, False, 640, rope=True)
    out = ap.flash_attention(q, k, v, causal=True, rope=(cos, sin))
    rq, rk = ap.rope(q, cos, sin), ap.rope(k, cos, sin)
    torch.cuda.synchronize()
    np_in = [x.float().cpu().numpy() for x in (rq, rk, v)]
    assert_close_to_reference(out.float().cpu().numpy(), *np_in, "bfloat16", causal=True)


@pytest.mark.parametrize("d", flash_hopper.HEAD_DIMS)
@pytest.mark.parametrize("n", [2000, 4100])
@pytest.mark.parametrize("causal", [False, True])
def test_alibi_with_rope_kernel_and_public_call(causal, n, d):
    # Both at once. The kernel with both (the plan's tile with ALiBi's key part
    # on the tensor cores: D=128 below 4K keys the persistent grid on 128 x 128,
    # from 4K 176 keys one CTA per block; D=64 three consumer warpgroups on 192 x
    # 128, or below 4K causal keys step (c)) on keys already rotated; and the
    # public call, which rotates q and k by the standalone pass and then runs
    # the ALiBi plan (flash.rope_by_passes). Each against FP64 on rotated q and
    # k with the bias.
    torch = pytest.importorskip("torch")
    from attention_proto.ops import flash

    g = torch.Generator(device="cuda").manual_seed(5)
    q, k, v = (
        torch.randn(1, 2, n, d, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3)
    )
    tables = ap.rope_tables(n, d)
    cos, sin = (torch.from_numpy(x).cuda() for x in tables)
    slopes = torch.tensor([[0.5, 0.03]], device="cuda", dtype=torch.float32)
    rq, rk = ap.rope(q, cos, sin), ap.rope(k, cos, sin)
    cfg = flash.hopper_config(d, causal, n, alibi=True, rope=True)
    host = [to_dtype(x.float().cpu().numpy(), "bfloat16") for x in (q, rk, v)]
    kernel = flash_hopper.Prepared(
        *host, causal=causal, config=cfg, alibi_slopes=slopes.cpu().numpy(), rope=tables
    )
    out_kernel = kernel()
    assert flash.rope_by_passes(q, k, causal, alibi=True)
    out = ap.flash_attention(q, k, v, causal=causal, alibi_slopes=slopes, rope=(cos, sin))
    two_step = ap.flash_attention(rq, rk, v, causal=causal, alibi_slopes=slopes)
    torch.cuda.synchronize()
    assert torch.equal(out, two_step)  # the same passes and the same ALiBi plan
    np_in = [x.float().cpu().numpy() for x in (rq, rk, v)]
    bias = _alibi_bias(slopes.cpu().numpy(), n, n)
    for o in (out_kernel, out.float().cpu().numpy()):
        assert_close_to_reference(o, *np_in, "bfloat16", causal=causal, bias=bias)


# rope= calls the passes serve (flash.ROPE_PASSES_FROM_KEYS): D=64 full at any
# length, D=64 causal from 4K keys, D=128 full from 4K, causal from 8K; Nq < Nk
# (q at positions from Nk - Nq), GQA, both conventions.
ROPE_PASS_CASES = [(64, False, 600, 700), (64, True, 1500, 4100), (128, False, 600, 4100)]
ROPE_PASS_CASES += [(128, True, 1000, 8200)]


@pytest.mark.parametrize("d, causal, nq, nk", ROPE_PASS_CASES)
@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_calls_the_passes_serve_match_fp64(d, causal, nq, nk, interleaved):
    torch = pytest.importorskip("torch")
    from attention_proto.ops import flash

    g = torch.Generator(device="cuda").manual_seed(nq + d)
    q = torch.randn(1, 2, nq, d, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (
        torch.randn(1, 1, nk, d, device="cuda", dtype=torch.bfloat16, generator=g) for _ in "kv"
    )
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(nk + 5, d))
    assert flash.rope_by_passes(q, k, causal)
    assert not flash.rope_by_passes(q, k, causal, config=flash.hopper_config(d, causal, nk))
    out = ap.flash_attention(q, k, v, causal=causal, rope=(cos, sin), rope_interleaved=interleaved)
    rq = ap.rope(q, cos, sin, offset=nk - nq, interleaved=interleaved)
    rk = ap.rope(k, cos, sin, interleaved=interleaved)
    two_step = ap.flash_attention(rq, rk, v, causal=causal)
    torch.cuda.synchronize()
    assert torch.equal(out, two_step)
    # The standalone pass against FP64 RoPE, then attention against FP64.
    ref_q = ap.reference.rope(
        q.float().cpu().numpy(),
        cos=cos.cpu().numpy(),
        sin=sin.cpu().numpy(),
        offset=nk - nq,
        interleaved=interleaved,
    )
    err = np.abs(rq.float().cpu().numpy() - ref_q).max()
    assert err <= 2**-8 * np.abs(ref_q).max(), err
    np_in = [x.float().cpu().numpy() for x in (rq, rk, v)]
    assert_close_to_reference(out.float().cpu().numpy(), *np_in, "bfloat16", causal=causal)


# The key split (KEY_SPLIT): the last round's items as parts of their key
# ranges on more CTAs, merged by flash_split_merge. Shapes chosen so that the
# plan splits (asserted): a partly filled last round on 3 and 7 CTAs, fewer
# items than CTAs, a last part shorter than the others, a partial last key tile
# and partial query blocks, GQA, both dtypes.
KEY_SPLIT_SHAPES = [
    # b, h, kvh, nq, nk, ctas
    (2, 4, 2, 300, 1025, 7),  # 24 items of 128 rows: 3 split on 7 CTAs
    (1, 2, 1, 100, 1025, 7),  # 2 items on 7 CTAs: every item split
    (1, 1, 1, 385, 2000, 3),  # 4 items of 128 rows on 3 CTAs (of 192 rows: 3, no split)
    (2, 2, 1, 129, 700, 3),  # 8 or 4 items on 3 CTAs
]


def _split_cases(cfg):
    dims = [64] if cfg.block_m == 192 else list(flash_hopper.HEAD_DIMS)
    return [(d, *shape) for d in dims for shape in KEY_SPLIT_SHAPES]


@pytest.mark.parametrize("cfg", flash_hopper.KEY_SPLIT_CONFIGS, ids=lambda c: c.label())
def test_key_split_matches_fp64(rng, cfg, monkeypatch):
    split_seen = 0
    for d, b, h, kvh, nq, nk, ctas in _split_cases(cfg):
        monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
        dtype = "bfloat16" if nk % 2 else "float16"
        q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
        prep = flash_hopper.Prepared(q, k, v, return_lse=True, config=cfg)
        items = prep.query_blocks() * h * b
        if prep.split_parts > 1:
            split_seen += 1
            assert len(prep.steps) == 2  # the kernel, then the merge
            assert prep.split_items == (items % ctas if items >= ctas else items)
            assert prep.grid()[0] == min(ctas, items * (prep.split_parts if items < ctas else 1))
        out, lse = prep()
        where = f"{(d, b, h, nq, nk, ctas)} parts {prep.split_parts}"
        assert_close_to_reference(out, q, k, v, dtype)
        _, ref_lse = ap.reference.attention(q, k, v, return_lse=True)
        np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3, err_msg=where)
        # The merge adds parts in part order: a rerun is bitwise the same.
        again, again_lse = flash_hopper.Prepared(q, k, v, return_lse=True, config=cfg)()
        np.testing.assert_array_equal(np.asarray(again), np.asarray(out), err_msg=where)
        np.testing.assert_array_equal(again_lse, lse, err_msg=where)
        # Against the same tiles unsplit: the same sums in another order.
        whole = _run(q, k, v, config=replace(cfg, key_split=False))
        np.testing.assert_allclose(
            np.asarray(out, np.float32), np.asarray(whole, np.float32), rtol=2.0**-6, atol=2e-3
        )
    assert split_seen >= 3, split_seen


@pytest.mark.parametrize("cfg", flash_hopper.KEY_SPLIT_CONFIGS[:2], ids=lambda c: c.label())
def test_key_split_on_one_cta_per_sm_and_large_logits(rng, cfg):
    # The card's own grid: 288 items of 128 rows on its SMs leave a partial
    # round; q x 20 makes each row's softmax nearly one-hot, so the parts'
    # maxima differ widely and the merge's weights span many octaves.
    q, k, v = _inputs(rng, 2, 16, 1100, 1100, 128, "bfloat16", kvh=4)
    q = to_dtype(np.asarray(q, np.float32) * 20, "bfloat16")
    prep = flash_hopper.Prepared(q, k, v, return_lse=True, config=cfg)
    assert prep.split_parts > 1, (prep.query_blocks(), cuda.properties()["sm_count"])
    out, lse = prep()
    assert_close_to_reference(out, q, k, v, "bfloat16")
    _, ref_lse = ap.reference.attention(q, k, v, return_lse=True)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3)


@pytest.mark.small
@pytest.mark.parametrize("cfg", flash_hopper.KEY_SPLIT_CONFIGS, ids=lambda c: c.label())
def test_small_key_split(rng, cfg, monkeypatch):
    # The sanitizers' case (bench/sanitize.sh runs the small tests): 4 items
    # on 3 CTAs, the last split in parts; a partial key tile, GQA.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    d = 64 if cfg.block_m == 192 else 128
    q, k, v = _inputs(rng, 1, 2, cfg.block_m + 5, 700, d, "bfloat16", kvh=1)
    prep = flash_hopper.Prepared(q, k, v, return_lse=True, config=cfg)
    assert prep.split_parts > 1 and prep.split_items == 1
    out, lse = prep()
    assert_close_to_reference(out, q, k, v, "bfloat16")
    _, ref_lse = ap.reference.attention(q, k, v, return_lse=True)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-3, atol=1e-3)


def test_key_split_through_the_torch_call(monkeypatch):
    # The public call with torch tensors: the scratch from torch's allocator
    # per call, the merge on the caller's stream; equal bit for bit to the
    # prepared launch (the same kernels), with and without lse.
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 7)
    cfg = flash_hopper.KEY_SPLIT_CONFIGS[0]
    q, k, v = (torch.randn(2, 4, 300, 128, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        out = ap.flash_attention(q, k, v, config=cfg)
        out_lse, lse = ap.flash_attention(q, k, v, config=cfg, return_lse=True)
    side.synchronize()
    prep = flash_hopper.Prepared(q, k, v, return_lse=True, config=cfg)
    assert prep.split_parts > 1
    ref, ref_lse = prep()
    torch.cuda.synchronize()
    assert torch.equal(out, ref) and torch.equal(out_lse, ref) and torch.equal(lse, ref_lse)


# The output by TMA store and the early Q release: the same arithmetic as the
# plain kernel of the same tile (only the epilogue's path to memory, or when Q
# is released, differs), so bitwise equal to it, and against FP64: partial
# query blocks (rows past seqlen_q, clipped by the store), one row, GQA, Nq !=
# Nk causal with rows that see no key, lse; the persistent grid on 3 CTAs (a
# warpgroup's tile reused item after item) and on one per SM.
EPILOGUE_SHAPES = [
    # b, h, kvh, nq, nk
    (1, 2, 1, 1, 1),
    (1, 2, 2, 17, 17),
    (2, 4, 2, 300, 1025),
    (1, 4, 1, 1025, 300),
    (1, 2, 1, 97, 1000),
]


@pytest.mark.parametrize(
    "cfg",
    flash_hopper.O_TMA_CONFIGS + flash_hopper.EARLY_Q_CONFIGS,
    ids=lambda c: c.label(),
)
@pytest.mark.parametrize("ctas", [3, None])
@pytest.mark.parametrize("causal", [False, True])
def test_output_store_and_early_q_match_the_plain_kernel(rng, cfg, ctas, causal, monkeypatch):
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", ctas)
    plain = replace(cfg, o_tma=0, early_q=False)
    for d in flash_hopper.HEAD_DIMS:
        if not flash_hopper.builds(cfg, d):
            continue
        for b, h, kvh, nq, nk in EPILOGUE_SHAPES:
            dtype = "bfloat16" if (nq + nk) % 2 else "float16"
            q, k, v = _inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
            where = f"{(d, b, h, kvh, nq, nk)}"
            out, lse = _run(q, k, v, causal=causal, return_lse=True, config=cfg)
            ref, ref_lse = _run(q, k, v, causal=causal, return_lse=True, config=plain)
            np.testing.assert_array_equal(np.asarray(out), np.asarray(ref), err_msg=where)
            np.testing.assert_array_equal(lse, ref_lse, err_msg=where)
            assert_close_to_reference(out, q, k, v, dtype, causal=causal)
            _, exact_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
            np.testing.assert_allclose(lse, exact_lse, rtol=1e-3, atol=1e-3, err_msg=where)


def test_output_store_through_the_torch_call_on_a_side_stream(monkeypatch):
    # The public call: the output's descriptor encoded per call from torch's
    # tensor, on the caller's stream; bitwise the prepared launch's result.
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 7)
    cfg = flash_hopper.O_TMA_CONFIGS[-1]
    q, k, v = (torch.randn(2, 4, 300, 128, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        out = ap.flash_attention(q, k, v, causal=True, config=cfg)
        out_lse, lse = ap.flash_attention(q, k, v, causal=True, config=cfg, return_lse=True)
    side.synchronize()
    ref, ref_lse = flash_hopper.Prepared(q, k, v, causal=True, return_lse=True, config=cfg)()
    torch.cuda.synchronize()
    assert torch.equal(out, ref) and torch.equal(out_lse, ref) and torch.equal(lse, ref_lse)
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
    assert_close_to_reference(out.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=True)

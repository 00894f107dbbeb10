"""ALiBi's window on the wgmma kernel (HopperConfig.alibi_window, the kernel's
ALIBI_WINDOW): each work item skips the key tiles whose every weight is
exactly 0 in the kernel's own arithmetic, bounded by each head's largest |q|
and |k| (written by a first kernel). The window's kernel must equal the same
kernel without it bit for bit, match FP64, and really skip: V poisoned with
NaN on the far keys must not reach the output. Needs an sm_90a GPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import attention_proto as ap
from attention_proto.ops import flash, flash_hopper
from tolerance import assert_close_to_reference, attention_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("hopper_only")]

# The ALiBi plan's configuration per (D, mask, keys) where it runs steps
# (d)/(e) (D=64 causal below 4K keys runs step (c): no window), and two more
# key orders: the zig-zag on one CTA a block, the diagonal's tile then
# ascending on the persistent grid.
PLAN_CASES = [
    (d, causal, n)
    for d in flash_hopper.HEAD_DIMS
    for causal in (False, True)
    for n in (2048, 8192)
    if flash.hopper_config(d, causal, n, True).step >= 4
]
OTHER_ORDERS = [replace(c, alibi_window=False) for c in flash_hopper.WINDOW_TEST_CONFIGS]
# (b, h, kvh, nq, nk): Nq != Nk both ways, a partial last tile, N = 17 and 97,
# GQA and MQA, and one long case where the steeper heads' windows cut many tiles.
SHAPES = [
    (2, 4, 2, 300, 1025),
    (1, 8, 8, 1000, 700),
    (1, 4, 1, 1025, 300),
    (2, 2, 2, 17, 97),
    (1, 4, 4, 2100, 2100),
]


def _plan(d, causal, n):
    """The ALiBi plan's configuration without its window (the comparator)."""
    return replace(flash.hopper_config(d, causal, n, True), alibi_window=False)


def _outputs(q, k, v, slopes, causal, cfg):
    prep = flash_hopper.Prepared(
        q, k, v, causal=causal, return_lse=True, config=cfg, alibi_slopes=slopes
    )
    return prep()


def _bits(x) -> np.ndarray:
    """A 16-bit output's bit patterns: equal means equal bit for bit."""
    return np.asarray(x).view(np.uint16)


def _slopes(rng, b, h):
    """Slopes up to 1 per (batch, head); the 8-head case the standard ones;
    one head at 0 and one negative (both keep every tile)."""
    if h == 8:
        return ap.reference.alibi_slopes(h).astype(np.float32)[None].repeat(b, 0)
    slopes = rng.uniform(0.05, 1.0, (b, h)).astype(np.float32)
    if h >= 4:
        slopes[0, 1], slopes[0, 2] = 0.0, -0.01
    return slopes


def _check_window(rng, cfg, d, causal, monkeypatch, dtypes=flash_hopper.DTYPES):
    # The persistent grid on 3 CTAs: one CTA's items have windows of every size.
    monkeypatch.setattr(flash_hopper, "PERSISTENT_MAX_CTAS", 3)
    window = replace(cfg, alibi_window=True)
    for dtype in dtypes:
        for b, h, kvh, nq, nk in SHAPES:
            if causal and nq > nk:
                continue  # rows past the keys see none: covered by the kernel's own tests
            q, k, v = attention_inputs(rng, b, h, nq, nk, d, dtype, kvh=kvh)
            slopes = _slopes(rng, b, h)
            out_w, lse_w = _outputs(q, k, v, slopes, causal, window)
            out, lse = _outputs(q, k, v, slopes, causal, cfg)
            np.testing.assert_array_equal(_bits(out_w), _bits(out))
            np.testing.assert_array_equal(lse_w.view(np.uint32), lse.view(np.uint32))
            bias = ap.reference.alibi_bias(h, nq, nk, slopes=slopes, symmetric=True)
            assert_close_to_reference(out_w, q, k, v, dtype, causal=causal, bias=bias)


@pytest.mark.parametrize("d, causal, n", PLAN_CASES)
def test_window_equals_the_plan_kernel_bit_for_bit(rng, d, causal, n, monkeypatch):
    assert flash.hopper_config(d, causal, n, True).alibi_window  # what ALiBi calls run
    _check_window(rng, _plan(d, causal, n), d, causal, monkeypatch)


@pytest.mark.parametrize("cfg", OTHER_ORDERS, ids=lambda c: c.label())
@pytest.mark.parametrize("causal", [False, True])
def test_window_in_other_key_orders(rng, cfg, causal, monkeypatch):
    _check_window(rng, cfg, 128, causal, monkeypatch, dtypes=("bfloat16",))


@pytest.mark.parametrize("causal", [False, True])
def test_window_skips_far_keys(rng, causal):
    # Steep slopes (1 and 0.5) at N = 4K: the window of a 128-row block spans a
    # few hundred keys. V is NaN on keys the rows checked are far from (without
    # the mask: keys from 2K for rows below 1K; causal: keys below 1K for rows
    # from 3K): the kernel without the window multiplies those exact zeros by
    # NaN, the window never loads them.
    n, d = 4096, 128
    q, k, v = attention_inputs(rng, 1, 2, n, n, d, "bfloat16")
    slopes = np.array([[1.0, 0.5]], np.float32)
    far = slice(0, 1024) if causal else slice(2048, n)
    rows = slice(3072, n) if causal else slice(0, 1024)
    v_far = v.copy()
    v_far[:, :, far] = np.nan
    cfg = _plan(d, causal, n)
    out_w, _ = _outputs(q, k, v_far, slopes, causal, replace(cfg, alibi_window=True))
    out, _ = _outputs(q, k, v_far, slopes, causal, cfg)
    assert np.isnan(np.asarray(out, np.float32)[:, :, rows]).all()  # the poison reaches them
    got = np.asarray(out_w, np.float32)[:, :, rows]
    assert not np.isnan(got).any()
    want, _ = _outputs(q, k, v, slopes, causal, replace(cfg, alibi_window=True))
    np.testing.assert_array_equal(got, np.asarray(want, np.float32)[:, :, rows])


def test_window_keeps_every_tile_for_nan_inputs(rng):
    # A NaN in k makes its head's bound NaN: every tile kept, the NaN reaches
    # the rows that see it as without the window.
    q, k, v = attention_inputs(rng, 1, 2, 600, 600, 128, "bfloat16")
    k[0, 1, 5, 0] = np.nan
    slopes = np.array([[1.0, 1.0]], np.float32)
    cfg = _plan(128, False, 600)
    out_w, lse_w = _outputs(q, k, v, slopes, False, replace(cfg, alibi_window=True))
    out, lse = _outputs(q, k, v, slopes, False, cfg)
    # NaN where the other has NaN (the payloads may differ), equal elsewhere.
    np.testing.assert_array_equal(np.asarray(out_w, np.float32), np.asarray(out, np.float32))
    np.testing.assert_array_equal(lse_w, lse)
    assert np.isnan(lse[0, 1]).all() and not np.isnan(lse[0, 0]).any()


def test_window_through_the_torch_call(rng):
    # The public call (the dispatch takes the window): its norms come from
    # torch's allocator on the current stream; equal to the prepared call and to
    # the plan's kernel without the window, bit for bit.
    torch = pytest.importorskip("torch")
    cfg = _plan(128, True, 2048)
    q, k, v = (torch.randn(2, 8, 2048, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    got = ap.flash_attention(q, k, v, causal=True, alibi_slopes="default")  # dispatched
    plan = flash.prepare(q, k, v, causal=True, alibi_slopes="default", allocate=False)
    assert plan.config.alibi_window
    window = replace(cfg, alibi_window=True)
    want = flash_hopper.Prepared(q, k, v, causal=True, config=window, alibi_slopes="default")()
    assert torch.equal(got, want)
    base = ap.flash_attention(q, k, v, causal=True, alibi_slopes="default", config=cfg)
    assert torch.equal(got, base)  # the plan's kernel without the window


def _keeps_all(slope, seqlen_k) -> bool:
    """The norms kernel's window_keeps_all in float32: a slope <= 0 (or NaN),
    or 130 ln 2 / slope alone at least seqlen_k."""
    floor = np.float32(130) * np.float32(0.6931472)
    s = np.float32(slope)
    return not s > 0 or floor / s >= np.float32(seqlen_k)


def test_norms_pass_reads_only_heads_a_window_can_cut(rng):
    # The norms kernel's own output: each head's largest row norm where its
    # window can cut a key, +inf unread where it cannot (a GQA kv head: only
    # when every q head of its group cannot). Then the call equals the plan's
    # kernel without the window bit for bit.
    torch = pytest.importorskip("torch")
    b, h, kvh, n, d = 2, 8, 2, 2048, 128
    q = torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(b, kvh, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    # Batch 0: kv head 0's group (q heads 0-3) all below 130 ln 2 / N, one
    # negative; kv head 1's group mixed. Batch 1: the standard slopes' steep end
    # against shallow ones.
    slopes = np.array(
        [
            [0.01, 0.02, -0.5, 0.04, 0.5, 0.01, 0.0, 0.03],
            [0.9, 0.2, 0.044, 0.0439, 0.01, 0.02, 0.01, 0.02],
        ],
        np.float32,
    )
    cfg = _plan(d, False, n)
    prep = flash_hopper.Prepared(
        q,
        k,
        v,
        config=replace(cfg, alibi_window=True),
        alibi_slopes=torch.from_numpy(slopes).cuda(),
    )
    got = prep()
    norms = prep._norms.keepalive.cpu().numpy()
    q_norms = torch.linalg.vector_norm(q.float(), dim=-1).amax(-1).cpu().numpy()  # [b, h]
    k_norms = torch.linalg.vector_norm(k.float(), dim=-1).amax(-1).cpu().numpy()  # [b, kvh]
    group = h // kvh
    want = [
        np.inf if _keeps_all(slopes[bi, hi], n) else q_norms[bi, hi]
        for bi in range(b)
        for hi in range(h)
    ]
    want += [
        np.inf
        if all(_keeps_all(slopes[bi, g], n) for g in range(kh * group, (kh + 1) * group))
        else k_norms[bi, kh]
        for bi in range(b)
        for kh in range(kvh)
    ]
    want = np.array(want, np.float32)
    assert np.isinf(want).sum() == 14 and np.isfinite(want).sum() == 6  # both kinds present
    np.testing.assert_array_equal(np.isinf(norms), np.isinf(want))
    np.testing.assert_allclose(norms, want, rtol=1e-5)
    base = flash_hopper.Prepared(
        q, k, v, config=cfg, alibi_slopes=torch.from_numpy(slopes).cuda()
    )()
    assert torch.equal(got, base)

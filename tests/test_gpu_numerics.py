"""Numerics at the edges: NaN and Inf inputs (NaN is never reported as "no keys").
The CPU tests check the FP64 and same-dtype references; the GPU tests check the
kernels."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import buffers, reference
from attention_proto.ops import flash
from tolerance import assert_close_to_reference, lowp_attention, to_dtype


def _inputs(rng, b, h, nq, nk, d, dtype, scale=1.0):
    return tuple(
        to_dtype(rng.standard_normal(s).astype(np.float32) * sc, dtype)
        for s, sc in (((b, h, nq, d), scale), ((b, h, nk, d), scale), ((b, h, nk, d), 1.0))
    )


def _f32(x) -> np.ndarray:
    return np.asarray(x).astype(np.float32)


# Bad inputs. Column 0 of q is made positive, so a key with k[..., 0] = +inf
# scores +inf for every query (safe softmax: exp(+inf - +inf) = NaN) and one
# with -inf scores -inf (the key drops out, as if masked).
NAN_Q_ROW, BAD_KEY = 120, 60


def _bad_inputs(rng, nq, nk, d, dtype, kind):
    q, k, v = (_f32(x) for x in _inputs(rng, 1, 2, nq, nk, d, dtype))
    q[..., 0] = np.abs(q[..., 0]) + 0.25
    if kind == "nan_q":
        q[0, 0, NAN_Q_ROW, 3] = np.nan
        q[0, 1, 5, 3] = np.nan  # a row that sees no key when causal with Nq > Nk
    elif kind == "inf_k":
        k[0, 0, BAD_KEY, 0] = np.inf
    elif kind == "neg_inf_k":
        k[0, 0, BAD_KEY, 0] = -np.inf
        k[0, 1, 0, 0] = -np.inf  # causal: query row Nq - Nk sees key 0 alone
    return tuple(to_dtype(x, dtype) for x in (q, k, v))


def _expected_nan_rows(q, k, v, causal):
    out, lse = reference.attention(q, k, v, causal=causal, return_lse=True)
    nan_rows = np.isnan(lse)
    assert np.array_equal(nan_rows, np.isnan(out).all(-1)), "reference: NaN rows are whole"
    return nan_rows, out, lse


# ---------------------------------------------------------------- CPU: references


@pytest.mark.parametrize("causal", [False, True])
def test_reference_nan_and_inf_rows(rng, causal):
    nq, nk = 200, 150  # causal: the first 50 queries see no key
    no_key = np.zeros((1, 2, nq), bool)
    if causal:
        no_key[..., : nq - nk] = True
    for kind in ("nan_q", "inf_k", "neg_inf_k"):
        q, k, v = _bad_inputs(rng, nq, nk, 64, "float32", kind)
        nan_rows, out, lse = _expected_nan_rows(q, k, v, causal)
        expected = np.zeros_like(nan_rows)
        if kind == "nan_q":
            expected[0, 0, NAN_Q_ROW] = True  # row 5 of head 1 sees no key when causal
            expected[0, 1, 5] = not causal
        elif kind == "inf_k":
            sees = reference.causal_mask(nq, nk)[:, BAD_KEY] if causal else np.ones(nq, bool)
            expected[0, 0] = sees
        assert np.array_equal(nan_rows, expected), kind
        empty = no_key & ~nan_rows
        assert np.all(out[empty] == 0) and np.all(np.isneginf(lse[empty])), kind
        if kind == "neg_inf_k":
            # A -inf score drops its key: the same as attention without it.
            keep = np.arange(nk) != BAD_KEY
            clean = reference.attention(q[:, :1], k[:, :1, keep], v[:, :1, keep], causal=False)
            if not causal:
                np.testing.assert_allclose(out[:, :1], clean, rtol=1e-6, atol=1e-6)
            else:  # query nq - nk sees key 0 alone, and its score is -inf
                assert np.all(out[0, 1, nq - nk] == 0) and np.isneginf(lse[0, 1, nq - nk])


def test_same_dtype_reference_propagates_nan_like_fp64(rng):
    for kind in ("nan_q", "inf_k"):
        q, k, v = _bad_inputs(rng, 200, 150, 64, "float16", kind)
        for causal in (False, True):
            nan_rows, _, _ = _expected_nan_rows(q, k, v, causal)
            low = lowp_attention(q, k, v, "float16", causal=causal)
            assert np.array_equal(np.isnan(low).all(-1), nan_rows)
            assert not np.isnan(low[~nan_rows]).any()


# ---------------------------------------------------------------- GPU: kernels


@pytest.fixture
def finite_poison(monkeypatch):
    """Outputs prefilled with the dtype's largest finite value instead of NaN,
    so a NaN in the result was written by the kernel."""
    monkeypatch.setitem(buffers.NAN_PATTERNS, 2, 0x7BFF)  # fp16 65504
    monkeypatch.setattr(buffers, "NAN_PATTERN_BF16", 0x7F7F)  # bf16 3.39e38
    monkeypatch.setitem(buffers.NAN_PATTERNS, 4, 0x7F7FFFFF)  # fp32 3.40e38


def _check_bad_rows(run, q, k, v, dtype, causal, clean_inputs):
    """NaN rows (output and lse) exactly where FP64 has them; rows that see no
    key 0 and -inf; every other row as the clean inputs give it."""
    nan_rows, ref_out, ref_lse = _expected_nan_rows(q, k, v, causal)
    out, lse = run(q, k, v)
    out, lse = _f32(out), np.asarray(lse)
    assert np.array_equal(np.isnan(lse), nan_rows)
    assert np.array_equal(np.isnan(out).all(-1), nan_rows)
    assert not np.isnan(out[~nan_rows]).any()
    empty = np.isneginf(ref_lse)
    assert np.all(out[empty] == 0) and np.all(np.isneginf(lse[empty]))
    rest = ~nan_rows & ~empty
    assert np.all(np.isfinite(lse[rest]))
    if clean_inputs is not None:  # rows that never met the bad value: same bits
        clean_out, clean_lse = run(*clean_inputs)
        untouched = rest & _untouched_rows(q, k, clean_inputs, causal)
        assert untouched.any()
        assert np.array_equal(out[untouched], _f32(clean_out)[untouched])
        assert np.array_equal(lse[untouched], np.asarray(clean_lse)[untouched])
    else:  # -inf scores: compare with FP64 where rows are finite
        assert_close_to_reference(
            np.where(nan_rows[..., None], ref_out, out), q, k, v, dtype, causal=causal
        )
        np.testing.assert_allclose(lse[rest], ref_lse[rest], rtol=1e-3, atol=1e-3)


def _untouched_rows(q, k, clean, causal):
    """Query rows whose q row and every visible key equal the clean inputs'."""
    same_q = (_f32(q) == _f32(clean[0])).all(-1)  # [B, H, Nq]
    same_k = (_f32(k) == _f32(clean[1])).all(-1)  # [B, H, Nk]
    nq, nk = q.shape[2], k.shape[2]
    vis = reference.causal_mask(nq, nk) if causal else np.ones((nq, nk), bool)
    sees_bad = (vis[None, None] & ~same_k[:, :, None, :]).any(-1)
    return same_q & ~sees_bad


def _clean(q, k, v):
    """The inputs with NaN and Inf replaced by 1 (same dtype)."""
    return tuple(
        to_dtype(np.nan_to_num(_f32(x), nan=1.0, posinf=1.0, neginf=1.0), x.dtype.name)
        for x in (q, k, v)
    )


KINDS = ["nan_q", "inf_k", "neg_inf_k"]


@pytest.mark.gpu
@pytest.mark.small
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", flash.HEAD_DIMS)
@pytest.mark.parametrize("dtype", flash.DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_flash_nan_and_inf_rows(rng, finite_poison, kind, d, dtype, causal):
    # Nq > Nk: causal rows 0..49 see no key. Key 60 lies in the second 32- and
    # 64-key block and in the first 128-key block.
    q, k, v = _bad_inputs(rng, 200, 150, d, dtype, kind)
    clean = None if kind == "neg_inf_k" else _clean(q, k, v)
    for config in (None, flash.FlashConfig(64, 32, 2, 4)):

        def run(q, k, v, config=config):
            return ap.flash_attention(q, k, v, causal=causal, return_lse=True, config=config)

        _check_bad_rows(run, q, k, v, dtype, causal, clean)


@pytest.mark.gpu
@pytest.mark.small
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("causal", [False, True])
def test_simple_attention_nan_and_inf_rows(rng, finite_poison, kind, dtype, causal):
    q, k, v = _bad_inputs(rng, 200, 150, 64, dtype, kind)
    clean = None if kind == "neg_inf_k" else _clean(q, k, v)

    def run(q, k, v):
        return ap.simple_attention(q, k, v, causal=causal, return_lse=True)

    _check_bad_rows(run, q, k, v, dtype, causal, clean)

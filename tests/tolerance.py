"""FlashAttention's accuracy rule: a kernel's error against FP64 may be at most
a small multiple of the error a same-dtype reference makes, plus a floor."""

from __future__ import annotations

import numpy as np

from attention_proto import reference


def to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        import ml_dtypes

        return x.astype(ml_dtypes.bfloat16)
    return x.astype({"float16": np.float16, "float32": np.float32}[dtype])


def rounded(x, dtype: str) -> np.ndarray:
    """float32 values rounded to `dtype` (round to nearest even) and back."""
    return to_dtype(np.asarray(x, dtype=np.float32), dtype).astype(np.float32)


def lowp_attention(q, k, v, dtype: str, *, causal=False, scale=None) -> np.ndarray:
    """Attention as a same-dtype implementation computes it: scores and sums in
    float32, probabilities (after normalization) and output rounded to `dtype`.
    Rows that see no key give 0; a NaN or +inf score gives NaN (as the reference)."""

    q32, k32, v32 = (np.asarray(x).astype(np.float32) for x in (q, k, v))
    heads = q32.shape[1]
    k32, v32 = reference.repeat_kv(k32, heads), reference.repeat_kv(v32, heads)
    d = q32.shape[-1]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    with np.errstate(invalid="ignore"):  # inf - inf: NaN on purpose
        s = np.einsum("bhid,bhjd->bhij", q32, k32) * np.float32(scale)
        nq, nk = s.shape[-2:]
        if causal:
            s = np.where(reference.causal_mask(nq, nk), s, -np.inf)
        m = s.max(-1, keepdims=True)
        empty = m == -np.inf  # not isfinite: NaN and +inf are not "no keys"
        p = np.exp(s - np.where(empty, 0, m))
        denom = p.sum(-1, keepdims=True)
        p = rounded(p / np.where(empty, 1, denom), dtype)
        out = np.einsum("bhij,bhjd->bhid", p, v32)
        return rounded(np.where(empty, 0, out), dtype)


FLOOR = {"float32": 1e-5, "float16": 1e-4, "bfloat16": 1e-3}


def assert_close_to_reference(out, q, k, v, dtype: str, *, causal=False, scale=None, factor=2.0):
    out = np.asarray(out).astype(np.float32)
    assert not np.isnan(out).any(), "output holds NaN (an element was never written?)"
    ref = reference.attention(q, k, v, causal=causal, scale=scale)
    baseline = lowp_attention(q, k, v, dtype, causal=causal, scale=scale)
    err = float(np.abs(out - ref).max())
    base_err = float(np.abs(baseline - ref).max())
    bound = factor * base_err + FLOOR[dtype]
    assert err <= bound, f"max error {err:.3g} > {factor} x same-dtype error {base_err:.3g} + floor"
    return err, base_err

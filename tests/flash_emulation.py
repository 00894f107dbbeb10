"""A NumPy emulation of flash_attention.cu's arithmetic, to reason about its
error on the CPU (no GPU runs this): what the tensor cores and the online
softmax round, and where.

- S = Q K^T: products of 16-bit inputs are exact; each k16 MMA's 16 products
  are summed exactly and added to the fp32 accumulator with one rounding, to
  nearest or (`truncate`) toward zero, as tensor cores are reported to do.
- Per BLOCK_N keys: running max m (fp32), base = round(m * c) with
  c = round(scale * log2 e), alpha = exp2(fma(m_old, c, -base)) rescales the
  sum and O when m grows, p = exp2(fma(s, c, -base)) (fma: exact product, one
  rounding; ex2.approx taken as exact, flushing subnormals), the sum adds p in
  fp32, O adds round_dtype(p) V through the MMA as above.
- Epilogue: O / sum, rounded to the dtype; sum 0 marks a row without keys
  (output 0, lse -inf), a NaN sum a NaN or +inf score (output and lse NaN).
  `fixed` normalizes as the kernel now does: the row max's weight
  exp2(fma(m, c, -base)) (not exactly 1: the rounding error of m * c) counted
  in the sum as P.V saw it, rounded.
"""

from __future__ import annotations

import numpy as np

from attention_proto import reference
from tolerance import rounded

F32 = np.float32
LOG2E = F32(1.4426950408889634)


def _round_f32(x64: np.ndarray, truncate: bool) -> np.ndarray:
    r = x64.astype(F32)
    if truncate:  # toward zero: step back where rounding went outward
        out = np.abs(r.astype(np.float64)) > np.abs(x64)
        r = np.where(out, np.nextafter(r, F32(0)), r)
    return r


def mma(a: np.ndarray, b: np.ndarray, acc: np.ndarray, *, truncate=False) -> np.ndarray:
    """acc + a @ b as chained m16n8k16 MMAs: a [..., M, K], b [..., K, N]
    holding 16-bit values; fp32 accumulator, one rounding per k16 step."""
    for k0 in range(0, a.shape[-1], 16):
        part = np.matmul(
            a[..., k0 : k0 + 16].astype(np.float64), b[..., k0 : k0 + 16, :].astype(np.float64)
        )
        acc = _round_f32(acc.astype(np.float64) + part, truncate)
    return acc


def _fma(a, b, c) -> np.ndarray:
    """fp32 fma: a * b exact in float64 (24 x 24 bits), one rounding to fp32
    (the float64 add may round first: off by far less than an fp32 ulp)."""
    return (np.asarray(a, np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(F32)


def _exp2(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        y = np.exp2(x.astype(np.float64)).astype(F32)
    return np.where(y < F32(2.0**-126), F32(0), y)  # ex2.approx.ftz


def flash_attention(
    q, k, v, dtype: str, *, causal=False, block_n=128, fixed=True, truncate=False, return_lse=False
):
    """Output of flash_attention.cu as emulated (float32 holding dtype values),
    and with `return_lse` its lse. q [B, H, Nq, D], k and v [B, H, Nk, D] (no
    GQA), default scale."""
    q, k, v = (np.asarray(x).astype(F32) for x in (q, k, v))
    nq, nk, d = q.shape[2], k.shape[2], q.shape[3]
    c = F32(F32(1.0 / np.sqrt(d)) * LOG2E)
    s_all = mma(q, np.swapaxes(k, -1, -2), np.zeros(q.shape[:-1] + (nk,), F32), truncate=truncate)
    if causal:
        s_all = np.where(reference.causal_mask(nq, nk), s_all, F32(-np.inf))
    m = np.full(q.shape[:-1], -np.inf, F32)
    row_sum = np.zeros(q.shape[:-1], F32)
    o = np.zeros(q.shape, F32)
    with np.errstate(invalid="ignore"):
        for n0 in range(0, nk, block_n):
            s = s_all[..., n0 : n0 + block_n]
            new = np.fmax(m, np.fmax.reduce(s, axis=-1))  # fmaxf: NaN drops out
            base = np.where(new == -np.inf, F32(0), new * c).astype(F32)
            alpha = np.where(new == m, F32(1), _exp2(_fma(m, c, -base)))
            row_sum, o, m = row_sum * alpha, o * alpha[..., None], new
            p = _exp2(_fma(s, c, -base[..., None]))
            row_sum = (row_sum + p.astype(np.float64).sum(-1)).astype(F32)
            o = mma(rounded(p, dtype), v[:, :, n0 : n0 + block_n], o, truncate=truncate)
        norm = row_sum
        if fixed:
            p_max = _exp2(_fma(m, c, -(m * c).astype(F32)))
            norm = np.where(m == -np.inf, row_sum, row_sum + (rounded(p_max, dtype) - p_max))
        empty = row_sum == 0  # no key seen; NaN (a NaN or +inf score) is not 0
        inv = np.where(empty, F32(0), F32(1) / np.where(empty, F32(1), norm))
        out = rounded(o * inv[..., None].astype(F32), dtype)
        if not return_lse:
            return out
        with np.errstate(divide="ignore"):
            lse = np.where(empty, F32(-np.inf), m * F32(1.0 / np.sqrt(d)) + np.log(row_sum))
    return out, lse.astype(F32)

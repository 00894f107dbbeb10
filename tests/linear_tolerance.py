"""The accuracy rule of tests/tolerance.py for linear_attention: error against
FP64 at most `factor` x the error of a plain same-dtype implementation, plus a
floor relative to the output's size.

The plain implementation is the chunked algorithm in NumPy float32, rounding
to the input dtype exactly where a 16-bit tensor-core kernel must: the state
entering a chunk (an mma operand, as in flash-linear-attention), the masked
intra-chunk scores before they multiply V, and the output. State sums stay
fp32. That is honest about the kernel's main error, the state rounded to
2^-9 (bf16) of its own size, which grows with T: the baseline grows with it
instead of the bound being loosened by hand. The fp32 summation order of the
products is one draw of rounding; as in tolerance.py the baseline is the larger
error over two orders (einsum and BLAS matmul).
"""

from __future__ import annotations

import numpy as np

from attention_proto import reference
from tolerance import FLOOR, SCORE_SUMS, rounded


def _mm(a, b, order):
    if order == "einsum":
        return np.einsum("...ij,...jk->...ik", a, b)
    if order == "matmul":
        return np.matmul(a, b)
    raise ValueError(f"order must be one of {SCORE_SUMS}, got {order!r}")


def lowp_linear_attention(q, k, v, dtype, chunk, *, scale=1.0, initial_state=None, order="einsum"):
    """(output rounded to dtype, final fp32 state) of the plain chunked form."""
    q32, k32, v32 = (np.asarray(x).astype(np.float32) for x in (q, k, v))
    b, h, n, d = q32.shape
    state = np.zeros((b, h, d, d), np.float32)
    if initial_state is not None:
        state = np.asarray(initial_state, np.float32).copy()
    out = np.empty_like(q32)
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        qc, kc, vc = q32[:, :, start:end], k32[:, :, start:end], v32[:, :, start:end]
        mask = np.tril(np.ones((end - start, end - start), np.float32))
        p = rounded(_mm(qc, np.swapaxes(kc, -1, -2), order) * mask, dtype)
        o = _mm(qc, rounded(state, dtype), order) + _mm(p, vc, order)
        out[:, :, start:end] = rounded(o * np.float32(scale), dtype)
        state = state + _mm(np.swapaxes(kc, -1, -2), vc, order)
    return out, state


def fp64_linear_attention(q, k, v, *, scale=1.0, initial_state=None):
    """(output, final state, elementwise |S| bound) in FP64: the chunked
    reference (FP64 inside; test_reference.py checks it against the recurrent
    one) plus q . S0, times scale."""
    q64, k64, v64 = (np.asarray(x).astype(np.float64) for x in (q, k, v))
    out = reference.linear_attention_chunked(q64, k64, v64, 64).astype(np.float64)
    state = np.einsum("bhtd,bhte->bhde", k64, v64)
    magnitude = np.einsum("bhtd,bhte->bhde", np.abs(k64), np.abs(v64))
    if initial_state is not None:
        s0 = np.asarray(initial_state, np.float64)
        out = out + np.einsum("bhtd,bhde->bhte", q64, s0)
        state = state + s0
        magnitude = magnitude + np.abs(s0)
    return out * scale, state, magnitude


def assert_linear_close(
    out, q, k, v, dtype, chunk, *, scale=1.0, initial_state=None, final_state=None, factor=2.0
):
    out = np.asarray(out).astype(np.float32)
    assert not np.isnan(out).any(), "output holds NaN (an element was never written?)"
    ref, ref_state, magnitude = fp64_linear_attention(
        q, k, v, scale=scale, initial_state=initial_state
    )
    base = max(
        float(
            np.abs(
                lowp_linear_attention(
                    q, k, v, dtype, chunk, scale=scale, initial_state=initial_state, order=o
                )[0]
                - ref
            ).max()
        )
        for o in SCORE_SUMS
    )
    err = float(np.abs(out - ref).max())
    bound = factor * base + FLOOR[dtype] * max(1.0, float(np.abs(ref).max()))
    assert err <= bound, f"max error {err:.3g} > {factor} x same-dtype error {base:.3g} + floor"
    if final_state is not None:
        # Never rounded: fp32 sums of exact 16-bit products, a random walk of
        # roundings of the partial sums (32 ulps x sqrt(T) of the |k||v| sum: tensor-core
        # fp32 accumulation is not IEEE-exact, a bug is off by the whole magnitude).
        st = np.asarray(final_state, np.float64)
        tol = 32 * 2.0**-24 * np.sqrt(q.shape[2]) * magnitude + 1e-30
        assert (np.abs(st - ref_state) <= tol).all(), np.abs(st - ref_state).max()
    return err, base

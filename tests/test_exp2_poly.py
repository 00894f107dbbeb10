"""A float32 model of shaders/cuda/exp2_poly.h (the softmax's exponent on the
FMA pipe, flash_attention_wgmma's EXP2_POLY), op for op, against 2^x in
float64: its error bound, exact 0 for masked scores, NaN kept. The kernel's
own arithmetic is checked on the GPU (tests/test_gpu_flash_hopper.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

HEADER = Path(__file__).resolve().parents[1] / "shaders" / "cuda" / "exp2_poly.h"


def _coefficients():
    """The cubic's coefficients as the header writes them (c3, c2, c1, c0)."""
    body = HEADER.read_text()
    fmas = re.findall(r"__fmaf_rn\(([^)]*)\)", body)
    first = [float(x.rstrip("f")) for x in fmas[0].replace(" ", "").split(",") if x != "f"]
    rest = [float(x.split(",")[-1].strip().rstrip("f")) for x in fmas[1:]]
    return [np.float32(first[0]), np.float32(first[1])] + [np.float32(c) for c in rest]


def exp2_poly(x):
    x = np.asarray(x, np.float32)
    clamped = np.where(np.isnan(x), x, np.maximum(x, np.float32(-127)))
    magic = np.float32(12582912 + 127)
    t = (clamped + magic).astype(np.float32)
    f = (clamped - (t - magic).astype(np.float32)).astype(np.float32)
    c3, c2, c1, c0 = _coefficients()
    p = (c3 * f + c2).astype(np.float32)
    p = (p * f + c1).astype(np.float32)
    p = (p * f + c0).astype(np.float32)
    scale = (t.view(np.uint32) << np.uint32(23)).view(np.float32)
    return (p * scale).astype(np.float32)


def test_relative_error_is_a_tenth_of_an_fp16_ulp():
    x = np.linspace(-126, 0.25, 4_000_001).astype(np.float32)
    err = np.abs(exp2_poly(x) / np.exp2(x.astype(np.float64)) - 1)
    assert err.max() < 1.1e-4, err.max()
    assert exp2_poly(np.float32(0)) == 1  # the row max's weight, as ex2's


def test_masked_scores_give_zero_and_nan_stays_nan():
    out = exp2_poly(np.array([-np.inf, -127, -200, np.nan], np.float32))
    assert out[0] == out[1] == out[2] == 0 and np.isnan(out[3])
    # Just above the clamp: tiny, finite, non-negative (the exponent never wraps).
    tail = exp2_poly(np.linspace(-127, -120, 10001).astype(np.float32))
    assert np.all(np.isfinite(tail)) and np.all(tail >= 0)

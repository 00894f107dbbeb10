"""The linear-attention kernels' addressing, emulated at fragment level on the
CPU (tests/linear_emulation.py), equals the FP64 reference: every element of
the states and outputs lands where the algorithm puts it, for every chunk size
and head dim, partial last chunks and an initial state included."""

from __future__ import annotations

import numpy as np
import pytest

import linear_emulation as emu
from attention_proto import reference


@pytest.mark.parametrize("chunk", [32, 64, 128, 256])
@pytest.mark.parametrize("d", [64, 128])
def test_emulated_kernels_equal_the_reference(chunk, d):
    rng = np.random.default_rng(chunk * 1000 + d)
    n = chunk + 70 if chunk < 128 else 2 * chunk - 60  # partial chunk, several 64-row blocks
    q, k, v = (rng.integers(-3, 4, (n, d)).astype(np.float64) for _ in range(3))
    s0 = rng.integers(-3, 4, (d, d)).astype(np.float64)
    h, final = emu.chunk_h(k, v, d, chunk, s0)
    for c in range(h.shape[0]):
        done = slice(0, c * chunk)
        np.testing.assert_array_equal(h[c], s0 + k[done].T @ v[done])
    np.testing.assert_array_equal(final, s0 + k.T @ v)
    out = emu.chunk_o(q, k, v, h, d, chunk, scale=0.5)
    ref = reference.linear_attention_chunked(q[None, None], k[None, None], v[None, None], chunk)
    ref = (ref[0, 0].astype(np.float64) + q @ s0) * 0.5
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)

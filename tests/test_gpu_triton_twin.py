"""Proto 5 on a GPU: the Triton twin against the FP64 reference and against the
hand-written kernel on the same inputs (the project's tolerance rule)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attention_proto as ap
from attention_proto.ops import flash
from tolerance import assert_close_to_reference, to_dtype

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from attention_proto import triton_twin  # noqa: E402

# N = 1, the tuned tiles' sizes +- 1, and lengths past several tiles.
LENGTHS = [1, 63, 64, 65, 127, 128, 129, 1000]


def _inputs(rng, b, h, kvh, nq, nk, d, dtype):
    arrays = [
        to_dtype(rng.standard_normal(s).astype(np.float32), dtype)
        for s in ((b, h, nq, d), (b, kvh, nk, d), (b, kvh, nk, d))
    ]
    tdt = getattr(torch, dtype)
    # The values are already representable in dtype, so the float32 detour is exact.
    tensors = [torch.from_numpy(a.astype(np.float32)).to("cuda", tdt) for a in arrays]
    return arrays, tensors


def _host(t, dtype):
    return to_dtype(t.float().cpu().numpy(), dtype)


@settings(max_examples=30, deadline=None)
@given(
    b=st.sampled_from([1, 2]),
    shape=st.sampled_from([(1, 1), (2, 2), (4, 2), (3, 1)]),  # (H, KVH): GQA too
    nq=st.sampled_from(LENGTHS),
    nk=st.sampled_from(LENGTHS),
    d=st.sampled_from(flash.HEAD_DIMS),
    causal=st.booleans(),
    dtype=st.sampled_from(flash.DTYPES),
    seed=st.integers(0, 2**31),
)
def test_twin_matches_fp64_and_the_hand_written_kernel(b, shape, nq, nk, d, causal, dtype, seed):
    h, kvh = shape
    rng = np.random.default_rng(seed)
    (q, k, v), (qt, kt, vt) = _inputs(rng, b, h, kvh, nq, nk, d, dtype)
    out, lse = triton_twin.flash_attention(qt, kt, vt, causal=causal, return_lse=True)
    assert out.dtype == qt.dtype and out.shape == qt.shape
    err, base = assert_close_to_reference(_host(out, dtype), q, k, v, dtype, causal=causal)
    _, ref_lse = ap.reference.attention(q, k, v, causal=causal, return_lse=True)
    np.testing.assert_allclose(lse.cpu().numpy(), ref_lse, rtol=1e-3, atol=1e-3)
    hand = ap.flash_attention(qt, kt, vt, causal=causal)
    # Both sit within 2x the same-dtype error of FP64, so within 4x of each other.
    diff = float((out.float() - hand.float()).abs().max())
    assert diff <= 4 * base + 1e-2, f"twin vs hand-written {diff:.3g} (same-dtype {base:.3g})"


def test_strided_views_and_autotune(rng):
    (q, k, v), (qt, kt, vt) = _inputs(rng, 2, 4, 4, 200, 300, 64, "bfloat16")
    # [B, N, H, D] memory seen as [B, H, N, D]: strides on every axis but the last.
    qs, ks, vs = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (qt, kt, vt))
    for cfg in ("table", "autotune", (64, 32, 2, 4)):
        out = triton_twin.flash_attention(qs, ks, vs, causal=True, config=cfg)
        assert_close_to_reference(_host(out, "bfloat16"), q, k, v, "bfloat16", causal=True)


def test_rows_that_see_no_key_return_zero(rng):
    # Causal with Nq > Nk: the first Nq - Nk rows see no key (bottom-right alignment).
    (_, _, _), (qt, kt, vt) = _inputs(rng, 1, 1, 1, 70, 5, 64, "bfloat16")
    out, lse = triton_twin.flash_attention(qt, kt, vt, causal=True, return_lse=True)
    assert torch.all(out[0, 0, :65] == 0) and torch.all(torch.isneginf(lse[0, 0, :65]))
    assert torch.isfinite(out[0, 0, 65:]).all()

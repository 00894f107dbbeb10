"""linear_attention on a GPU against the FP64 reference (Proto 6), with the
accuracy rule of linear_tolerance.py. Outputs and the state scratch are
poisoned with NaN (conftest: debug.poison_outputs), so an element a kernel
never writes fails the NaN check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attention_proto as ap
from attention_proto.ops import linear_front
from linear_tolerance import assert_linear_close
from tolerance import to_dtype

pytestmark = pytest.mark.gpu
CHUNKS = linear_front.CHUNK_SIZES


def _inputs(rng, b, h, n, d, dtype, scale=1.0):
    return tuple(
        to_dtype(rng.standard_normal((b, h, n, d)).astype(np.float32) * scale, dtype)
        for _ in range(3)
    )


def _lengths(chunk):
    # T = 1, chunk +- 1, several chunks with a partial last one.
    return [1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5, 1000]


@settings(max_examples=40, deadline=None)
@given(
    bh=st.sampled_from([(1, 1), (1, 3), (3, 1), (3, 5)]),  # B.H odd
    chunk=st.sampled_from(CHUNKS),
    which=st.integers(0, 5),
    d=st.sampled_from(linear_front.HEAD_DIMS),
    dtype=st.sampled_from(linear_front.DTYPES),
    seed=st.integers(0, 2**31),
)
def test_matches_fp64_on_drawn_shapes(bh, chunk, which, d, dtype, seed):
    b, h = bh
    n = _lengths(chunk)[which]
    q, k, v = _inputs(np.random.default_rng(seed), b, h, n, d, dtype)
    out = ap.linear_attention(q, k, v, chunk_size=chunk)
    assert out.dtype == q.dtype and out.shape == q.shape
    assert_linear_close(out, q, k, v, dtype, chunk)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("d", linear_front.HEAD_DIMS)
def test_every_chunk_size_and_head_dim_around_the_chunk(rng, chunk, d):
    for n in (chunk - 1, chunk + 1, 2 * chunk + 17):
        q, k, v = _inputs(rng, 1, 3, n, d, "bfloat16")
        assert_linear_close(
            ap.linear_attention(q, k, v, chunk_size=chunk), q, k, v, "bfloat16", chunk
        )
        q, k, v = _inputs(rng, 1, 1, n, d, "float16")
        assert_linear_close(
            ap.linear_attention(q, k, v, chunk_size=chunk), q, k, v, "float16", chunk
        )


@pytest.mark.parametrize("chunk", CHUNKS)
def test_state_round_trip_two_halves_equal_the_whole(rng, chunk):
    d, n = 64, 4 * chunk + 7
    q, k, v = _inputs(rng, 1, 3, n, d, "bfloat16")
    s0 = rng.standard_normal((1, 3, d, d)).astype(np.float32)
    whole, s_whole = ap.linear_attention(
        q, k, v, chunk_size=chunk, initial_state=s0, return_state=True
    )
    assert s_whole.dtype == np.float32 and s_whole.shape == (1, 3, d, d)
    assert_linear_close(whole, q, k, v, "bfloat16", chunk, initial_state=s0, final_state=s_whole)
    # Split on a chunk boundary: the same fp32 state crosses it (through memory
    # instead of registers), so the halves are bitwise the whole.
    cut = 2 * chunk
    first, s1 = ap.linear_attention(
        q[:, :, :cut],
        k[:, :, :cut],
        v[:, :, :cut],
        chunk_size=chunk,
        initial_state=s0,
        return_state=True,
    )
    second, s2 = ap.linear_attention(
        q[:, :, cut:],
        k[:, :, cut:],
        v[:, :, cut:],
        chunk_size=chunk,
        initial_state=s1,
        return_state=True,
    )
    np.testing.assert_array_equal(np.concatenate([first, second], 2), whole)
    np.testing.assert_array_equal(s2, s_whole)
    # Off a boundary the chunking differs: both sides meet the FP64 rule.
    cut = chunk + 3
    first, s1 = ap.linear_attention(
        q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], chunk_size=chunk, return_state=True
    )
    second = ap.linear_attention(
        q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], chunk_size=chunk, initial_state=s1
    )
    assert_linear_close(np.concatenate([first, second], 2), q, k, v, "bfloat16", chunk)


@pytest.mark.parametrize("dtype,magnitude", [("bfloat16", 30.0), ("float16", 3.0)])
@pytest.mark.parametrize("d", linear_front.HEAD_DIMS)
def test_large_magnitude_inputs(rng, dtype, magnitude, d):
    # fp16: x3 keeps outputs (|q| |S|, S summed over 1000 tokens) under 65504.
    q, k, v = _inputs(rng, 1, 3, 1000, d, dtype, magnitude)
    for chunk in (32, 256):
        out = ap.linear_attention(q, k, v, chunk_size=chunk, scale=0.125)
        assert_linear_close(out, q, k, v, dtype, chunk, scale=0.125)


@pytest.mark.small
@pytest.mark.parametrize("chunk", CHUNKS)
def test_small_shapes_for_the_sanitizers(rng, chunk):
    for n, d in ((1, 64), (33, 64), (65, 128)):
        q, k, v = _inputs(rng, 1, 3, n, d, "bfloat16")
        s0 = rng.standard_normal((1, 3, d, d)).astype(np.float32)
        out, s = ap.linear_attention(q, k, v, chunk_size=chunk, initial_state=s0, return_state=True)
        assert_linear_close(out, q, k, v, "bfloat16", chunk, initial_state=s0, final_state=s)


def test_strided_views_are_honoured(rng):
    # q, k, v as [B, T, H, D] buffers seen as [B, H, T, D] (a projection's layout).
    base = [to_dtype(rng.standard_normal((2, 200, 3, 64)).astype(np.float32), "bfloat16")]
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(np.asarray(base[0], np.float32)).to("cuda", torch.bfloat16)
    q, k, v = (x.transpose(1, 2), (x * 0.5).transpose(1, 2), (x + 1).transpose(1, 2))
    out = ap.linear_attention(q, k, v, chunk_size=64)
    assert out.is_contiguous() and out.shape == q.shape
    f = [t.float().cpu().numpy() for t in (q, k, v)]
    assert_linear_close(out.float().cpu().numpy(), *f, "bfloat16", 64)

"""linear_attention without a GPU: validation names the argument before any
GPU work, and the same-dtype baseline of linear_tolerance.py behaves as the
accuracy rule assumes."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto.ops import linear_front
from linear_tolerance import fp64_linear_attention, lowp_linear_attention
from tolerance import to_dtype


def qkv(b=1, h=2, n=37, d=64, dtype=np.float16, seed=0):
    r = np.random.default_rng(seed)
    return tuple(r.standard_normal((b, h, n, d)).astype(dtype) for _ in range(3))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"causal": False}, ValueError, r"\[linear_attention\] only causal=True"),
        ({"chunk_size": 48}, ValueError, r"chunk_size must be one of \(32, 64, 128, 256\)"),
        ({"chunk_size": True}, TypeError, "chunk_size must be an int"),
        ({"chunk_size": 64.0}, TypeError, "chunk_size must be an int"),
        ({"scale": -1.0}, ValueError, "scale must be a positive finite"),
        ({"scale": True}, TypeError, "scale must be a real number"),
    ],
)
def test_bad_options_are_refused_with_the_op_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        ap.linear_attention(*qkv(), **kwargs)


def test_bad_inputs_name_the_argument():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"\[linear_attention\] q must be one of"):
        ap.linear_attention(q.astype(np.float32), k, v)
    with pytest.raises(TypeError, match="must share a dtype"):
        ap.linear_attention(q, to_dtype(k.astype(np.float32), "bfloat16"), v)
    with pytest.raises(ValueError, match="head_dim must be one of"):
        ap.linear_attention(q[..., :32], k[..., :32], v[..., :32])
    with pytest.raises(ValueError, match="k and v must have the same shape"):
        ap.linear_attention(q, k, v[:, :, :5])
    with pytest.raises(ValueError, match=r"k must have q's shape .*no GQA"):
        ap.linear_attention(q, k[:, :1], v[:, :1])


def test_bad_initial_state_is_refused():
    q, k, v = qkv()
    good = np.zeros((1, 2, 64, 64), np.float32)
    with pytest.raises(ValueError, match=r"initial_state must have shape \[1, 2, 64, 64\]"):
        ap.linear_attention(q, k, v, initial_state=good[:, :1])
    with pytest.raises(TypeError, match="initial_state must be float32, got float16"):
        ap.linear_attention(q, k, v, initial_state=good.astype(np.float16))


def test_every_variant_is_in_the_catalog():
    from attention_proto import catalog

    names = {s.name for s in catalog.all_specs()}
    for s in linear_front.all_specs():
        assert s.name in names


def test_shared_memory_fits_hopper_for_every_variant():
    for d in linear_front.HEAD_DIMS:
        for c in linear_front.CHUNK_SIZES:
            assert linear_front.chunk_h_shared_bytes(d, c) <= 227 * 1024
            assert linear_front.chunk_o_shared_bytes(d, c) <= 227 * 1024


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("chunk", [32, 256])
def test_same_dtype_baseline_is_close_but_not_exact(dtype, chunk):
    q, k, v = (to_dtype(x.astype(np.float32), dtype) for x in qkv(n=300, dtype=np.float32))
    s0 = np.random.default_rng(1).standard_normal((1, 2, 64, 64)).astype(np.float32)
    ref, ref_state, _ = fp64_linear_attention(q, k, v, scale=0.5, initial_state=s0)
    out, state = lowp_linear_attention(q, k, v, dtype, chunk, scale=0.5, initial_state=s0)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    eps = 2.0**-8 if dtype == "bfloat16" else 2.0**-11
    assert 0 < err < 4 * eps, err
    assert np.abs(state - ref_state).max() < 1e-4 * np.abs(ref_state).max()


def test_chained_halves_of_the_baseline_equal_the_whole():
    q, k, v = (to_dtype(x.astype(np.float32), "bfloat16") for x in qkv(n=128, dtype=np.float32))
    whole, s_whole = lowp_linear_attention(q, k, v, "bfloat16", 32)
    first, s1 = lowp_linear_attention(q[:, :, :64], k[:, :, :64], v[:, :, :64], "bfloat16", 32)
    second, s2 = lowp_linear_attention(
        q[:, :, 64:], k[:, :, 64:], v[:, :, 64:], "bfloat16", 32, initial_state=s1
    )
    np.testing.assert_array_equal(np.concatenate([first, second], 2), whole)
    np.testing.assert_array_equal(s2, s_whole)

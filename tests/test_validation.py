"""Bad input raises a clear exception naming the argument, before any GPU work
(so these run on CPU-only machines too)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from attention_proto import simple_attention


def qkv(b=1, h=2, nq=5, nk=7, d=64, dtype=np.float16, kvh=None):
    r = np.random.default_rng(0)
    kvh = kvh or h
    return (
        r.standard_normal((b, h, nq, d)).astype(dtype),
        r.standard_normal((b, kvh, nk, d)).astype(dtype),
        r.standard_normal((b, kvh, nk, d)).astype(dtype),
    )


def test_wrong_dtype_names_argument_and_dtypes():
    q, k, v = qkv(dtype=np.float64)
    with pytest.raises(TypeError, match=r"\[simple_attention\] q must be one of .*got float64"):
        simple_attention(q, k, v)


def test_mixed_dtypes():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="must share a dtype"):
        simple_attention(q, k.astype(np.float32), v.astype(np.float32))


def test_shape_mismatches():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="k and v must have the same shape"):
        simple_attention(q, k, v[:, :, :3])
    with pytest.raises(ValueError, match="must have 4 dimensions"):
        simple_attention(q[0], k, v)
    q2, k2, v2 = qkv(b=2)
    with pytest.raises(ValueError, match="k must have batch 1 like q, got 2"):
        simple_attention(q, k2, v2)
    with pytest.raises(ValueError, match="head_dim 64 like q, got 32"):
        simple_attention(q, k[..., :32].copy(), v[..., :32].copy())


def test_gqa_heads_must_divide():
    q, k, v = qkv(h=3, kvh=2)
    with pytest.raises(ValueError, match=r"q's heads \(3\) must be a multiple of k's heads \(2\)"):
        simple_attention(q, k, v)


def test_unsupported_head_dim():
    q, k, v = qkv(d=80)
    with pytest.raises(ValueError, match=r"head_dim must be one of \[32, 64, 128\], got 80"):
        simple_attention(q, k, v)


@pytest.mark.parametrize("which", ["q", "k"])
def test_zero_size_dimension(which):
    q, k, v = qkv(nq=0 if which == "q" else 5, nk=0 if which == "k" else 7)
    with pytest.raises(ValueError, match=f"{which} must have no zero-size dimension"):
        simple_attention(q, k, v)


def test_sizes_overflowing_int32_are_rejected():
    # A 2^31-row view over one row of memory: validation must refuse it from the
    # shape alone, before any allocation or launch.
    base = np.zeros(64, np.float16)
    huge = as_strided(base, shape=(1, 1, 2**31, 64), strides=(0, 0, 0, 2), writeable=False)
    with pytest.raises(ValueError, match=r"q.shape\[2\] = 2147483648 overflows int32"):
        simple_attention(huge, huge, huge)


def test_non_array_inputs():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="q must be a NumPy array or a CUDA array"):
        simple_attention(q.tolist(), k, v)


def test_bad_scale():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        simple_attention(q, k, v, scale=float("nan"))


def test_flash_rejects_float32_and_odd_head_dims():
    from attention_proto import flash_attention

    q, k, v = qkv(dtype=np.float32)
    with pytest.raises(TypeError, match=r"\[flash_attention\] q must be one of float16, bfloat16"):
        flash_attention(q, k, v)
    q, k, v = qkv(d=96)
    with pytest.raises(ValueError, match=r"head_dim must be one of \[64, 128\], got 96"):
        flash_attention(q, k, v)


def _paged_inputs(lens=(10, 20), page_size=8, h=4, kvh=2, d=64):
    from attention_proto import build_page_pool

    r = np.random.default_rng(1)
    n = max(lens)
    k = r.standard_normal((len(lens), kvh, n, d)).astype(np.float16)
    v = r.standard_normal((len(lens), kvh, n, d)).astype(np.float16)
    q = r.standard_normal((len(lens), h, d)).astype(np.float16)
    kp, vp, table = build_page_pool(k, v, lens, page_size)
    return q, kp, vp, table, np.asarray(lens, np.int32)


@pytest.mark.parametrize(
    "mutate,error,match",
    [
        (lambda a: a[3].__setitem__((0, 0), -1), ValueError, r"page_table\[0, 0\] = -1 is outside"),
        (lambda a: a[3].__setitem__((1, 1), 99), ValueError, r"page_table\[1, 1\] = 99 is outside"),
        (lambda a: a[4].__setitem__(1, 25), ValueError, r"context_lens\[1\] = 25 is outside 1..24"),
        (lambda a: a[4].__setitem__(0, 0), ValueError, r"context_lens\[0\] = 0 is outside"),
    ],
)
def test_paged_bad_values_are_rejected_before_launch(mutate, error, match):
    from attention_proto import paged_attention

    args = list(_paged_inputs())
    mutate(args)
    with pytest.raises(error, match=match):
        paged_attention(*args)


def test_paged_bad_types_and_shapes():
    from attention_proto import paged_attention

    q, kp, vp, table, lens = _paged_inputs()
    with pytest.raises(TypeError, match="page_table must be int32, got int64"):
        paged_attention(q, kp, vp, table.astype(np.int64), lens)
    with pytest.raises(TypeError, match="context_lens must be a 1-d int32"):
        paged_attention(q, kp, vp, table, lens.astype(np.int64))
    with pytest.raises(ValueError, match=r"heads \(3\) must be a multiple of the kv heads \(2\)"):
        paged_attention(q[:, :3].copy(), kp, vp, table, lens)
    with pytest.raises(ValueError, match="page size must be one of"):
        q2, kp2, vp2, t2, l2 = _paged_inputs(page_size=12)
        paged_attention(q2, kp2, vp2, t2, l2)


def test_flash_causal_grid_limit_is_named_before_any_work():
    # Causal launches (heads * batch, query blocks) so the longest blocks go
    # first; more than 65535 query blocks cannot launch and must say so.
    from attention_proto import flash_attention
    from attention_proto.ops.flash import FlashConfig

    rows = 65535 * 64 + 1
    base = np.zeros(64, np.float16)
    q = as_strided(base, shape=(1, 1, rows, 64), strides=(0, 0, 0, 2), writeable=False)
    cfg = FlashConfig(64, 64, 2, 4)
    with pytest.raises(ValueError, match=r"causal launches .* got 1 and 65536"):
        flash_attention(q, q, q, causal=True, config=cfg)


def test_paged_score_path_is_checked_before_launch():
    from attention_proto.ops import paged

    q, kp, vp, table, lens = _paged_inputs(h=2, kvh=2)  # MHA: one q head per kv head
    with pytest.raises(ValueError, match=r"'mma' needs 2\+ q heads per kv head"):
        paged.Prepared(q, kp, vp, table, lens, scores="mma")
    q, kp, vp, table, lens = _paged_inputs()
    with pytest.raises(ValueError, match=r"scores must be one of \('lanes', 'mma'\)"):
        paged.Prepared(q, kp, vp, table, lens, scores="wgmma")


def test_scale_accepts_real_numbers_of_any_type_and_refuses_bools():
    from attention_proto.ops.attention_front import normalize_scale

    for s in (0.125, 1, np.float32(0.125), np.float64(0.5), np.int64(2), np.array(0.25)):
        assert normalize_scale("op", s, 64) == pytest.approx(float(s))
    assert normalize_scale("op", None, 64) == 0.125
    for bad in (True, np.bool_(False)):
        with pytest.raises(TypeError, match=r"\[op\] scale must be a real number, got the bool"):
            normalize_scale("op", bad, 64)
    with pytest.raises(TypeError, match="scale must be a real number .* got str 'x'"):
        normalize_scale("op", "x", 64)
    with pytest.raises(TypeError, match="got complex"):
        normalize_scale("op", 1j, 64)
    with pytest.raises(ValueError, match="positive finite number, got -1"):
        normalize_scale("op", -1, 64)


def test_bool_scale_is_refused_by_the_ops():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="got the bool True"):
        simple_attention(q, k, v, scale=True)


class _FakeCudaArray:
    """A DLPack producer on CUDA device 1 (tests the device check without GPUs)."""

    def __dlpack_device__(self):
        return (2, 1)

    def __dlpack__(self, stream=None):
        raise AssertionError("the device is checked before the data is asked for")


def test_an_array_on_another_cuda_device_names_both_devices():
    from attention_proto.ops import tensors

    with pytest.raises(
        ValueError,
        match=r"\[flash_attention\] q is on CUDA device 1, but "
        r"attention_proto runs on CUDA device 0",
    ):
        tensors.inspect(_FakeCudaArray(), "q", "flash_attention")


def test_size_one_dimensions_strides_do_not_matter():
    from attention_proto.ops import tensors

    base = np.zeros(4 * 64 + 8, np.float16)
    x = as_strided(base[3:], shape=(1, 4, 1, 64), strides=(6, 128, 10, 2))
    info = tensors.inspect(x, "q", "op")
    assert info["strides"] == (0, 64, 0, 1)
    assert tensors.is_contiguous(info)


def test_numpy_views_report_the_strides_of_their_uploaded_copy():
    # NumPy inputs are uploaded as contiguous copies, so the kernel must get the
    # copy's strides, not the view's (heads past the first read wrong rows).
    from attention_proto.ops import tensors

    parent = np.zeros((2, 3, 40, 64), np.float16)
    for view in (parent[:, :, 5:22], parent.transpose(0, 2, 1, 3)[:, :17], parent[:, ::2]):
        info = tensors.inspect(view, "q", "op")
        assert info["strides"] == tensors._normalized(
            view.shape, tensors.contiguous_strides(view.shape)
        )
        assert tensors.is_contiguous(info)


def test_paged_zero_kv_heads_names_the_head_count():
    from attention_proto import paged_attention

    q, kp, vp, table, lens = _paged_inputs()
    with pytest.raises(ValueError, match=r"kv heads must be in 1\.\.65535, got 0"):
        paged_attention(q, kp[:, :0], vp[:, :0], table, lens)

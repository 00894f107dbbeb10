"""Proto 7 on a GPU: standalone RoPE, ALiBi fused into flash and GQA group
sizes, each against an FP64 reference (never run yet: written on a CPU-only
machine for the next GPU session)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attention_proto as ap
from attention_proto import reference
from attention_proto.ops import flash
from tolerance import assert_close_to_reference, rounded, to_dtype

pytestmark = pytest.mark.gpu


def _normal(rng, shape, dtype, scale=1.0):
    return to_dtype(rng.standard_normal(shape).astype(np.float32) * scale, dtype)


def _rope_bound(x, dtype):
    # One rounding of each output (fp32 math on exact inputs and tables): half
    # an ulp of the dtype at the output's magnitude, plus fp32 noise.
    ulp = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[dtype]
    return ulp * np.maximum(np.abs(x), 2.0**-14) + 1e-6


@settings(max_examples=25, deadline=None)
@given(
    b=st.sampled_from([1, 2]),
    h=st.sampled_from([1, 3, 8]),
    n=st.sampled_from([1, 7, 128, 1000]),
    d=st.sampled_from([16, 64, 80, 128, 256]),
    dtype=st.sampled_from(["float16", "bfloat16"]),
    interleaved=st.booleans(),
    offset=st.sampled_from([0, 1, 517]),
    seed=st.integers(0, 2**31),
)
def test_rope_matches_fp64_for_both_conventions_and_offsets(
    b, h, n, d, dtype, interleaved, offset, seed
):
    rng = np.random.default_rng(seed)
    x = _normal(rng, (b, h, n, d), dtype)
    cos, sin = ap.rope_tables(offset + n + 3, d)
    out = ap.rope(x, cos, sin, offset=offset, interleaved=interleaved)
    ref = reference.rope(x, cos=cos, sin=sin, offset=offset, interleaved=interleaved)
    err = np.abs(np.asarray(out).astype(np.float64) - ref)
    assert (err <= _rope_bound(ref, dtype)).all(), float(err.max())


def test_rope_torch_paths_strided_inplace_and_decode_plan_reuse():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    big = torch.from_numpy(rng.standard_normal((2, 16, 9, 128)).astype(np.float32))
    x = big.to("cuda", torch.bfloat16).transpose(1, 2)[:, :, 1:5]  # [2, 9, 4, 128] view
    cos, sin = (torch.from_numpy(t).cuda() for t in ap.rope_tables(64, 128))
    xs = x.float().cpu().numpy()
    for interleaved in (False, True):
        for offset in (0, 3, 60):
            out = ap.rope(x, cos, sin, offset=offset, interleaved=interleaved)
            tables = {"cos": cos.cpu().numpy(), "sin": sin.cpu().numpy()}
            ref = reference.rope(xs, **tables, offset=offset, interleaved=interleaved)
            assert out.is_contiguous() and out.dtype == torch.bfloat16
            err = np.abs(out.float().cpu().numpy() - ref)
            assert (err <= _rope_bound(ref, "bfloat16")).all()
    y = x.clone()
    back = ap.rope(y, cos, sin, offset=2, inplace=True)
    assert back is y
    torch.testing.assert_close(y, ap.rope(x, cos, sin, offset=2), rtol=0, atol=0)
    from attention_proto.ops import rope

    plans = len(rope._PLANS)
    for offset in range(10):  # decode: one plan for every offset
        ap.rope(x[:, :, :1], cos, sin, offset=offset)
    assert len(rope._PLANS) <= plans + 1


def test_rope_numpy_inplace_writes_back():
    rng = np.random.default_rng(2)
    x = _normal(rng, (1, 2, 33, 64), "float16")
    cos, sin = ap.rope_tables(40, 64)
    expect = ap.rope(x, cos, sin, offset=7)
    got = ap.rope(x, cos, sin, offset=7, inplace=True)
    assert got is x
    np.testing.assert_array_equal(x, expect)


def _alibi_bias(slopes, nq, nk):
    return reference.alibi_bias(slopes.shape[-1], nq, nk, slopes=slopes, symmetric=True)


@settings(max_examples=25, deadline=None)
@given(
    b=st.sampled_from([1, 2]),
    h=st.sampled_from([1, 4, 12]),
    nq=st.sampled_from([1, 17, 128, 1000]),
    nk=st.sampled_from([1, 97, 128, 1025]),
    d=st.sampled_from(flash.HEAD_DIMS),
    causal=st.booleans(),
    dtype=st.sampled_from(flash.DTYPES),
    per_batch=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_alibi_matches_fp64_with_an_explicit_bias(b, h, nq, nk, d, causal, dtype, per_batch, seed):
    if b * h * nq * nk > 2**25:  # keep the FP64 reference under a second or two
        h, b = 1, 1
    rng = np.random.default_rng(seed)
    q, k, v = (_normal(rng, (b, h, n, d), dtype) for n in (nq, nk, nk))
    if per_batch:
        slopes = rng.uniform(0.01, 1.0, (b, h)).astype(np.float32)
    else:
        slopes = reference.alibi_slopes(h).astype(np.float32)
    bias = _alibi_bias(slopes, nq, nk)
    out = ap.flash_attention(q, k, v, causal=causal, alibi_slopes=slopes)
    assert_close_to_reference(out, q, k, v, dtype, causal=causal, bias=bias)


def test_alibi_default_slopes_and_lse_on_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    q, k, v = (_normal(rng, (2, 12, n, 128), "bfloat16") for n in (300, 500, 500))
    tq, tk, tv = (
        torch.from_numpy(x.astype(np.float32)).to("cuda", torch.bfloat16) for x in (q, k, v)
    )
    for causal in (False, True):
        out, lse = ap.flash_attention(
            tq, tk, tv, causal=causal, alibi_slopes="default", return_lse=True
        )
        bias = _alibi_bias(reference.alibi_slopes(12), 300, 500)
        assert_close_to_reference(
            out.float().cpu().numpy(), q, k, v, "bfloat16", causal=causal, bias=bias
        )
        _, ref_lse = reference.attention(q, k, v, causal=causal, bias=bias, return_lse=True)
        np.testing.assert_allclose(lse.cpu().numpy(), ref_lse, rtol=1e-4, atol=1e-4)
        slopes = torch.from_numpy(reference.alibi_slopes(12).astype(np.float32)).cuda()
        again = ap.flash_attention(tq, tk, tv, causal=causal, alibi_slopes=slopes)
        torch.testing.assert_close(again, out, rtol=0, atol=0)


@pytest.mark.parametrize("d", flash.HEAD_DIMS)
@pytest.mark.parametrize(
    "nq,nk,causal",
    [
        (1000, 1000, False),
        (1000, 1000, True),
        (300, 1025, False),
        (300, 1025, True),
        (1025, 300, False),
        (1025, 300, True),
        (17, 2000, False),
        (2000, 17, False),
    ],
)
def test_alibi_keys_from_the_diagonal_tile_cover_every_key_once(nq, nk, causal, d):
    # The ALiBi kernel visits key tiles nearest its block's diagonal first
    # (causal: descending); the diagonal may sit past either end (Nq != Nk).
    # Of the 8 heads' slopes (1/2 .. 1/256) the shallow ones weigh far tiles
    # enough that a missed or doubled tile shows.
    rng = np.random.default_rng(nq * 7 + nk + causal)
    q, k, v = (_normal(rng, (1, 8, n, d), "bfloat16") for n in (nq, nk, nk))
    slopes = reference.alibi_slopes(8).astype(np.float32)
    out = ap.flash_attention(q, k, v, causal=causal, alibi_slopes=slopes)
    assert_close_to_reference(
        out, q, k, v, "bfloat16", causal=causal, bias=_alibi_bias(slopes, nq, nk)
    )


def test_alibi_with_zero_slopes_is_plain_attention():
    rng = np.random.default_rng(4)
    q, k, v = (_normal(rng, (1, 4, 200, 64), "float16") for _ in range(3))
    plain = ap.flash_attention(q, k, v)
    zero = ap.flash_attention(q, k, v, alibi_slopes=np.zeros(4, np.float32))
    # s + 0 * |distance| is s, but the ALiBi kernel visits the key tiles in
    # another order (nearest the diagonal first), so its sums round otherwise:
    # both meet the FP64 reference, and they agree to a few fp16 ulps (one ulp
    # failed on an H200 in session 6, after the order changed).
    assert_close_to_reference(zero, q, k, v, "float16")
    assert_close_to_reference(plain, q, k, v, "float16")
    np.testing.assert_allclose(np.asarray(zero), np.asarray(plain), rtol=2**-8, atol=2**-12)


@pytest.mark.parametrize("group", [1, 2, 4, 8, 32])  # 32: MQA at 32 heads
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", flash.DTYPES)
def test_gqa_group_sizes_equal_mha_on_expanded_kv(group, causal, dtype):
    rng = np.random.default_rng(group)
    h, d = 32, 128
    q = _normal(rng, (1, h, 257, d), dtype)
    k, v = (_normal(rng, (1, h // group, 300, d), dtype) for _ in range(2))
    grouped = np.asarray(ap.flash_attention(q, k, v, causal=causal))
    expanded = [reference.repeat_kv(np.asarray(x), h) for x in (k, v)]
    mha = np.asarray(ap.flash_attention(q, *expanded, causal=causal))
    # Same kernel, same keys in the same order: bit for bit.
    np.testing.assert_array_equal(grouped, mha)
    assert_close_to_reference(grouped, q, k, v, dtype, causal=causal)


def test_fused_rope_candidates_agree_standalone_then_attention():
    # What fused RoPE must reproduce (Proto 7, not built yet): standalone RoPE
    # on q and k, then plain attention, against FP64 RoPE + attention.
    rng = np.random.default_rng(5)
    q, k, v = (_normal(rng, (1, 4, n, 128), "bfloat16") for n in (64, 96, 96))
    cos, sin = ap.rope_tables(96, 128)
    rq = ap.rope(q, cos, sin, offset=32)
    rk = ap.rope(k, cos, sin)
    out = ap.flash_attention(rq, rk, v, causal=True)
    fq = rounded(reference.rope(q, cos=cos, sin=sin, offset=32), "bfloat16")
    fk = rounded(reference.rope(k, cos=cos, sin=sin), "bfloat16")
    assert_close_to_reference(out, fq, fk, v, "bfloat16", causal=True)


@pytest.mark.parametrize("h,kvh", [(8, 8), (8, 2)])  # MHA (lanes path), GQA 4 (mma path)
@pytest.mark.parametrize("slopes_kind", ["default", "per_head", "per_batch"])
def test_paged_alibi_matches_fp64_on_both_score_paths(h, kvh, slopes_kind):
    rng = np.random.default_rng(h * 10 + kvh)
    lens = [1, 17, 100, 33]
    b, d = len(lens), 128
    q = rng.standard_normal((b, h, d)).astype(np.float32)
    k = rng.standard_normal((b, kvh, max(lens), d)).astype(np.float32)
    v = rng.standard_normal((b, kvh, max(lens), d)).astype(np.float32)
    kp, vp, table = ap.build_page_pool(k, v, lens, 16, fragment=True, extra_pages=2)
    kp, vp = np.nan_to_num(kp).astype(np.float16), np.nan_to_num(vp).astype(np.float16)
    table = np.where(table < 0, 0, table).astype(np.int32)
    q16, lens32 = q.astype(np.float16), np.asarray(lens, np.int32)
    if slopes_kind == "default":
        arg, ref_slopes = "default", reference.alibi_slopes(h)
    elif slopes_kind == "per_head":
        arg = ref_slopes = rng.uniform(0.01, 0.5, h).astype(np.float32)
    else:
        arg = ref_slopes = rng.uniform(0.01, 0.5, (b, h)).astype(np.float32)
    out = ap.paged_attention(q16, kp, vp, table, lens32, alibi_slopes=arg)
    ref = reference.paged_decode(
        q16, kp, vp, table.astype(np.int64), lens32, alibi_slopes=ref_slopes
    )
    plain = reference.paged_decode(q16, kp, vp, table.astype(np.int64), lens32)
    err = np.abs(out.astype(np.float32) - ref).max()
    assert err <= 4 * 2**-10 * np.abs(ref).max() + 1e-3, err
    assert np.abs(ref - plain).max() > 10 * (err + 1e-3)  # the bias matters at these lengths
    # Several partitions per sequence: the bias lives in phase 1, the merge is unchanged.
    split = ap.paged_attention(q16, kp, vp, table, lens32, alibi_slopes=arg, partition_size=32)
    assert np.abs(split.astype(np.float32) - ref).max() <= 4 * 2**-10 * np.abs(ref).max() + 1e-3
    # Torch tensors take the same kernel through the fast path.
    torch = pytest.importorskip("torch")
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).cuda()  # noqa: E731
    targ = arg if isinstance(arg, str) else t(arg)
    tout = ap.paged_attention(t(q16), t(kp), t(vp), t(table), t(lens32), alibi_slopes=targ)
    np.testing.assert_array_equal(tout.cpu().numpy(), out)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("nq,nk", [(1, 1), (17, 17), (97, 97), (5, 130), (129, 129)])
def test_fused_rope_equals_rope_then_attention(interleaved, causal, nq, nk):
    torch = pytest.importorskip("torch")
    g = torch.Generator(device="cuda").manual_seed(nq * 1000 + nk)
    d, h, kvh = 128, 4, 2

    def r(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=g)

    q, k, v = r(2, h, nq, d), r(2, kvh, nk, d), r(2, kvh, nk, d)
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(nk + 3, d))
    fused = ap.flash_attention(
        q, k, v, causal=causal, rope=(cos, sin), rope_interleaved=interleaved
    )
    rq = ap.rope(q, cos, sin, offset=nk - nq, interleaved=interleaved)
    rk = ap.rope(k, cos, sin, interleaved=interleaved)
    two_step = ap.flash_attention(rq, rk, v, causal=causal)
    # The same rounding of the rotated q and k (rope_pairs.h in both kernels): the
    # attention sees the same bf16 inputs, so the outputs agree to its rounding.
    diff = (fused.float() - two_step.float()).abs().max().item()
    assert diff <= 2**-7 * two_step.float().abs().max().item() + 1e-3, diff
    np_in = [x.float().cpu().numpy() for x in (rq, rk, v)]
    assert_close_to_reference(fused.float().cpu().numpy(), *np_in, "bfloat16", causal=causal)


def test_fused_rope_on_numpy_equals_rope_then_attention():
    # rope= rotates k with the standalone pass and q in the kernel, by the same
    # rounding (rope_pairs.h), so attention sees the same fp16 inputs; the ROPE
    # kernel is a separate compile: allow an fp16 ulp for its contraction.
    rng = np.random.default_rng(11)
    q, k, v = (_normal(rng, (1, 4, n, 64), "float16") for n in (40, 97, 97))
    cos, sin = ap.rope_tables(100, 64)
    fused = np.asarray(ap.flash_attention(q, k, v, causal=True, rope=(cos, sin)))
    rq = ap.rope(q, cos, sin, offset=97 - 40)
    rk = ap.rope(k, cos, sin)
    two_step = np.asarray(ap.flash_attention(rq, rk, v, causal=True))
    np.testing.assert_allclose(fused, two_step, rtol=2**-10, atol=2**-14)


def test_fused_rope_errors_name_flash_attention_on_torch():
    torch = pytest.importorskip("torch")
    q = torch.randn(1, 2, 8, 64, device="cuda", dtype=torch.float16)
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(8, 64))
    k = q.clone().requires_grad_()
    with pytest.raises(RuntimeError, match=r"\[flash_attention\] k requires grad"):
        ap.flash_attention(q, k, q, rope=(cos, sin))
    with pytest.raises(TypeError, match=r"\[flash_attention\] rope cos must be a torch tensor"):
        ap.flash_attention(q, q, q, rope=(cos.cpu().numpy(), sin.cpu().numpy()))

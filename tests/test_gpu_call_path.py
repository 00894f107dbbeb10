"""The public call as a torch user makes it (issue: "a user's call runs at kernel
speed"): stream order, no host synchronization, CUDA-graph capture and replay,
device-side checks of page ids and lengths, memory stability, strided views."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import reference
from tolerance import assert_close_to_reference

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SLEEP_CYCLES = 2_000_000_000  # ~1 s at H200 clocks: far longer than any call's host time


def _np(t):
    return t.detach().float().cpu().numpy()


def _qkv(b=2, h=4, kvh=2, n=97, nk=None, d=64, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    nk = nk or n

    def r(*shape):
        return torch.randn(*shape, device="cuda", dtype=dtype, generator=g)

    return r(b, h, n, d), r(b, kvh, nk, d), r(b, kvh, nk, d)


def _paged_torch(lens, *, h=8, kvh=2, d=128, page_size=16, extra=3, seed=0):
    rng = np.random.default_rng(seed)
    n = max(lens)
    q = rng.standard_normal((len(lens), h, d)).astype(np.float32)
    k = rng.standard_normal((len(lens), kvh, n, d)).astype(np.float32)
    v = rng.standard_normal((len(lens), kvh, n, d)).astype(np.float32)
    kp, vp, table = ap.build_page_pool(k, v, lens, page_size, fragment=True, extra_pages=extra)
    kp, vp = np.nan_to_num(kp), np.nan_to_num(vp)
    table = np.where(table < 0, 0, table).astype(np.int32)

    def dev(x, dt=torch.bfloat16):
        return torch.from_numpy(np.ascontiguousarray(x)).to("cuda", dt)

    return (
        dev(q),
        dev(kp),
        dev(vp),
        dev(table, torch.int32),
        dev(np.asarray(lens, np.int32), torch.int32),
    )


def _paged_ref(q, kp, vp, table, lens):
    return reference.paged_decode(_np(q), _np(kp), _np(vp), _np(table).astype(np.int64), _np(lens))


def _assert_paged_close(out, ref):
    out = _np(out)
    assert not np.isnan(out).any()
    assert np.abs(out - ref).max() <= 4 * 2**-8 * np.abs(ref).max() + 1e-3


@pytest.fixture(autouse=True)
def _no_pending_errors():
    # A test that provokes a device input error must consume it itself.
    yield
    torch.cuda.synchronize()
    assert ap._core.take_input_error() == ""


@pytest.mark.small
@pytest.mark.host_timing
@pytest.mark.parametrize("how", ["current", "argument"])
def test_flash_is_ordered_on_the_callers_stream_without_host_sync(how):
    q, k, v = _qkv()
    ap.flash_attention(q, k, v, causal=True)  # plan and kernel built before the timed part
    torch.cuda.synchronize()
    src = [x.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.zero_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        for x, s in zip((q, k, v), src, strict=True):
            x.copy_(s)
        if how == "current":
            out = ap.flash_attention(q, k, v, causal=True)
    if how == "argument":
        out = ap.flash_attention(q, k, v, causal=True, stream=side)
    # The host is back while the sleep still runs: the call waited for nothing.
    assert not side.query()
    side.synchronize()
    assert_close_to_reference(_np(out), *(_np(s) for s in src), "bfloat16", causal=True, factor=2.0)


@pytest.mark.small
@pytest.mark.host_timing
def test_paged_is_ordered_on_the_callers_stream_without_host_sync():
    q, kp, vp, table, lens = _paged_torch([5, 40, 33])
    ap.paged_attention(q, kp, vp, table, lens)  # plan and kernels built first
    torch.cuda.synchronize()
    src = q.clone()
    q.zero_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        q.copy_(src)
        out = ap.paged_attention(q, kp, vp, table, lens)
    assert not side.query()
    side.synchronize()
    _assert_paged_close(out, _paged_ref(src, kp, vp, table, lens))


@pytest.mark.small
def test_flash_graph_capture_replays_with_new_contents():
    q, k, v = _qkv(n=65)
    ap.flash_attention(q, k, v, causal=True)  # warm-up: plan and kernel built outside
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out, lse = ap.flash_attention(q, k, v, causal=True, return_lse=True)
    for seed in (1, 2):
        nq, nk, nv = _qkv(n=65, seed=seed)
        q.copy_(nq), k.copy_(nk), v.copy_(nv)
        g.replay()
        torch.cuda.synchronize()
        assert_close_to_reference(_np(out), _np(nq), _np(nk), _np(nv), "bfloat16", causal=True)
        ref_lse = reference.attention(_np(nq), _np(nk), _np(nv), causal=True, return_lse=True)[1]
        assert np.abs(_np(lse) - ref_lse).max() < 2e-2


@pytest.mark.small
def test_paged_graph_capture_replays_a_decode_loop():
    # The decode loop: same buffers, new q, new lengths, new page ids each step.
    q, kp, vp, table, lens = _paged_torch([40, 17], h=8, kvh=2, extra=8)
    ap.paged_attention(q, kp, vp, table, lens)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = ap.paged_attention(q, kp, vp, table, lens)
    rng = np.random.default_rng(3)
    pages = kp.shape[0]
    for step in range(3):
        q.copy_(torch.randn_like(q))
        lens.copy_(torch.tensor([41 + step, 3 + step], dtype=torch.int32))
        perm = torch.tensor(rng.permutation(pages)[: table.numel()], dtype=torch.int32)
        table.copy_(perm.view_as(table))
        g.replay()
        torch.cuda.synchronize()
        _assert_paged_close(out, _paged_ref(q, kp, vp, table, lens))


@pytest.mark.small
@pytest.mark.parametrize(
    "bad,match",
    [
        ("page", r"page_table\[1, 0\] = -7 is outside the pool"),
        ("page_high", r"page_table\[0, 1\] = \d+ is outside the pool"),
        ("len0", r"context_lens\[1\] = 0 is outside 1\.\."),
        ("len_neg", r"context_lens\[0\] = -3 is outside"),
        ("len_beyond", r"context_lens\[1\] = 100000 is outside 1\.\.\d+"),
    ],
)
def test_bad_device_page_ids_and_lengths_raise_and_stay_in_the_pool(bad, match):
    q, kp, vp, table, lens = _paged_torch([40, 17], extra=0)
    if bad == "page":
        table[1, 0] = -7
    elif bad == "page_high":
        table[0, 1] = kp.shape[0] + 1000
    elif bad == "len0":
        lens[1] = 0
    elif bad == "len_neg":
        lens[0] = -3
    else:
        lens[1] = 100000
    out = ap.paged_attention(q, kp, vp, table, lens)
    with pytest.raises(ap.DeviceInputError, match=match):
        ap.check_errors()
    ap.check_errors()  # reported once
    if bad == "len0":
        assert (_np(out)[1] == 0).all()
    # The next call raises it too when the error comes from an earlier launch.
    ap.paged_attention(q, kp, vp, table, lens)
    torch.cuda.synchronize()
    with pytest.raises(ap.DeviceInputError, match=match):
        ap.paged_attention(q, kp, vp, table, lens)
    torch.cuda.synchronize()
    ap._core.take_input_error()


def test_host_validation_is_opt_in_and_names_the_value():
    q, kp, vp, table, lens = _paged_torch([40, 17])
    table[1, 0] = -7
    with pytest.raises(ValueError, match=r"page_table\[1, 0\] = -7 is outside"):
        ap.paged_attention(q, kp, vp, table, lens, validate="host")


@pytest.mark.small
def test_strided_device_context_lens_and_table_views_are_honoured():
    # The hole a user hit: one column of a 2-d int32 tensor as context_lens.
    q, kp, vp, table, lens = _paged_torch([17, 40, 5])
    both = torch.stack([lens, lens * 0 + 999], dim=1)  # [B, 2]; column 0 holds the lengths
    wide = torch.full((table.shape[0], table.shape[1] + 5), -1, dtype=torch.int32, device="cuda")
    wide[:, : table.shape[1]] = table
    out = ap.paged_attention(q, kp, vp, wide[:, : table.shape[1]], both[:, 0])
    _assert_paged_close(out, _paged_ref(q, kp, vp, table, lens))
    qwide = torch.zeros(q.shape[0], q.shape[1], 2 * q.shape[2], dtype=q.dtype, device="cuda")
    qwide[..., : q.shape[2]] = q
    out = ap.paged_attention(qwide[..., : q.shape[2]], kp, vp, table, lens)
    _assert_paged_close(out, _paged_ref(q, kp, vp, table, lens))


@pytest.mark.small
def test_non_contiguous_device_pages_are_refused_with_their_strides():
    q, kp, vp, table, lens = _paged_torch([17, 40])
    wide = torch.zeros(kp.shape[:-1] + (2 * kp.shape[-1],), dtype=kp.dtype, device="cuda")
    with pytest.raises(ValueError, match=r"k_pages must be C-contiguous, got strides"):
        ap.paged_attention(q, wide[..., : kp.shape[-1]], vp, table, lens)


@pytest.mark.parametrize("op", ["flash_attention", "simple_attention", "linear_attention"])
def test_device_inputs_strided_in_head_dim_are_refused(op):
    q, k, v = _qkv(h=2, kvh=2, d=128)
    with pytest.raises(ValueError, match=r"q must be contiguous in its last dimension"):
        getattr(ap, op)(q[..., ::2], k[..., ::2].contiguous(), v[..., ::2].contiguous())


def test_size_one_dims_with_odd_strides_are_accepted():
    q, k, v = _qkv(b=1, h=1, kvh=1, n=33)
    odd = torch.as_strided(q, (1, 1, 33, 64), (7, 3, 64, 1))
    out = ap.flash_attention(odd, k, v)
    assert_close_to_reference(_np(out), _np(q), _np(k), _np(v), "bfloat16")


def test_requires_grad_is_refused_not_silently_detached():
    q, k, v = _qkv()
    q.requires_grad_(True)
    with pytest.raises(RuntimeError, match=r"\[flash_attention\] q requires grad.*forward-only"):
        ap.flash_attention(q, k, v)
    with torch.no_grad():
        ap.flash_attention(q, k, v)


@pytest.mark.not_under_memcheck
@pytest.mark.exclusive_gpu
def test_memory_stays_flat_over_1000_calls():
    # The device's free memory counts every process on it: beside other test
    # shards (session 14, 8 shards at 605b194) it grew by their allocations
    # (174 MB), while alone at the same commit it stayed flat (exclusive_gpu:
    # conftest fails it inside shards).
    q, k, v = _qkv(b=2, h=8, kvh=2, n=256, d=128)
    pq, kp, vp, table, lens = _paged_torch([300, 1000, 17])
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(256, 128))
    s0 = torch.zeros(2, 8, 128, 128, device="cuda")
    # N=1024, D=128: the wgmma kernel on sm_90a (TMA descriptors encoded per call).
    qh, kh, vh = _qkv(b=1, h=4, kvh=2, n=1024, d=128)
    # Every op as it lands: flash, paged, linear (with its state in and out), rope.
    for fn in (
        lambda: ap.flash_attention(q, k, v, causal=True),
        lambda: ap.flash_attention(qh, kh, vh, causal=True),
        lambda: ap.paged_attention(pq, kp, vp, table, lens),
        lambda: ap.linear_attention(q, q, q, initial_state=s0, return_state=True),
        lambda: ap.rope(q, cos, sin),
        lambda: ap.flash_attention(q, k, v, alibi_slopes="default"),
    ):
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        before_torch = torch.cuda.memory_allocated()
        free0, total = torch.cuda.mem_get_info()
        for _ in range(1000):
            fn()
        torch.cuda.synchronize()
        used0, used1 = total - free0, total - torch.cuda.mem_get_info()[0]
        assert torch.cuda.memory_allocated() == before_torch
        assert used1 - used0 < 0.01 * used0, (used0, used1)


# Property test: random views of larger tensors for every array argument.
try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


def _view(shape, rng, dtype):
    """A view of `shape` inside a larger tensor, each dimension padded and offset;
    the last dimension by multiples of 8 elements (rows stay 16-byte aligned)
    except now and then, to see the refusal too."""
    unit = 8 if rng.integers(0, 5) else 1
    pads = [int(rng.integers(0, 3)) for _ in shape[:-1]] + [unit * int(rng.integers(0, 3))]
    big = torch.randn([n + p for n, p in zip(shape, pads, strict=True)], device="cuda").to(dtype)
    offs = [int(rng.integers(0, p + 1)) for p in pads[:-1]] + [unit * int(rng.integers(0, 2))]
    offs[-1] = min(offs[-1], pads[-1])
    return big[tuple(slice(o, o + n) for n, o in zip(shape, offs, strict=True))]


if given is not None:

    @settings(max_examples=20, deadline=None)
    @given(
        seed=st.integers(0, 2**16),
        n=st.sampled_from([1, 17, 64, 65]),
        op=st.sampled_from(["flash_attention", "simple_attention"]),
    )
    def test_attention_strided_views_give_the_right_answer_or_a_clear_refusal(seed, n, op):
        rng = np.random.default_rng(seed)
        d = 64
        q, k, v = (_view((2, 2, n, d), rng, torch.bfloat16) for _ in range(3))
        try:
            out = getattr(ap, op)(q, k, v)
        except ValueError as e:
            assert "must be 16-byte aligned" in str(e) or "contiguous" in str(e)
            return
        ref_in = [_np(x.contiguous()) for x in (q, k, v)]
        assert_close_to_reference(_np(out), *ref_in, "bfloat16")

    @settings(max_examples=20, deadline=None)
    @given(seed=st.integers(0, 2**16))
    def test_paged_strided_views_give_the_right_answer_or_a_clear_refusal(seed):
        rng = np.random.default_rng(seed)
        q, kp, vp, table, lens = _paged_torch([17, 40], seed=seed)
        which = ["q", "table", "lens", "k", "v"][seed % 5]
        args = {"q": q, "table": table, "lens": lens, "k": kp, "v": vp}
        if which == "lens":  # a column of a 2-d tensor
            big = torch.zeros((lens.shape[0] + 2, 3), dtype=torch.int32, device="cuda")
            col = int(rng.integers(0, 3))
            big[1:-1, col] = lens
            args[which] = big[1:-1, col]
        elif which == "table":  # a window of a wider, taller table
            big = torch.zeros((table.shape[0] + 2, table.shape[1] + 5), dtype=torch.int32)
            big = big.to("cuda")
            r0, c0 = int(rng.integers(0, 3)), int(rng.integers(0, 6))
            big[r0 : r0 + table.shape[0], c0 : c0 + table.shape[1]] = table
            args[which] = big[r0 : r0 + table.shape[0], c0 : c0 + table.shape[1]]
        else:
            args[which] = _view(tuple(args[which].shape), rng, torch.bfloat16)
            args[which].copy_({"q": q, "k": kp, "v": vp}[which])
        try:
            out = ap.paged_attention(args["q"], args["k"], args["v"], args["table"], args["lens"])
        except ValueError as e:
            assert "contiguous" in str(e) or "aligned" in str(e) or "multiples of 8" in str(e)
            return
        _assert_paged_close(out, _paged_ref(q, kp, vp, table, lens))


@pytest.mark.small
def test_cupy_arrays_run_in_place_through_dlpack():
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 33, 64)).astype(np.float16) for _ in range(3))
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        cq, ck, cv = (cp.asarray(x) for x in (q, k, v))
        out = ap.flash_attention(cq, ck, cv, causal=True, stream=s)
    assert isinstance(out, cp.ndarray)
    s.synchronize()
    assert_close_to_reference(cp.asnumpy(out), q, k, v, "float16", causal=True)

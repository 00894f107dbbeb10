"""linear_attention called as a torch user calls it: the caller's stream, no
host synchronization, CUDA-graph capture, the state round trip in torch, and
refusals that need a device (Proto 6: the other ops' call contract)."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from linear_tolerance import assert_linear_close

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SLEEP_CYCLES = 2_000_000_000  # ~1 s at H200 clocks: far longer than any call's host time


def _np(t):
    return t.detach().float().cpu().numpy()


def _qkv(b=1, h=3, n=97, d=64, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return tuple(torch.randn(b, h, n, d, device="cuda", dtype=dtype, generator=g) for _ in range(3))


@pytest.mark.small
@pytest.mark.host_timing
@pytest.mark.parametrize("how", ["current", "argument"])
def test_ordered_on_the_callers_stream_without_host_sync(how):
    q, k, v = _qkv()
    ap.linear_attention(q, k, v)  # plan and kernels built before the timed part
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
            out, st = ap.linear_attention(q, k, v, return_state=True)
    if how == "argument":
        out, st = ap.linear_attention(q, k, v, return_state=True, stream=side)
    assert not side.query()  # the host is back while the sleep still runs
    side.synchronize()
    assert st.dtype == torch.float32 and st.shape == (1, 3, 64, 64)
    assert_linear_close(_np(out), *(_np(s) for s in src), "bfloat16", 64, final_state=_np(st))


@pytest.mark.small
def test_graph_capture_replays_with_new_contents():
    q, k, v = _qkv(n=130)
    s0 = torch.randn(1, 3, 64, 64, device="cuda")
    ap.linear_attention(q, k, v, chunk_size=32, initial_state=s0)  # warm-up outside
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = ap.linear_attention(q, k, v, chunk_size=32, initial_state=s0)
    for seed in (1, 2):
        nq, nk, nv = _qkv(n=130, seed=seed)
        q.copy_(nq), k.copy_(nk), v.copy_(nv)
        g.replay()
        torch.cuda.synchronize()
        assert_linear_close(
            _np(out), _np(nq), _np(nk), _np(nv), "bfloat16", 32, initial_state=_np(s0)
        )


def test_torch_and_numpy_paths_agree_bitwise():
    q, k, v = _qkv(n=200, d=128, dtype=torch.float16)
    s0 = torch.randn(1, 3, 128, 128, device="cuda")
    out, st = ap.linear_attention(q, k, v, chunk_size=128, initial_state=s0, return_state=True)
    hq, hk, hv = (x.cpu().numpy() for x in (q, k, v))
    hout, hst = ap.linear_attention(
        hq, hk, hv, chunk_size=128, initial_state=s0.cpu().numpy(), return_state=True
    )
    np.testing.assert_array_equal(out.cpu().numpy(), hout)
    np.testing.assert_array_equal(st.cpu().numpy(), hst)


def test_device_refusals_name_the_argument():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match=r"\[linear_attention\] initial_state must be a torch"):
        ap.linear_attention(q, k, v, initial_state=np.zeros((1, 3, 64, 64), np.float32))
    bad = torch.zeros(1, 3, 64, 64, device="cuda").transpose(2, 3)
    with pytest.raises(ValueError, match="initial_state must be C-contiguous"):
        ap.linear_attention(q, k, v, initial_state=bad)
    with pytest.raises(TypeError, match="initial_state must be float32"):
        ap.linear_attention(q, k, v, initial_state=torch.zeros(1, 3, 64, 64, device="cuda").half())
    q.requires_grad_(True)
    with pytest.raises(RuntimeError, match="forward-only"):
        ap.linear_attention(q, k, v)
    odd = torch.zeros(1, 3, 97 * 64 + 4, device="cuda", dtype=torch.bfloat16)[..., 4:]
    with pytest.raises(ValueError, match="16-byte aligned"):
        ap.linear_attention(odd.view(1, 3, 97, 64), k, v)

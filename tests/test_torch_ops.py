"""Proto 8: the ops as torch custom ops. Registration and fake (meta) shapes run
wherever torch is installed; opcheck, torch.compile and graph capture need a GPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from attention_proto import torch_ops  # noqa: E402, F401  (registers attention_proto::*)

ops = torch.ops.attention_proto


def test_schemas_are_registered():
    assert str(ops.flash_attention.default._schema).endswith("float? scale=None) -> Tensor")
    assert str(ops.flash_attention_with_lse.default._schema).endswith(
        "float? scale=None) -> (Tensor, Tensor)"
    )
    assert str(ops.paged_attention.default._schema).endswith("-> Tensor")


def test_fake_implementations_give_output_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 4, 17, 64, dtype=torch.bfloat16, device="cuda")
        k = torch.empty(2, 2, 30, 64, dtype=torch.bfloat16, device="cuda")
        o, lse = ops.flash_attention_with_lse(q, k, k, True, None)
        assert o.shape == q.shape and lse.shape == (2, 4, 17) and lse.dtype == torch.float32
        assert ops.flash_attention(q, k, k).shape == q.shape
        pq = torch.empty(3, 8, 128, dtype=torch.bfloat16, device="cuda")
        pages = torch.empty(10, 2, 16, 128, dtype=torch.bfloat16, device="cuda")
        table = torch.empty(3, 4, dtype=torch.int32, device="cuda")
        lens = torch.empty(3, dtype=torch.int32, device="cuda")
        assert ops.paged_attention(pq, pages, pages, table, lens).shape == pq.shape


def _flash_inputs(requires_grad=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(2, 4, 65, 64, device="cuda", dtype=torch.bfloat16, generator=g)
        for _ in range(3)
    )
    for x in (q, k, v):
        x.requires_grad_(requires_grad)
    return q, k, v


def _paged_inputs():
    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(3, 8, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    pages = torch.randn(12, 2, 16, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    table = torch.arange(12, dtype=torch.int32, device="cuda").view(3, 4)
    lens = torch.tensor([5, 64, 33], dtype=torch.int32, device="cuda")
    return q, pages, pages.clone(), table, lens


@pytest.mark.gpu
def test_opcheck_both_ops():
    q, k, v = _flash_inputs()
    torch.library.opcheck(ops.flash_attention_with_lse.default, (q, k, v, True, None))
    torch.library.opcheck(ops.flash_attention.default, (q, k, v, False, 0.1))
    torch.library.opcheck(ops.paged_attention.default, _paged_inputs())


@pytest.mark.gpu
def test_ops_match_the_direct_calls():
    import attention_proto as ap

    q, k, v = _flash_inputs()
    o, lse = ops.flash_attention_with_lse(q, k, v, True, None)
    o2, lse2 = ap.flash_attention(q, k, v, causal=True, return_lse=True)
    assert torch.equal(o, o2) and torch.equal(lse, lse2)
    assert torch.equal(ops.flash_attention(q, k, v, True), o2)
    args = _paged_inputs()
    assert torch.equal(ops.paged_attention(*args), ap.paged_attention(*args))


@pytest.mark.gpu
def test_torch_compile_fullgraph_has_no_graph_break():
    q, k, v = _flash_inputs()
    pargs = _paged_inputs()

    def f(q, k, v, pq, kp, vp, table, lens):
        o = ops.flash_attention(q * 2, k, v, True)
        return o.sum(dim=-1), ops.paged_attention(pq, kp, vp, table, lens) + 1

    compiled = torch.compile(f, fullgraph=True)
    got = compiled(q, k, v, *pargs)
    want = f(q, k, v, *pargs)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.gpu
def test_custom_ops_capture_in_a_cuda_graph():
    q, k, v = _flash_inputs()
    pargs = _paged_inputs()
    ops.flash_attention(q, k, v, True)
    ops.paged_attention(*pargs)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        o = ops.flash_attention(q, k, v, True)
        po = ops.paged_attention(*pargs)
    q.copy_(torch.randn_like(q))
    pargs[0].copy_(torch.randn_like(pargs[0]))
    g.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(o, ops.flash_attention(q, k, v, True))
    torch.testing.assert_close(po, ops.paged_attention(*pargs))


@pytest.mark.gpu
def test_inputs_that_need_grad_are_refused_not_silently_detached():
    q, k, v = _flash_inputs(requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"\[attention_proto::flash_attention\] the op is forward-only"
    ):
        ops.flash_attention(q, k, v, False)
    pq, kp, vp, table, lens = _paged_inputs()
    with pytest.raises(RuntimeError, match="forward-only"):
        ops.paged_attention(pq.requires_grad_(), kp, vp, table, lens)
    with torch.no_grad():
        o = ops.flash_attention(q, k, v, False)
    assert not o.requires_grad


def test_grad_refusal_is_in_the_fake_implementation_too():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(1, 2, 5, 64, dtype=torch.bfloat16, device="cuda", requires_grad=True)
        with pytest.raises(RuntimeError, match="forward-only"):
            ops.flash_attention(q, q, q)

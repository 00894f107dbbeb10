"""Proto 8: the ops as torch custom ops (torch.library), the seed's framework
extension question asked of PyTorch instead of Burn.

    import attention_proto.torch_ops  # registers attention_proto::* (needs torch)
    o = torch.ops.attention_proto.flash_attention(q, k, v, True)
    o, lse = torch.ops.attention_proto.flash_attention_with_lse(q, k, v, True)

Registered with the low-level `torch.library.Library` (define + impl) rather
than `@torch.library.custom_op`: the decorator wraps every call in Python
layers and an autograd.Function, which measured ~20 us per call on an H200
host (docs/gpu-notes.md), four times the kernel launch. Here the dispatcher
calls our CUDA implementation directly.

Each op has a fake (meta) implementation, so torch.compile traces it without a
graph break. The kernels are forward-only: the Autograd key falls through (no
autograd wrapper per call) and both the CUDA and the fake implementation
refuse inputs that require grad while grad mode is on, as the public calls do;
call under torch.no_grad() or torch.inference_mode(). The CUDA implementations
are the public calls' torch fast path: torch's current stream, outputs from
torch's allocator, capturable in a CUDA graph. Importing this module needs
torch; the rest of the package does not.
"""

from __future__ import annotations

import torch

from .ops import flash, paged

__all__ = [
    "flash_attention",
    "flash_attention_with_lse",
    "paged_attention",
    "noop",
    "noop_custom_op",
]

_LIB = torch.library.Library("attention_proto", "DEF")  # kept alive: owns the registrations

# Two ops rather than one with a return_lse flag: a fixed (Tensor, Tensor)
# result would allocate an empty lse on every call that does not want it
# (~3 us of host time measured on the H200 host).
_LIB.define(
    "flash_attention(Tensor q, Tensor k, Tensor v, bool causal=False, float? scale=None) -> Tensor"
)
_LIB.define(
    "flash_attention_with_lse(Tensor q, Tensor k, Tensor v, bool causal=False, "
    "float? scale=None) -> (Tensor, Tensor)"
)
_LIB.define(
    "paged_attention(Tensor q, Tensor k_pages, Tensor v_pages, Tensor page_table, "
    "Tensor context_lens, float? scale=None, int? partition_size=None, "
    "int? max_context_len=None) -> Tensor"
)
_LIB.define("noop(Tensor q) -> Tensor")


def _refuse_grad(name, *tensors):
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(
            f"[attention_proto::{name}] the op is forward-only (backward is not implemented) "
            "and an input requires grad; call it under torch.no_grad() or "
            "torch.inference_mode(), or detach the inputs"
        )


def _flash_cuda(q, k, v, causal=False, scale=None):
    if q.requires_grad or k.requires_grad or v.requires_grad:
        _refuse_grad("flash_attention", q, k, v)
    return flash._call_torch(q, k, v, causal, scale, False, None, None, check_grad=False)


def _flash_lse_cuda(q, k, v, causal=False, scale=None):
    """(o, lse [B, H, Nq] float32)."""
    if q.requires_grad or k.requires_grad or v.requires_grad:
        _refuse_grad("flash_attention_with_lse", q, k, v)
    return flash._call_torch(q, k, v, causal, scale, True, None, None, check_grad=False)


def _flash_fake(q, k, v, causal=False, scale=None):
    _refuse_grad("flash_attention", q, k, v)
    return q.new_empty(q.shape)


def _flash_lse_fake(q, k, v, causal=False, scale=None):
    _refuse_grad("flash_attention_with_lse", q, k, v)
    b, h, n, _ = q.shape
    return q.new_empty(q.shape), q.new_empty((b, h, n), dtype=torch.float32)


def _paged_cuda(
    q, k_pages, v_pages, page_table, context_lens, scale=None, partition_size=None,
    max_context_len=None,
):  # fmt: skip
    if q.requires_grad or k_pages.requires_grad or v_pages.requires_grad:
        _refuse_grad("paged_attention", q, k_pages, v_pages)
    return paged._call_torch(
        q,
        k_pages,
        v_pages,
        page_table,
        context_lens,
        scale,
        partition_size,
        None,
        None,
        max_context_len,
        check_grad=False,
    )


def _paged_fake(
    q, k_pages, v_pages, page_table, context_lens, scale=None, partition_size=None,
    max_context_len=None,
):  # fmt: skip
    _refuse_grad("paged_attention", q, k_pages, v_pages)
    return q.new_empty(q.shape)


def _noop(q):
    """Does nothing but allocate its output: the dispatch floor of this
    registration path, against which the real ops' overhead is measured."""
    return torch.empty_like(q)


for _name, _cuda, _fake in (
    ("flash_attention", _flash_cuda, _flash_fake),
    ("flash_attention_with_lse", _flash_lse_cuda, _flash_lse_fake),
    ("paged_attention", _paged_cuda, _paged_fake),
    ("noop", _noop, _noop),
):
    _LIB.impl(_name, _cuda, "CUDA")
    _LIB.impl(_name, torch.library.fallthrough_kernel, "Autograd")
    torch.library.register_fake(f"attention_proto::{_name}", _fake, lib=_LIB)

# The overloads themselves: calling one skips the packet's overload lookup.
flash_attention = torch.ops.attention_proto.flash_attention.default
flash_attention_with_lse = torch.ops.attention_proto.flash_attention_with_lse.default
paged_attention = torch.ops.attention_proto.paged_attention.default
noop = torch.ops.attention_proto.noop.default


@torch.library.custom_op("attention_proto::noop_custom_op", mutates_args=(), device_types="cuda")
def noop_custom_op(q: torch.Tensor) -> torch.Tensor:
    """The same empty op through `@torch.library.custom_op`: that path's floor,
    measured beside ours."""
    return torch.empty_like(q)


@noop_custom_op.register_fake
def _noop_custom_op_fake(q):
    return torch.empty_like(q)

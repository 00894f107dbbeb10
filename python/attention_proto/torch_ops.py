"""Proto 8: the ops as torch custom ops (torch.library), the seed's framework
extension question asked of PyTorch instead of Burn.

    import attention_proto.torch_ops  # registers attention_proto::* (needs torch)
    o, lse = torch.ops.attention_proto.flash_attention(q, k, v, True, None, True)

Each op has a fake (meta) implementation, so torch.compile traces it without
a graph break, and an autograd formula that raises: the kernels are
forward-only. The implementations are the public calls' torch fast path, so
they run on torch's current stream and can be captured in a CUDA graph.
Importing this module needs torch; the rest of the package does not.
"""

from __future__ import annotations

import torch

from .ops import flash, paged

__all__ = ["flash_attention", "paged_attention", "noop"]


@torch.library.custom_op("attention_proto::flash_attention", mutates_args=(), device_types="cuda")
def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
    return_lse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(o, lse); lse is an empty float32 tensor unless return_lse."""
    out = flash._call_torch(q, k, v, causal, scale, return_lse, None, None, check_grad=False)
    if return_lse:
        return out
    return out, q.new_empty((0,), dtype=torch.float32)


@flash_attention.register_fake
def _flash_fake(q, k, v, causal=False, scale=None, return_lse=False):
    b, h, n, d = q.shape
    o = q.new_empty((b, h, n, d))
    lse = q.new_empty((b, h, n) if return_lse else (0,), dtype=torch.float32)
    return o, lse


@torch.library.custom_op("attention_proto::paged_attention", mutates_args=(), device_types="cuda")
def paged_attention(
    q: torch.Tensor,
    k_pages: torch.Tensor,
    v_pages: torch.Tensor,
    page_table: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float | None = None,
    partition_size: int | None = None,
    max_context_len: int | None = None,
) -> torch.Tensor:
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


@paged_attention.register_fake
def _paged_fake(
    q, k_pages, v_pages, page_table, context_lens, scale=None, partition_size=None,
    max_context_len=None,
):  # fmt: skip
    return q.new_empty(q.shape)


def _forward_only(name):
    def backward(ctx, *grads):
        raise RuntimeError(
            f"[attention_proto::{name}] backward is not implemented: the op is forward-only"
        )

    return backward


flash_attention.register_autograd(_forward_only("flash_attention"))
paged_attention.register_autograd(_forward_only("paged_attention"))


@torch.library.custom_op("attention_proto::noop", mutates_args=(), device_types="cuda")
def noop(q: torch.Tensor) -> torch.Tensor:
    """An op that does nothing but allocate its output: torch's dispatch floor,
    against which the real ops' overhead is measured."""
    return torch.empty_like(q)


@noop.register_fake
def _noop_fake(q):
    return torch.empty_like(q)

"""flash_attention for the Triton twin: checks, head mapping, tile choice, launch.
Same contract as attention_proto.flash_attention on torch CUDA tensors."""

from __future__ import annotations

import math

from ..ops import tuning

INSTALL_HINT = 'pip install ".[triton]"'


def require_triton():
    """triton, or an ImportError that says how to get it (it is an optional extra)."""
    try:
        import triton
    except ImportError as e:
        raise ImportError(
            f"[triton_twin] the Triton twin needs triton: {INSTALL_HINT} (got: {e})"
        ) from e
    return triton


def table_tile(head_dim: int, causal: bool) -> tuple[int, int, int, int]:
    """The hand-written kernel's tuned (block_m, block_n, stages, warps) for this case;
    Triton takes the same numbers as BLOCK_M, BLOCK_N, num_stages, num_warps."""
    c = tuning.best_config(head_dim, "bfloat16", causal)
    return c.block_m, c.block_n, c.stages, c.warps


def _check(q, k, v):
    import torch

    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or not x.is_cuda:
            raise TypeError(f"[triton_twin] {name} must be a torch CUDA tensor")
        if x.dim() != 4 or x.stride(-1) != 1:
            raise ValueError(
                f"[triton_twin] {name} must be [B, H, N, D] with a contiguous last "
                f"dimension, got shape {tuple(x.shape)} strides {tuple(x.stride())}"
            )
    if q.dtype not in (torch.bfloat16, torch.float16) or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(
            f"[triton_twin] q, k, v must share bfloat16 or float16, got "
            f"{q.dtype}, {k.dtype}, {v.dtype}"
        )
    b, h, _, d = q.shape
    kb, kvh, nk, kd = k.shape
    if d not in (64, 128) or kd != d or tuple(v.shape) != (kb, kvh, nk, d) or kb != b:
        raise ValueError(
            f"[triton_twin] need q [B, H, Nq, D], k and v [B, KVH, Nk, D] with D in (64, 128), "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if kvh == 0 or h % kvh:
        raise ValueError(f"[triton_twin] heads {h} must be a multiple of K/V heads {kvh}")


def flash_attention(q, k, v, *, causal=False, scale=None, return_lse=False, config="table"):
    """Softmax attention forward in Triton, the twin of attention_proto.flash_attention.

    q [B, H, Nq, D], k and v [B, KVH, Nk, D] torch CUDA tensors (bf16 or fp16,
    D in {64, 128}, any strides with a contiguous last dimension). Causal masks
    align bottom-right: query i sees keys j <= i + Nk - Nq; a row that sees no
    key returns 0 (lse = -inf). `config`: "table" (the hand-written kernel's tuned
    tile), "autotune" (Triton's autotuner over its own grid), or a tuple
    (block_m, block_n, stages, warps). With return_lse also returns the float32
    log-sum-exp [B, H, Nq] of the scaled scores.
    """
    require_triton()
    import torch

    from . import autotuned, kernel

    _check(q, k, v)
    b, h, nq, d = q.shape
    nk, kvh = k.shape[2], k.shape[1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty((b, h, nq), device=q.device, dtype=torch.float32) if return_lse else o
    args = (
        q, k, v, o, lse,
        *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *o.stride()[:3],
        h, h // kvh, nq, nk, scale * kernel.LOG2E,
    )  # fmt: skip
    if nq > 0 and b * h > 0:
        if config == "autotune":
            fn = autotuned.kernel()
            grid = lambda meta: (-(-nq // meta["BLOCK_M"]), b * h)  # noqa: E731
            fn[grid](*args, HEAD_DIM=d, CAUSAL=bool(causal), WRITE_LSE=return_lse)
        else:
            m, n, s, w = table_tile(d, causal) if config == "table" else tuple(config)
            kernel.flash_fwd[(-(-nq // m), b * h)](
                *args,
                HEAD_DIM=d, BLOCK_M=m, BLOCK_N=n, CAUSAL=bool(causal), WRITE_LSE=return_lse,
                num_warps=w, num_stages=s,
            )  # fmt: skip
    return (o, lse) if return_lse else o

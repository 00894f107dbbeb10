"""simple_attention: the foundation's end-to-end kernel (correct, not fast)."""

from __future__ import annotations

from .. import runtime
from . import attention_front

ROWS_PER_BLOCK = 64
HEAD_DIMS = (32, 64, 128)
DTYPES = ("float16", "bfloat16", "float32")


def spec(head_dim: int, dtype: str):
    return runtime.kernel_spec(
        "simple_attention",
        "simple_attention.cu",
        {
            "HEAD_DIM": head_dim,
            "DTYPE": attention_front.dtype_code(dtype),
            "ROWS_PER_BLOCK": ROWS_PER_BLOCK,
        },
    )


def all_specs():
    return [spec(d, t) for d in HEAD_DIMS for t in DTYPES]


class Prepared(attention_front.PreparedAttention):
    op = "simple_attention"
    dtypes = DTYPES
    head_dims = HEAD_DIMS

    def spec(self):
        return spec(self.problem.head_dim, self.problem.dtype)

    def grid(self):
        p = self.problem
        return [(p.seqlen_q + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, p.heads, p.batch]

    def block(self):
        return [ROWS_PER_BLOCK, 1, 1]


def simple_attention(q, k, v, *, causal=False, scale=None, return_lse=False, stream=None):
    """Softmax attention, one thread per query row. Inputs [B, H, N, D]; NumPy in,
    NumPy out; DLPack CUDA in, the same framework out. Causal aligns bottom-right
    (query i sees keys j <= i + Nk - Nq); a row with no visible key gives 0 and
    lse = -inf, a row with a NaN or +inf score among its visible keys NaN and
    lse = NaN."""
    return Prepared(q, k, v, causal=causal, scale=scale, return_lse=return_lse, stream=stream)()

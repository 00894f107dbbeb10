"""simple_attention: the foundation's end-to-end kernel (correct, not fast)."""

from __future__ import annotations

from .. import runtime
from . import attention_front, tensors

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


class Prepared:
    """A validated, uploaded problem ready to launch (benchmarks launch it repeatedly)."""

    def __init__(self, q, k, v, *, causal=False, scale=None, return_lse=False):
        op = "simple_attention"
        p, infos = attention_front.validate(
            op, q, k, v, causal=causal, scale=scale, dtypes=DTYPES, head_dims=HEAD_DIMS
        )
        self.problem = p
        self.q, self.k, self.v = (
            tensors.to_device(x, i) for x, i in zip((q, k, v), infos, strict=True)
        )
        fw = self.q.framework
        self.o = tensors.empty((p.batch, p.heads, p.seqlen_q, p.head_dim), p.dtype, fw)
        self.lse = (
            tensors.empty((p.batch, p.heads, p.seqlen_q), "float32", fw) if return_lse else None
        )
        self.pipeline = runtime.pipeline(spec(p.head_dim, p.dtype))
        self.grid = [(p.seqlen_q + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, p.heads, p.batch]
        self.block = [ROWS_PER_BLOCK, 1, 1]
        self.args = (
            runtime.ArgPacker()
            .raw(attention_front.params_bytes(p, return_lse=return_lse), 4)
            .raw(attention_front.strides_bytes(self.q, self.k, self.v, self.o), 8)
            .ptr(self.q.address)
            .ptr(self.k.address)
            .ptr(self.v.address)
            .ptr(self.o.address)
            .ptr(self.lse.address if self.lse else 0)
            .bytes()
        )

    def launch(self) -> None:
        self.pipeline.launch(self.grid, self.block, 0, self.args)

    def results(self):
        host = self.problem.host
        o = tensors.result(self.o, host)
        return (o, tensors.result(self.lse, host)) if self.lse is not None else o


def simple_attention(q, k, v, *, causal=False, scale=None, return_lse=False):
    """Softmax attention, one thread per query row. Inputs [B, H, N, D]; NumPy in,
    NumPy out; DLPack CUDA in, the same framework out. Causal aligns bottom-right
    (query i sees keys j <= i + Nk - Nq); a row with no visible key gives 0 and
    lse = -inf."""
    prepared = Prepared(q, k, v, causal=causal, scale=scale, return_lse=return_lse)
    prepared.launch()
    return prepared.results()

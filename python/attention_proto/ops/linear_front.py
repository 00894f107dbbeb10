"""Validation, kernel choice and sizes for linear_attention (Proto 6): what
ops/linear.py checks before it builds a launch plan."""

from __future__ import annotations

from dataclasses import dataclass

from .. import runtime
from . import attention_front, tensors

OP = "linear_attention"
HEAD_DIMS = (64, 128)
DTYPES = ("float16", "bfloat16")
CHUNK_SIZES = (32, 64, 128, 256)
# flash-linear-attention's chunk size; the benchmark (bench/linear.py) says
# which is best on this GPU.
DEFAULT_CHUNK = 64
THREADS = 128  # 4 warps in both kernels
COL_BLOCK = 64  # chunk_h: V columns per CTA
ROW_BLOCK = 64  # chunk_h: key dims (state rows) per CTA
BLOCK_M = 64  # chunk_o: query rows per CTA
BLOCK_N = 64  # chunk_o: keys per step
ENTRIES = ("linear_attention_chunk_h", "linear_attention_chunk_o")


@dataclass(frozen=True)
class LinearProblem:
    batch: int
    heads: int
    seqlen: int
    head_dim: int
    dtype: str
    chunk_size: int
    scale: float
    host: bool

    @property
    def chunks(self) -> int:
        return -(-self.seqlen // self.chunk_size)

    @property
    def state_shape(self) -> tuple:
        return (self.batch, self.heads, self.head_dim, self.head_dim)

    @property
    def h_shape(self) -> tuple:
        """The per-chunk states (input dtype) chunk_h writes for chunk_o."""
        return (self.batch, self.heads, self.chunks, self.head_dim, self.head_dim)


# Dynamic shared memory of each kernel, as their header comments state.
def chunk_h_shared_bytes(head_dim: int, chunk: int) -> int:
    return 2 * chunk * (ROW_BLOCK + COL_BLOCK) * 2  # two stages of K and V tiles


def chunk_o_shared_bytes(head_dim: int, chunk: int) -> int:
    states = max(1, BLOCK_M // chunk)  # chunk 32: a row block spans two chunks
    return (BLOCK_M + 2 * 2 * BLOCK_N + head_dim * states) * head_dim * 2


def spec(entry: str, head_dim: int, chunk: int, dtype: str):
    return runtime.kernel_spec(
        entry,
        f"{entry}.cu",
        {"HEAD_DIM": head_dim, "CHUNK": chunk, "DTYPE": attention_front.dtype_code(dtype)},
    )


def all_specs() -> list:
    """Both kernels for every head dim, chunk size and dtype (CI compiles each)."""
    return [
        spec(e, d, c, t) for e in ENTRIES for d in HEAD_DIMS for c in CHUNK_SIZES for t in DTYPES
    ]


def normalize_chunk(chunk_size) -> int:
    if chunk_size is None:
        return DEFAULT_CHUNK
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"[{OP}] chunk_size must be an int, got {chunk_size!r}")
    if chunk_size not in CHUNK_SIZES:
        raise ValueError(f"[{OP}] chunk_size must be one of {CHUNK_SIZES}, got {chunk_size}")
    return chunk_size


def validate(infos, *, causal, chunk_size, scale) -> LinearProblem:
    """q, k, v: the same shape [B, H, T, D] and dtype, D in HEAD_DIMS; scale
    defaults to 1 (this unnormalized form applies no scale unless asked)."""
    if causal is not True:
        raise ValueError(f"[{OP}] only causal=True is implemented, got causal={causal!r}")
    chunk = normalize_chunk(chunk_size)
    scale = 1.0 if scale is None else scale
    p = attention_front.validate(
        OP, infos, causal=True, scale=scale, dtypes=DTYPES, head_dims=HEAD_DIMS
    )
    for name, info in zip("kv", infos[1:], strict=True):
        if tuple(info["shape"]) != tuple(infos[0]["shape"]):
            raise ValueError(
                f"[{OP}] {name} must have q's shape {list(infos[0]['shape'])} (no GQA), got "
                f"{list(info['shape'])}"
            )
    if p.batch * p.heads > attention_front.GRID_YZ_MAX:
        raise ValueError(
            f"[{OP}] batch * heads must be <= {attention_front.GRID_YZ_MAX}, got "
            f"{p.batch * p.heads}"
        )
    for name, info in zip("qkv", infos, strict=True):
        if not info["host"]:
            check_alignment(name, info["address"], info["strides"])
    return LinearProblem(p.batch, p.heads, p.seqlen_q, p.head_dim, p.dtype, chunk, p.scale, p.host)


def check_alignment(name, address, strides) -> None:
    # cp.async moves 16-byte chunks: every row must start 16-byte aligned.
    if address % 16 or any(s % 8 for s in strides[:3]):
        raise ValueError(
            f"[{OP}] {name} must be 16-byte aligned with strides that are multiples of 8 "
            f"elements, got address {address:#x} and strides {list(strides)}"
        )


def check_state(info, p: LinearProblem) -> None:
    """initial_state: float32 [B, H, D, D], C-contiguous, where q lives."""
    if info["host"] != p.host:
        where = "a NumPy array" if p.host else "a CUDA array"
        raise TypeError(f"[{OP}] initial_state must be {where} like q")
    if tuple(info["shape"]) != p.state_shape:
        raise ValueError(
            f"[{OP}] initial_state must have shape {list(p.state_shape)} [batch, heads, "
            f"head_dim, head_dim], got {list(info['shape'])}"
        )
    if info["dtype"] != "float32":
        raise TypeError(f"[{OP}] initial_state must be float32, got {info['dtype']}")
    if not p.host and (not tensors.is_contiguous(info) or info["address"] % 16):
        raise ValueError(
            f"[{OP}] initial_state must be C-contiguous and 16-byte aligned, got strides "
            f"{list(info['strides'])} at {info['address']:#x}; pass a contiguous copy"
        )

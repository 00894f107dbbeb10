"""Validation and parameter packing shared by every softmax-attention op.

Layout is [batch, heads, seqlen, head_dim] with any strides on the first three
dimensions and a contiguous last dimension. k and v may have fewer heads than q
(GQA: heads % kv_heads == 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import runtime
from ..params import DTYPE_CODES, FLAG_CAUSAL, FLAG_RETURN_LSE, AttentionParams, AttentionStrides
from . import tensors

GRID_YZ_MAX = 65535


@dataclass(frozen=True)
class AttentionProblem:
    batch: int
    heads: int
    kv_heads: int
    seqlen_q: int
    seqlen_k: int
    head_dim: int
    dtype: str
    causal: bool
    scale: float
    host: bool


def validate(op, q, k, v, *, causal, scale, dtypes, head_dims) -> tuple[AttentionProblem, list]:
    infos = [tensors.inspect(x, name, op) for x, name in ((q, "q"), (k, "k"), (v, "v"))]
    hosts = {i["host"] for i in infos}
    if len(hosts) != 1:
        kinds = ", ".join(
            f"{n} is {'a NumPy array' if i['host'] else 'a CUDA array'}"
            for n, i in zip("qkv", infos, strict=True)
        )
        raise TypeError(f"[{op}] q, k and v must all be NumPy arrays or all CUDA arrays; {kinds}")
    for name, info in zip("qkv", infos, strict=True):
        if len(info["shape"]) != 4:
            raise ValueError(
                f"[{op}] {name} must have 4 dimensions [batch, heads, seqlen, head_dim], "
                f"got shape {list(info['shape'])}"
            )
        if info["dtype"] not in dtypes:
            raise TypeError(
                f"[{op}] {name} must be one of {', '.join(dtypes)}, got {info['dtype']}"
            )
        if any(n == 0 for n in info["shape"]):
            raise ValueError(
                f"[{op}] {name} must have no zero-size dimension, got shape {list(info['shape'])}"
            )
        tensors.check_dims_fit_int32(op, name, info["shape"])
        if info["shape"][3] > 1 and info["strides"][3] != 1:
            raise ValueError(
                f"[{op}] {name} must be contiguous in its last dimension (stride 1), "
                f"got strides {list(info['strides'])}"
            )
    qi, ki, vi = infos
    if ki["dtype"] != qi["dtype"] or vi["dtype"] != qi["dtype"]:
        raise TypeError(
            f"[{op}] q, k and v must share a dtype, got {qi['dtype']}, {ki['dtype']}, {vi['dtype']}"
        )
    b, h, nq, d = qi["shape"]
    if ki["shape"] != vi["shape"]:
        raise ValueError(
            f"[{op}] k and v must have the same shape, got {list(ki['shape'])} and "
            f"{list(vi['shape'])}"
        )
    kb, kvh, nk, kd = ki["shape"]
    if kb != b:
        raise ValueError(f"[{op}] k must have batch {b} like q, got {kb}")
    if kd != d:
        raise ValueError(f"[{op}] k must have head_dim {d} like q, got {kd}")
    if h % kvh:
        raise ValueError(f"[{op}] q's heads ({h}) must be a multiple of k's heads ({kvh}) for GQA")
    if d not in head_dims:
        raise ValueError(f"[{op}] head_dim must be one of {sorted(head_dims)}, got {d}")
    if h > GRID_YZ_MAX or b > GRID_YZ_MAX:
        raise ValueError(f"[{op}] batch and heads must be <= {GRID_YZ_MAX}, got {b} and {h}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"[{op}] scale must be a positive finite number, got {scale!r}")
    problem = AttentionProblem(
        b, h, kvh, nq, nk, d, qi["dtype"], bool(causal), float(scale), qi["host"]
    )
    return problem, infos


def params_bytes(p: AttentionProblem, *, return_lse: bool) -> bytes:
    flags = (FLAG_CAUSAL if p.causal else 0) | (FLAG_RETURN_LSE if return_lse else 0)
    s = AttentionParams(
        batch=p.batch,
        heads=p.heads,
        kv_heads=p.kv_heads,
        seqlen_q=p.seqlen_q,
        seqlen_k=p.seqlen_k,
        head_dim=p.head_dim,
        scale=p.scale,
        flags=flags,
    )
    return bytes(s)


def strides_bytes(q, k, v, o) -> bytes:
    s = AttentionStrides()
    for name, t in (("q", q), ("k", k), ("v", v), ("o", o)):
        arr = getattr(s, name)
        for i in range(3):
            arr[i] = t.strides[i]
    return bytes(s)


def dtype_code(dtype: str) -> int:
    return DTYPE_CODES[dtype]


class PreparedAttention:
    """A validated, uploaded problem with its kernel and packed arguments, ready
    to launch (benchmarks launch it many times). Subclasses choose the kernel:
    `spec()`, `grid()`, `block()` and `shared_bytes()`."""

    op = "attention"
    dtypes: tuple = ()
    head_dims: tuple = ()

    def __init__(self, q, k, v, *, causal=False, scale=None, return_lse=False):
        p, infos = validate(
            self.op,
            q,
            k,
            v,
            causal=causal,
            scale=scale,
            dtypes=self.dtypes,
            head_dims=self.head_dims,
        )
        self.problem = p
        self.check(infos)
        self.q, self.k, self.v = (
            tensors.to_device(x, i) for x, i in zip((q, k, v), infos, strict=True)
        )
        fw = self.q.framework
        self.o = tensors.empty((p.batch, p.heads, p.seqlen_q, p.head_dim), p.dtype, fw)
        self.lse = (
            tensors.empty((p.batch, p.heads, p.seqlen_q), "float32", fw) if return_lse else None
        )
        self.pipeline = runtime.pipeline(self.spec())
        self.args = (
            runtime.ArgPacker()
            .raw(params_bytes(p, return_lse=return_lse), 4)
            .raw(strides_bytes(self.q, self.k, self.v, self.o), 8)
            .ptr(self.q.address)
            .ptr(self.k.address)
            .ptr(self.v.address)
            .ptr(self.o.address)
            .ptr(self.lse.address if self.lse else 0)
            .bytes()
        )
        self.launch_args = (self.grid(), self.block(), self.shared_bytes(), self.args)

    def check(self, infos) -> None:
        """Kernel-specific checks beyond `validate` (alignment, say)."""

    def spec(self):
        raise NotImplementedError

    def grid(self) -> list[int]:
        raise NotImplementedError

    def block(self) -> list[int]:
        raise NotImplementedError

    def shared_bytes(self) -> int:
        return 0

    def launch(self) -> None:
        self.pipeline.launch(*self.launch_args)

    def results(self):
        host = self.problem.host
        o = tensors.result(self.o, host)
        return (o, tensors.result(self.lse, host)) if self.lse is not None else o

    def __call__(self):
        self.launch()
        return self.results()

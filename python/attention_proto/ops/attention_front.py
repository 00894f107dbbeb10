"""Validation, launch plans and the call path shared by the softmax-attention ops.

Layout is [batch, heads, seqlen, head_dim] with any strides on the first three
dimensions and a contiguous last dimension. k and v may have fewer heads than q
(GQA: heads % kv_heads == 0).

A call with torch tensors takes the fast path: a plan (validated problem,
kernel, packed arguments with pointer slots) is looked up by the inputs'
shapes, strides, dtypes and options; the call then checks what can change per
call (addresses, autograd), allocates outputs from torch's caching allocator
and launches on the stream. Everything else builds a Prepared object, which
benchmarks also use to relaunch one problem.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass

import numpy as np

from .. import _core, debug, runtime
from ..params import DTYPE_CODES, FLAG_CAUSAL, FLAG_RETURN_LSE, AttentionParams, AttentionStrides
from . import streams, tensors
from .planned import PlannedLaunch

GRID_YZ_MAX = 65535
PLAN_CACHE_SIZE = 512  # distinct (shape, stride, dtype, option) combinations kept per op


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


def normalize_scale(op: str, scale, head_dim: int | None) -> float:
    """The softmax scale as a float: 1/sqrt(head_dim) by default; any real number
    (Python, NumPy scalar, 0-d array or tensor), never a bool."""
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if type(scale) is float:
        value = scale
    elif isinstance(scale, (bool, np.bool_)):
        raise TypeError(f"[{op}] scale must be a real number, got the bool {scale!r}")
    elif isinstance(scale, numbers.Real):
        value = float(scale)
    elif getattr(scale, "ndim", None) == 0 and _real_dtype(scale):
        value = float(scale)  # a 0-d array or tensor (a CUDA tensor's read waits for it)
    else:
        raise TypeError(
            f"[{op}] scale must be a real number (int, float, NumPy scalar or 0-d array), got "
            f"{type(scale).__name__} {scale!r}"
        )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"[{op}] scale must be a positive finite number, got {scale!r}")
    return value


def _real_dtype(x) -> bool:
    name = str(getattr(x, "dtype", "")).removeprefix("torch.")
    return name.startswith(("float", "bfloat", "int", "uint")) or name in ("half", "double")


def check_no_grad(op: str, named) -> None:
    """The ops are forward-only: refuse inputs autograd would need a backward for."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.is_grad_enabled():
        return
    for name, x in named:
        if getattr(x, "requires_grad", False):
            raise RuntimeError(
                f"[{op}] {name} requires grad, but {op} is forward-only (no backward is "
                f"implemented): call it under torch.no_grad() or pass {name}.detach()"
            )


def validate(op, infos, *, causal, scale, dtypes, head_dims) -> AttentionProblem:
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
    scale = normalize_scale(op, scale, d)
    return AttentionProblem(b, h, kvh, nq, nk, d, qi["dtype"], bool(causal), scale, qi["host"])


def params_bytes(p: AttentionProblem, *, return_lse: bool, **fields) -> bytes:
    """AttentionParams of a problem; `fields` sets the kernel-specific ones."""
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
        **fields,
    )
    return bytes(s)


def strides_bytes(*strides) -> bytes:
    """AttentionStrides from the [B, H, N] element strides of q, k, v, o."""
    s = AttentionStrides()
    for name, st in zip(("q", "k", "v", "o"), strides, strict=True):
        arr = getattr(s, name)
        for i in range(3):
            arr[i] = st[i]
    return bytes(s)


def dtype_code(dtype: str) -> int:
    return DTYPE_CODES[dtype]


def allocate(shape, dtype: str, like, stream: int, on_current: bool) -> tensors.DeviceTensor:
    """An output for a call on `stream`: from torch's caching allocator when the
    inputs are torch tensors, else from the driver's stream-ordered pool."""
    if like.framework == "torch":
        torch_dtype = getattr(sys.modules["torch"], dtype)
        t = streams.new_output(like.keepalive, shape, torch_dtype, stream, on_current)
        if debug.poison_outputs:
            streams.poison(t, stream, on_current)
        strides = tensors.contiguous_strides(shape)
        return tensors.DeviceTensor(t.data_ptr(), tuple(shape), strides, dtype, t, "torch")
    return tensors.empty(shape, dtype, like.framework, stream)


def owned_buffers(*outputs) -> list:
    """Our stream-ordered buffers among `outputs` (not torch's): each launch marks
    them used so their free waits for it (DeviceBuffer.used_on)."""
    return [
        t.keepalive
        for t in outputs
        if t is not None and isinstance(t.keepalive, _core.DeviceBuffer)
    ]


def result(t: tensors.DeviceTensor, host: bool):
    if t.framework == "torch" and not isinstance(t.keepalive, _core.DeviceBuffer):
        return t.keepalive
    return tensors.result(t, host)


def remember(cache: dict, key, value) -> None:
    """Insert into a plan cache, dropping the oldest entry past PLAN_CACHE_SIZE."""
    if len(cache) >= PLAN_CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


class PreparedAttention(PlannedLaunch):
    """A validated problem with its launch plan and, unless `allocate=False`,
    its inputs on the device and its outputs allocated: ready to launch
    (benchmarks launch it many times). Subclasses choose the kernel: `spec()`,
    `grid()`, `block()` and `shared_bytes()`."""

    op = "attention"
    dtypes: tuple = ()
    head_dims: tuple = ()
    # Pointer arguments after q, k, v, o, lse (flash: the ALiBi slopes); their
    # addresses come from extra_addresses().
    extra_pointers = 0

    def __init__(
        self, q, k, v, *, causal=False, scale=None, return_lse=False, stream=None, allocate=True
    ):
        self.stream, self.on_current = streams.for_inputs(q, stream)
        infos = [
            tensors.inspect(x, name, self.op, self.stream)
            for x, name in ((q, "q"), (k, "k"), (v, "v"))
        ]
        check_no_grad(self.op, (("q", q), ("k", k), ("v", v)))
        p = validate(
            self.op,
            infos,
            causal=causal,
            scale=scale,
            dtypes=self.dtypes,
            head_dims=self.head_dims,
        )
        self.problem = p
        self.return_lse = bool(return_lse)
        self.check(infos)
        self.o_shape = (p.batch, p.heads, p.seqlen_q, p.head_dim)
        self.lse_shape = (p.batch, p.heads, p.seqlen_q)
        self.pipeline = runtime.pipeline(self.spec())
        o_strides = tensors.contiguous_strides(self.o_shape)
        packer = (
            runtime.ArgPacker()
            .raw(params_bytes(p, return_lse=self.return_lse, **self.param_fields()), 4)
            .raw(strides_bytes(*(i["strides"][:3] for i in infos), o_strides), 8)
        )
        for _ in range(5 + self.extra_pointers):  # q, k, v, o, lse, then the extras
            packer.slot()
        self.slots = packer.slots
        self.plan = _core.LaunchPlan(
            [(self.pipeline, self.grid(), self.block(), self.shared_bytes())],
            packer.bytes(),
            packer.slots,
        )
        if allocate:
            self._allocate(q, k, v, infos)

    def _allocate(self, q, k, v, infos) -> None:
        p = self.problem
        self.q, self.k, self.v = (
            tensors.to_device(x, i) for x, i in zip((q, k, v), infos, strict=True)
        )
        self.o = allocate(self.o_shape, p.dtype, self.q, self.stream, self.on_current)
        self.lse = (
            allocate(self.lse_shape, "float32", self.q, self.stream, self.on_current)
            if self.return_lse
            else None
        )
        self.owned = owned_buffers(self.o, self.lse)
        self.addresses = [
            self.q.address,
            self.k.address,
            self.v.address,
            self.o.address,
            self.lse.address if self.lse else 0,
            *self.extra_addresses(),
        ]

    def check(self, infos) -> None:
        """Kernel-specific checks beyond `validate` (alignment, say)."""

    def param_fields(self) -> dict:
        """Kernel-specific AttentionParams fields (after check())."""
        return {}

    def extra_addresses(self) -> list[int]:
        """Addresses of the extra_pointers arguments (once inputs are on the device)."""
        return []

    def spec(self):
        raise NotImplementedError

    def grid(self) -> list[int]:
        raise NotImplementedError

    def block(self) -> list[int]:
        raise NotImplementedError

    def shared_bytes(self) -> int:
        return 0

    @property
    def launch_args(self):
        """(grid, block, shared bytes, packed arguments) of this problem's kernel,
        addresses filled in: for timing the kernel alone (Pipeline.benchmark)."""
        return (self.grid(), self.block(), self.shared_bytes(), self.filled_args())

    def results(self):
        host = self.problem.host
        if host:
            _core.stream_synchronize(self.stream)
        o = result(self.o, host)
        return (o, result(self.lse, host)) if self.lse is not None else o

    def __call__(self):
        self.launch()
        return self.results()

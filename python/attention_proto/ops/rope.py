"""rope: rotary position embedding as a standalone pass (shaders/cuda/rope.cu).

The primary form takes the angles as user tables, cos and sin float32
[N_pos, D/2], as FlashAttention's apply_rotary_emb and vLLM's cos/sin cache do:
the tables are computed once per model (rope_tables builds the standard ones)
and any frequency scaling (NTK, YaRN, linear) lives in them, not in the
kernel. The decode position offset moves the tables' addresses, not the
arguments, so one launch plan serves every offset.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _core, debug, runtime
from . import attention_front, streams, tensors
from .planned import PlannedLaunch

OP = "rope"
DTYPES = ("float16", "bfloat16")
THREADS = 128  # rope.cu's kThreads


def supported_head_dim(d: int) -> bool:
    return d % 16 == 0 and 16 <= d <= 256


def spec(head_dim: int, dtype: str, interleaved: bool):
    return runtime.kernel_spec(
        "rope",
        "rope.cu",
        {
            "HEAD_DIM": head_dim,
            "DTYPE": attention_front.dtype_code(dtype),
            "INTERLEAVED": bool(interleaved),
        },
    )


def all_specs():
    return [spec(d, t, i) for d in (64, 128) for t in DTYPES for i in (False, True)]


def rope_tables(n_pos: int, head_dim: int, *, theta: float = 10000.0):
    """The standard tables (cos, sin), NumPy float32 [n_pos, head_dim / 2]:
    pair i at position p turns by p * theta^(-2i / head_dim), computed in
    float64. Move them to the device once (torch.from_numpy(c).cuda())."""
    pos = np.arange(n_pos, dtype=np.float64)
    freqs = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = pos[:, None] * freqs[None, :]
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def _check_offset(offset, n: int, n_pos: int) -> int:
    if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
        raise TypeError(f"[{OP}] offset must be an int, got {type(offset).__name__} {offset!r}")
    offset = int(offset)
    if offset < 0 or offset + n > n_pos:
        raise ValueError(
            f"[{OP}] positions offset .. offset + N - 1 = {offset} .. {offset + n - 1} must "
            f"lie in the tables' {n_pos} rows"
        )
    return offset


def _check_aligned(name: str, address: int, strides, vector: int) -> None:
    # 16-byte vector loads: rows start 16-byte aligned.
    if address % 16 or any(s % vector for s in strides):
        raise ValueError(
            f"[{OP}] {name} must be 16-byte aligned with row strides that are multiples of "
            f"{vector} elements, got address {address:#x} and strides {list(strides)}"
        )


class Prepared(PlannedLaunch):
    """A validated rope call: its launch plan and, unless `allocate=False`, its
    arrays on the device (benchmarks relaunch it)."""

    def __init__(
        self,
        x,
        cos,
        sin,
        *,
        offset=0,
        interleaved=False,
        inplace=False,
        stream=None,
        allocate=True,
    ):
        self.stream, self.on_current = streams.for_inputs(x, stream)
        infos = [
            tensors.inspect(a, name, OP, self.stream)
            for a, name in ((x, "x"), (cos, "cos"), (sin, "sin"))
        ]
        attention_front.check_no_grad(OP, (("x", x),))
        self._validate(infos)
        xi, ci = infos[0], infos[1]
        self.host = xi["host"]
        self.inplace = bool(inplace)
        self.interleaved = bool(interleaved)
        b, h, n, d = xi["shape"]
        self.shape, self.dtype = xi["shape"], xi["dtype"]
        self.n_pos = ci["shape"][0]
        self.offset = _check_offset(offset, n, self.n_pos)
        contiguous = tensors.contiguous_strides(self.shape)[:3]
        # NumPy arrays travel as contiguous copies; a one-row table has stride 0.
        x_strides = contiguous if self.host else xi["strides"][:3]
        self.table_row = d // 2 if self.host else ci["strides"][0] or d // 2
        self.pipeline = runtime.pipeline(spec(d, self.dtype, interleaved))
        out_strides = x_strides if inplace else contiguous
        packer = runtime.ArgPacker()
        for _ in range(4):  # x, out, cos, sin
            packer.slot()
        for s in (*x_strides, *out_strides, self.table_row):
            packer.i64(s)
        packer.i32(n)
        grid = [-(-n * (d // 16) // THREADS), h, b]
        self.slots = packer.slots
        self.plan = _core.LaunchPlan(
            [(self.pipeline, grid, [THREADS, 1, 1], 0)], packer.bytes(), self.slots
        )
        self.launch_shape = (grid, [THREADS, 1, 1])
        if allocate:
            self._allocate(x, cos, sin, infos)

    def _validate(self, infos) -> None:
        xi, ci, si = infos
        if len({i["host"] for i in infos}) != 1:
            raise TypeError(f"[{OP}] x, cos and sin must all be NumPy arrays or all CUDA arrays")
        if len(xi["shape"]) != 4:
            raise ValueError(
                f"[{OP}] x must have 4 dimensions [batch, heads, seqlen, head_dim], got shape "
                f"{list(xi['shape'])}"
            )
        if xi["dtype"] not in DTYPES:
            raise TypeError(f"[{OP}] x must be one of {', '.join(DTYPES)}, got {xi['dtype']}")
        if any(n == 0 for n in xi["shape"]):
            raise ValueError(f"[{OP}] x must have no zero-size dimension, got {list(xi['shape'])}")
        tensors.check_dims_fit_int32(OP, "x", xi["shape"])
        b, h, _, d = xi["shape"]
        if not supported_head_dim(d):
            raise ValueError(f"[{OP}] head_dim must be a multiple of 16 in 16..256, got {d}")
        if b > attention_front.GRID_YZ_MAX or h > attention_front.GRID_YZ_MAX:
            raise ValueError(
                f"[{OP}] batch and heads must be <= {attention_front.GRID_YZ_MAX}, got {b}, {h}"
            )
        if xi["strides"][3] != 1:
            raise ValueError(
                f"[{OP}] x must be contiguous in its last dimension, got strides "
                f"{list(xi['strides'])}"
            )
        for name, info in (("cos", ci), ("sin", si)):
            if info["dtype"] != "float32":
                raise TypeError(f"[{OP}] {name} must be float32, got {info['dtype']}")
            if len(info["shape"]) != 2 or info["shape"][1] != d // 2:
                raise ValueError(
                    f"[{OP}] {name} must be [positions, head_dim / 2 = {d // 2}], got shape "
                    f"{list(info['shape'])}"
                )
            if info["shape"][1] > 1 and info["strides"][1] != 1:
                raise ValueError(f"[{OP}] {name} must be contiguous in its last dimension")
        if ci["shape"] != si["shape"] or ci["strides"] != si["strides"]:
            raise ValueError(
                f"[{OP}] cos and sin must share shape and strides, got {list(ci['shape'])} "
                f"{list(ci['strides'])} and {list(si['shape'])} {list(si['strides'])}"
            )
        if not xi["host"]:
            _check_aligned("x", xi["address"], xi["strides"][:3], 8)
            for name, info in (("cos", ci), ("sin", si)):
                _check_aligned(name, info["address"], info["strides"][:1], 4)

    def _allocate(self, x, cos, sin, infos) -> None:
        self.x, self.cos, self.sin = (
            tensors.to_device(a, i) for a, i in zip((x, cos, sin), infos, strict=True)
        )
        self.host_x = x
        if self.inplace:
            self.out = self.x
        else:
            self.out = attention_front.allocate(
                self.shape, self.dtype, self.x, self.stream, self.on_current
            )
        self.owned = attention_front.owned_buffers(self.out)
        shift = self.offset * self.table_row * 4  # bytes: the offset moves the tables
        self.addresses = [
            self.x.address,
            self.out.address,
            self.cos.address + shift,
            self.sin.address + shift,
        ]

    def __call__(self):
        self.launch()
        if self.host:
            _core.stream_synchronize(self.stream)
        if not self.inplace:
            return attention_front.result(self.out, self.host)
        if self.host:  # NumPy in place: the rotated copy comes back into x
            self.host_x[...] = tensors.result(self.out, True)
        return self.host_x


_PLANS: dict = {}


def _call_torch(x, cos, sin, offset, interleaved, inplace, stream):
    """The torch fast path: a cached plan per (shapes, strides, dtypes, options);
    the offset moves the table addresses, so decode steps share one plan."""
    key = (
        x.shape,
        x.stride(),
        cos.shape,
        cos.stride(),
        sin.shape,
        sin.stride(),
        x.dtype,
        cos.dtype,
        sin.dtype,
        x.get_device(),
        cos.get_device(),
        sin.get_device(),
        bool(interleaved),
        bool(inplace),
    )
    plan = _PLANS.get(key)
    if plan is None:
        plan = Prepared(
            x, cos, sin, interleaved=interleaved, inplace=inplace, stream=stream, allocate=False
        )
        attention_front.remember(_PLANS, key, plan)
    offset = offset if type(offset) is int and offset >= 0 else _check_offset(offset, 0, 2**62)
    if offset + x.shape[2] > plan.n_pos:
        _check_offset(offset, x.shape[2], plan.n_pos)
    if x.requires_grad:
        attention_front.check_no_grad(OP, (("x", x),))
    xa, ca, sa = x.data_ptr(), cos.data_ptr(), sin.data_ptr()
    if (xa | ca | sa) & 15:
        _check_aligned("x", xa, x.stride()[:3], 8)
        _check_aligned("cos", ca, cos.stride()[:1], 4)
        _check_aligned("sin", sa, sin.stride()[:1], 4)
    s, on_current = streams.for_torch(stream)
    if inplace:
        out = x
    else:
        out = streams.new_output(x, x.shape, None, s, on_current)
        if debug.poison_outputs:
            streams.poison(out, s, on_current)
    shift = offset * plan.table_row * 4
    plan.plan.run(s, [xa, out.data_ptr(), ca + shift, sa + shift])
    return out


def rope(x, cos, sin, *, offset=0, interleaved=False, inplace=False, stream=None):
    """Rotary position embedding of x [B, H, N, D] (q or k), fp16 or bf16, D a
    multiple of 16 up to 256, any strides on B, H, N with rows 16-byte aligned.

    Token n takes row offset + n of cos and sin, float32 [N_pos, D/2] with
    contiguous rows (rope_tables makes the standard ones); `offset` is the
    position of the first token (decode: the tokens already in the cache).
    Pairs are (x[i], x[i + D/2]) (GPT-NeoX, Llama) or, with interleaved=True,
    (x[2i], x[2i + 1]) (GPT-J). The rotation runs in float32 and rounds once.
    Returns a new contiguous array, or with inplace=True writes into x and
    returns it. torch CUDA tensors take the fast path (torch's current stream,
    torch's allocator, nothing waits); other CUDA arrays run on `stream`;
    NumPy in, NumPy out.
    """
    if tensors.is_torch(x):
        return _call_torch(x, cos, sin, offset, interleaved, inplace, stream)
    return Prepared(
        x, cos, sin, offset=offset, interleaved=interleaved, inplace=inplace, stream=stream
    )()


def check_fused_tables(op: str, cos, sin, head_dim: int, positions: int, host: bool, stream):
    """(cos info, sin info, floats between table rows) of the cos/sin tables an
    attention kernel applies itself (flash_attention's rope=): float32
    [>= positions, head_dim / 2], contiguous rows 16-byte aligned, NumPy with
    NumPy inputs and CUDA arrays with CUDA inputs."""
    infos = []
    for name, t in (("cos", cos), ("sin", sin)):
        info = tensors.inspect_float32_like_q(t, f"rope {name}", op, stream, host)
        shape = tuple(info["shape"])
        if len(shape) != 2 or shape[1] != head_dim // 2 or shape[0] < positions:
            raise ValueError(
                f"[{op}] rope {name} must be [positions >= {positions}, head_dim / 2 = "
                f"{head_dim // 2}], got {list(shape)}"
            )
        if info["strides"][1] != 1:
            raise ValueError(f"[{op}] rope {name} must be contiguous in its last dimension")
        if not host:
            _check_aligned(f"rope {name}", info["address"], info["strides"][:1], 4)
        infos.append(info)
    if infos[0]["strides"] != infos[1]["strides"]:
        raise ValueError(f"[{op}] rope cos and sin must share strides")
    row = head_dim // 2 if host else infos[0]["strides"][0] or head_dim // 2
    return infos[0], infos[1], row

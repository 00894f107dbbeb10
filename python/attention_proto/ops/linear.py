"""linear_attention: chunked causal linear attention (Proto 6) on mma.sync
tensor cores, two launches in one plan: chunk_h (the state entering each
chunk) then chunk_o (each chunk's output); see shaders/cuda/linear_attention_*.

Precision: the fp32 state is rounded to the input dtype where it meets the
tensor cores (and is stored so between the kernels), and so are the masked
intra-chunk scores Q K^T before they multiply V; everything is summed in fp32.
flash-linear-attention rounds at the same two places. The error therefore
grows with the state's magnitude (sum over all earlier tokens of k v^T): a
relative 2^-9 (bf16) or 2^-12 (fp16) of it per element, not of the output.
fp16 overflows (inf) once a state element or an intra-chunk score passes
65504; bf16 has fp32's range. The returned final state is never rounded.
"""

from __future__ import annotations

import sys

from .. import _core, cuda, debug, runtime
from . import attention_front, linear_front, streams, tensors
from .linear_front import OP
from .planned import PlannedLaunch


class Prepared(PlannedLaunch):
    """A validated problem, its two-launch plan and, unless `allocate=False`,
    its inputs on the device and outputs allocated: ready to launch (the
    benchmark relaunches it)."""

    def __init__(
        self,
        q,
        k,
        v,
        *,
        causal=True,
        chunk_size=None,
        scale=None,
        initial_state=None,
        return_state=False,
        stream=None,
        allocate=True,
    ):
        self.stream, self.on_current = streams.for_inputs(q, stream)
        infos = [tensors.inspect(x, n, OP, self.stream) for x, n in ((q, "q"), (k, "k"), (v, "v"))]
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
        p = linear_front.validate(infos, causal=causal, chunk_size=chunk_size, scale=scale)
        state_info = None
        if initial_state is not None:
            state_info = tensors.inspect(initial_state, "initial_state", OP, self.stream)
            linear_front.check_state(state_info, p)
        self.problem = p
        self.return_state = bool(return_state)
        self.has_initial_state = initial_state is not None
        self.o_shape = (p.batch, p.heads, p.seqlen, p.head_dim)
        self._check_shared_memory()
        packer = (
            runtime.ArgPacker()
            .raw(_params_bytes(p), 4)
            .raw(
                attention_front.strides_bytes(
                    *(i["strides"][:3] for i in infos), tensors.contiguous_strides(self.o_shape)
                ),
                8,
            )
        )
        for _ in range(7):  # q, k, v, o, h, h0, ht
            packer.slot()
        self.slots = packer.slots
        h_pipe, o_pipe = (
            runtime.pipeline(linear_front.spec(e, p.head_dim, p.chunk_size, p.dtype))
            for e in linear_front.ENTRIES
        )
        bh = p.batch * p.heads
        block = [linear_front.THREADS, 1, 1]
        self.steps = [
            (
                h_pipe,
                [
                    p.head_dim // linear_front.COL_BLOCK,
                    bh,
                    p.head_dim // linear_front.ROW_BLOCK,
                ],
                block,
                linear_front.chunk_h_shared_bytes(p.head_dim, p.chunk_size),
            ),
            (
                o_pipe,
                [-(-p.seqlen // linear_front.BLOCK_M), bh, 1],
                block,
                linear_front.chunk_o_shared_bytes(p.head_dim, p.chunk_size),
            ),
        ]
        self.plan = _core.LaunchPlan(self.steps, packer.bytes(), packer.slots)
        if allocate:
            self._allocate(q, k, v, infos, initial_state, state_info)

    def _check_shared_memory(self) -> None:
        p = self.problem
        limit = cuda.properties()["shared_memory_per_block_optin"]
        need = max(
            linear_front.chunk_h_shared_bytes(p.head_dim, p.chunk_size),
            linear_front.chunk_o_shared_bytes(p.head_dim, p.chunk_size),
        )
        if need > limit:
            raise ValueError(
                f"[{OP}] chunk_size {p.chunk_size} at head_dim {p.head_dim} needs {need} bytes "
                f"of shared memory; this GPU allows {limit}"
            )

    def _allocate(self, q, k, v, infos, initial_state, state_info) -> None:
        p = self.problem
        self.q, self.k, self.v = (
            tensors.to_device(x, i) for x, i in zip((q, k, v), infos, strict=True)
        )
        new = lambda shape, dtype: attention_front.allocate(  # noqa: E731
            shape, dtype, self.q, self.stream, self.on_current
        )
        self.o = new(self.o_shape, p.dtype)
        self.h = new(p.h_shape, p.dtype)  # scratch: the states between the kernels
        self.h0 = tensors.to_device(initial_state, state_info) if state_info else None
        self.ht = new(p.state_shape, "float32") if self.return_state else None
        self.owned = attention_front.owned_buffers(self.o, self.h, self.ht)
        self.addresses = [
            self.q.address,
            self.k.address,
            self.v.address,
            self.o.address,
            self.h.address,
            self.h0.address if self.h0 else 0,
            self.ht.address if self.ht else 0,
        ]

    def results(self):
        host = self.problem.host
        if host:
            _core.stream_synchronize(self.stream)
        o = attention_front.result(self.o, host)
        return (o, attention_front.result(self.ht, host)) if self.return_state else o

    def __call__(self):
        self.launch()
        return self.results()


def _params_bytes(p: linear_front.LinearProblem) -> bytes:
    from ..params import FLAG_CAUSAL, AttentionParams

    s = AttentionParams(
        batch=p.batch,
        heads=p.heads,
        kv_heads=p.heads,
        seqlen_q=p.seqlen,
        seqlen_k=p.seqlen,
        head_dim=p.head_dim,
        scale=p.scale,
        flags=FLAG_CAUSAL,
        chunk_size=p.chunk_size,
    )
    return bytes(s)


_PLANS: dict = {}


def _call_torch(q, k, v, chunk_size, scale, h0, return_state, stream):
    """The torch fast path: a cached plan per (shapes, strides, dtypes, options),
    outputs and the state scratch from torch's allocator on the call's stream,
    no host synchronization."""
    if type(scale) is not float and scale is not None:
        scale = attention_front.normalize_scale(OP, scale, None)
    if h0 is not None and not tensors.is_torch(h0):
        raise TypeError(
            f"[{OP}] initial_state must be a torch tensor like q, got {tensors.describe(h0)}"
        )
    state_key = None if h0 is None else (h0.shape, h0.stride(), h0.dtype, h0.get_device())
    key = (
        q.shape,
        q.stride(),
        k.shape,
        k.stride(),
        v.shape,
        v.stride(),
        q.dtype,
        k.dtype,
        v.dtype,
        q.get_device(),
        k.get_device(),
        v.get_device(),
        chunk_size,
        scale,
        state_key,
        bool(return_state),
    )
    plan = _PLANS.get(key)
    if plan is None:
        # Validates everything a shape can get wrong, once; nothing is allocated.
        plan = Prepared(
            q,
            k,
            v,
            chunk_size=chunk_size,
            scale=scale,
            initial_state=h0,
            return_state=return_state,
            stream=stream,
            allocate=False,
        )
        attention_front.remember(_PLANS, key, plan)
    if q.requires_grad or k.requires_grad or v.requires_grad:
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
    qa, ka, va = q.data_ptr(), k.data_ptr(), v.data_ptr()
    ha = h0.data_ptr() if h0 is not None else 0
    if (qa | ka | va | ha) & 15:
        for name, x in (("q", q), ("k", k), ("v", v)):
            linear_front.check_alignment(name, x.data_ptr(), x.stride())
        if ha & 15:
            raise ValueError(f"[{OP}] initial_state must be 16-byte aligned, got {ha:#x}")
    p = plan.problem
    s, on_current = streams.for_torch(stream)
    o = streams.new_output(q, plan.o_shape, None, s, on_current)
    h = streams.new_output(q, p.h_shape, None, s, on_current)
    ht = (
        streams.new_output(q, p.state_shape, sys.modules["torch"].float32, s, on_current)
        if return_state
        else None
    )
    if debug.poison_outputs:
        for t in (o, h, ht):
            if t is not None:
                streams.poison(t, s, on_current)
    plan.plan.run(
        s, [qa, ka, va, o.data_ptr(), h.data_ptr(), ha, ht.data_ptr() if ht is not None else 0]
    )
    # h is dropped here: torch's allocator reuses it only for work queued later
    # on the same stream, after chunk_o.
    return (o, ht) if return_state else o


def linear_attention(
    q,
    k,
    v,
    *,
    causal=True,
    chunk_size=None,
    scale=None,
    initial_state=None,
    return_state=False,
    stream=None,
):
    """Unnormalized causal linear attention, chunked, on tensor cores:
    o_t = scale * q_t . (S0 + sum_{s<=t} k_s v_s^T), the form of
    flash-linear-attention's chunk_linear_attn(normalize=False) (no feature
    map, no normalizer).

    q, k, v [B, H, T, D] of one shape, bfloat16 or float16, D in {64, 128},
    any T; any strides on B, H, T (16-byte aligned rows) with a contiguous last
    dimension. `scale` multiplies q (default 1.0: none, unlike softmax
    attention's 1/sqrt(D)). `chunk_size` in {32, 64, 128, 256} (default 64).
    `initial_state` S0: float32 [B, H, D, D] (rows: key dims, columns: value
    dims), C-contiguous. With `return_state`, also returns the float32 final
    state S0 + sum_s k_s v_s^T, so two halves chained equal the whole. Only
    causal=True is implemented. Streams and outputs as flash_attention: torch
    tensors run on `stream` (default torch's current stream) with outputs from
    torch's allocator and no host synchronization; NumPy in gives NumPy out.
    Precision: see this module's docstring (the state meets the tensor cores
    rounded to the input dtype). Forward only.
    """
    if tensors.is_torch(q):
        chunk = linear_front.normalize_chunk(chunk_size)
        if causal is not True:
            raise ValueError(f"[{OP}] only causal=True is implemented, got causal={causal!r}")
        return _call_torch(q, k, v, chunk, scale, initial_state, return_state, stream)
    prepared = Prepared(
        q,
        k,
        v,
        causal=causal,
        chunk_size=chunk_size,
        scale=scale,
        initial_state=initial_state,
        return_state=return_state,
        stream=stream,
    )
    return prepared()

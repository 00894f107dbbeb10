"""paged_attention: PagedAttention V2 decode over a page pool
(shaders/cuda/paged_attention.cu): a partition kernel, then a log-sum-exp reduce.

q [B, H, D] (one query per sequence); k_pages, v_pages [num_pages, KVH, page_size, D];
page_table [B, max_pages] int32; context_lens [B] int32. Only the first
ceil(len / page_size) entries of a table row are read; the rest may hold anything.
The contract for bad values in device-resident tables is in paged_attention().
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

from .. import _core, cuda, debug, runtime
from ..params import PAGED_POINTER_FIELDS, AttentionParams, PagedArgs, layout
from . import alibi, attention_front, streams, tensors
from .planned import PlannedLaunch

OP = "paged_attention"
HEAD_DIMS = (64, 128)
DTYPES = ("float16", "bfloat16")
PAGE_SIZES = (8, 16, 32, 64, 128)
MAX_GROUP = 8
WARPS = 4
UNROLL = 4  # lanes path: keys in flight per lane group
STAGES = 3  # mma path: 16-key steps in each warp's shared-memory ring
DEFAULT_PARTITION = 512
# Phase-1 kernels: "lanes" (paged_attention.cu) reduces each key's scores across
# lanes; "mma" (paged_attention_mma.cu) computes a GQA group's scores on tensor
# cores. The default is "mma" for GQA and "lanes" for MHA (bench paged compares).
SCORE_PATHS = ("lanes", "mma")


def default_scores(group: int) -> str:
    return "mma" if group > 1 else "lanes"


def spec(entry, head_dim, group, page_size, dtype, contiguous=False, scores=None, alibi=False):
    """`alibi` adds ALIBI=1 to the partition kernel (left out at 0, so kernels
    without ALiBi keep their names and code); the reduce never sees scores."""
    scores = scores or default_scores(group)
    common = {
        "HEAD_DIM": head_dim,
        "GROUP": group,
        "PAGE_SIZE": page_size,
        "WARPS": WARPS,
    }
    tail = {"CONTIGUOUS": bool(contiguous), "DTYPE": attention_front.dtype_code(dtype)}
    if alibi and entry == "paged_attention_partition":
        tail["ALIBI"] = 1
    if scores == "mma" and entry == "paged_attention_partition":
        return runtime.kernel_spec(
            entry, "paged_attention_mma.cu", common | {"STAGES": STAGES} | tail
        )
    return runtime.kernel_spec(entry, "paged_attention.cu", common | {"UNROLL": UNROLL} | tail)


def mma_shared_bytes(head_dim: int) -> int:
    """Dynamic shared memory of the mma path (kernel_layouts.h)."""
    return _core.paged_mma_shared_bytes(head_dim, WARPS, STAGES)


def all_specs():
    """Every page size and head dim at GQA 4 (the benchmark's 32/8, both score
    paths) and MHA, bf16; the contiguous variants at page size 16."""
    out = []
    for d in HEAD_DIMS:
        for group, paths in ((1, ("lanes",)), (4, SCORE_PATHS)):
            for ps in PAGE_SIZES:
                out.append(spec("paged_attention_reduce", d, group, ps, "bfloat16"))
                for sp in paths:
                    out.append(
                        spec(
                            "paged_attention_partition", d, group, ps, "bfloat16", False, scores=sp
                        )
                    )
            for sp in paths:
                out.append(
                    spec("paged_attention_partition", d, group, 16, "bfloat16", True, scores=sp)
                )
    return out


VALIDATION_MODES = ("device", "host")


def default_partition_size(batch: int, kv_heads: int, longest: int, sm_count: int) -> int:
    """Keys per partition: one partition (no reduce kernel) while the (kv head,
    sequence) CTAs alone fill two waves of the SMs, else the largest of 2048,
    1024, 512 and 256 keys that does, else 128. Measured on the H200
    (bench callpath split table, run 3 at 00b84eb, docs/gpu-notes.md): GQA 32/8
    reads 4.25 TB/s with 2048-key partitions at 16K x 16 against 3.90 with 512,
    and 4.17 against 3.70 at 64K x 4."""
    ctas = batch * kv_heads
    one = -(-longest // 16) * 16  # the mma path reads the table ahead in 16-key steps
    if ctas >= 2 * sm_count or longest <= 128:
        return one
    for size in (2048, 1024, 512, 256):
        if ctas * -(-longest // size) >= 2 * sm_count:
            return min(size, one)
    return min(128, one)


def _host_values(x, info, dtype, stream: int):
    """An array's values on the host for validate='host', strides honoured: a
    device array is read after the call's stream has finished its queued work,
    by one copy of the span its view covers."""
    if info["host"]:
        return np.asarray(x)
    shape, strides = info["shape"], info["strides"]  # element strides, 0 on size-1 dims
    flat = np.empty(1 + sum((n - 1) * st for n, st in zip(shape, strides, strict=True)), dtype)
    _core.stream_synchronize(stream)
    _core.copy_device_to_host(info["address"], flat.view(np.uint8))
    return np.lib.stride_tricks.as_strided(flat, shape, [st * flat.itemsize for st in strides])


def check_values_on_host(lens, table, page_size: int, num_pages: int, capacity: int, contiguous):
    """validate='host': every length and every page id a kernel would read."""
    lens = np.asarray(lens).astype(np.int64)
    bad = np.nonzero((lens < 1) | (lens > capacity))[0]
    if bad.size:
        row = int(bad[0])
        what = "k's rows" if contiguous else "max_pages * page_size"
        raise ValueError(
            f"[{OP}] context_lens[{row}] = {int(lens[row])} is outside 1..{capacity} ({what})"
        )
    if contiguous:
        return
    for row, n in enumerate(lens):
        used = np.asarray(table[row, : -(-int(n) // page_size)])
        bad_ids = used[(used < 0) | (used >= num_pages)]
        if bad_ids.size:
            col = int(np.nonzero((used < 0) | (used >= num_pages))[0][0])
            raise ValueError(
                f"[{OP}] page_table[{row}, {col}] = {int(bad_ids[0])} is outside the pool of "
                f"{num_pages} pages"
            )


class Prepared(PlannedLaunch):
    """A validated decode problem and its launch plan; with `allocate`, also its
    inputs on the device and its outputs, ready to launch (benchmarks launch it
    repeatedly)."""

    def __init__(
        self,
        q,
        k,
        v,
        page_table,
        context_lens,
        *,
        scale=None,
        partition_size=None,
        contiguous=False,
        scores=None,
        stream=None,
        validate=None,
        max_context_len=None,
        alibi_slopes=None,
        allocate=True,
    ):
        self.stream, self.on_current = streams.for_inputs(q, stream)
        names = ("q", "k", "v", "page_table", "context_lens")
        arrays = (q, k, v, page_table, context_lens)
        if contiguous:
            names, arrays = names[:3] + names[4:], arrays[:3] + arrays[4:]
        infos = {
            n: tensors.inspect(x, n, OP, self.stream) for n, x in zip(names, arrays, strict=True)
        }
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
        hosts = {i["host"] for i in infos.values()}
        if len(hosts) != 1:
            raise TypeError(f"[{OP}] all arrays must be NumPy arrays or all CUDA arrays")
        self.host = hosts.pop()
        if validate not in (None, *VALIDATION_MODES):
            raise ValueError(f"[{OP}] validate must be one of {VALIDATION_MODES}, got {validate!r}")
        # NumPy inputs are on the host already: checking their values is free.
        self.validate = "host" if self.host else (validate or "device")
        qi, ki, vi, li = infos["q"], infos["k"], infos["v"], infos["context_lens"]
        kv_name = "k" if contiguous else "k_pages"
        if len(qi["shape"]) != 3:
            raise ValueError(f"[{OP}] q must be [batch, heads, head_dim], got {list(qi['shape'])}")
        if len(ki["shape"]) != 4 or ki["shape"] != vi["shape"]:
            raise ValueError(
                f"[{OP}] {kv_name} and v must share a 4-d shape, got {list(ki['shape'])} and "
                f"{list(vi['shape'])}"
            )
        for n in ("q", "k", "v"):
            if infos[n]["dtype"] not in DTYPES:
                raise TypeError(f"[{OP}] {n} must be float16 or bfloat16, got {infos[n]['dtype']}")
            if infos[n]["dtype"] != qi["dtype"]:
                raise TypeError(f"[{OP}] q, k and v must share a dtype")
        if li["dtype"] != "int32" or len(li["shape"]) != 1:
            raise TypeError(
                f"[{OP}] context_lens must be a 1-d int32 array, got "
                f"{li['dtype']}{list(li['shape'])}"
            )
        b, h, d = qi["shape"]
        if contiguous:
            kb, kvh, capacity, kd = ki["shape"]
            page_size, num_pages, max_pages = 16, 0, 0
            if kb != b:
                raise ValueError(f"[{OP}] k must have batch {b} like q, got {kb}")
        else:
            num_pages, kvh, page_size, kd = ki["shape"]
            ti = infos["page_table"]
            if ti["dtype"] != "int32":
                raise TypeError(f"[{OP}] page_table must be int32, got {ti['dtype']}")
            if len(ti["shape"]) != 2 or ti["shape"][0] != b:
                raise ValueError(
                    f"[{OP}] page_table must be [batch={b}, max_pages], got {list(ti['shape'])}"
                )
            max_pages = ti["shape"][1]
            if page_size not in PAGE_SIZES:
                raise ValueError(f"[{OP}] page size must be one of {PAGE_SIZES}, got {page_size}")
            capacity = max_pages * page_size
        for name, n in (("batch", b), ("heads", h), ("kv heads", kvh)):
            if n == 0 or n > attention_front.GRID_YZ_MAX:
                raise ValueError(
                    f"[{OP}] {name} must be in 1..{attention_front.GRID_YZ_MAX}, got {n}"
                )
        if li["shape"][0] != b:
            raise ValueError(f"[{OP}] context_lens must have {b} entries, got {li['shape'][0]}")
        if kd != d or d not in HEAD_DIMS:
            raise ValueError(
                f"[{OP}] head_dim must be one of {HEAD_DIMS} and match q's ({d}); "
                f"{kv_name} has {kd}"
            )
        if h % kvh or h // kvh > MAX_GROUP:
            raise ValueError(
                f"[{OP}] q's heads ({h}) must be a multiple of the kv heads ({kvh}), "
                f"at most {MAX_GROUP} per kv head"
            )
        if (not contiguous and num_pages == 0) or capacity == 0:
            raise ValueError(f"[{OP}] {kv_name} and page_table must hold at least one page")
        tensors.check_dims_fit_int32(OP, kv_name, ki["shape"])
        if capacity > tensors.INT32_MAX:
            raise ValueError(
                f"[{OP}] max_pages * page_size = {capacity} overflows int32 (kernels take "
                f"32-bit positions)"
            )
        # Strides: K/V pages must be contiguous; q rows need 16-byte alignment
        # (16-byte loads); table rows and lengths may have any stride.
        for n in ("k", "v"):
            if not tensors.is_contiguous(infos[n]):
                raise ValueError(
                    f"[{OP}] {kv_name if n == 'k' else 'v'} must be C-contiguous, got strides "
                    f"{list(infos[n]['strides'])} for shape {list(infos[n]['shape'])}"
                )
        if contiguous and any(s % 8 for s in ki["strides"][:3]):
            raise ValueError(f"[{OP}] k's strides must be multiples of 8 elements")
        if qi["strides"][2] not in (0, 1) or any(s % 8 for s in qi["strides"][:2]):
            raise ValueError(
                f"[{OP}] q must be contiguous in head_dim with batch and head strides that are "
                f"multiples of 8 elements, got strides {list(qi['strides'])}"
            )
        if not contiguous and infos["page_table"]["strides"][1] not in (0, 1):
            raise ValueError(
                f"[{OP}] page_table rows must be contiguous (stride 1 along max_pages), got "
                f"strides {list(infos['page_table']['strides'])}"
            )
        if not self.host:
            for n in ("q", "k", "v"):
                if infos[n]["address"] % 16:
                    raise ValueError(f"[{OP}] {n} must be 16-byte aligned")
        scale = attention_front.normalize_scale(OP, scale, d)
        # ALiBi: the standard slopes ("default", uploaded once per head count) or
        # the caller's float32 [H] / [B, H], checked as flash_attention checks them.
        self.alibi_info, self.alibi_stride, self.alibi_address = None, 0, 0
        self.alibi_on = alibi_slopes is not None
        if isinstance(alibi_slopes, str) and alibi_slopes == alibi.DEFAULT:
            self.alibi_address = alibi.default_address(h)
        elif alibi_slopes is not None:
            self.alibi_info, self.alibi_stride = alibi.check(
                OP, alibi_slopes, b, h, self.host, self.stream
            )
        self._alibi_slopes = alibi_slopes
        self.capacity = capacity
        self._check_args = (page_size, num_pages, capacity, contiguous)
        lens_host = None
        if self.validate == "host":
            lens_host = _host_values(context_lens, li, np.int32, self.stream)
            table_host = None if contiguous else _host_values(page_table, ti, np.int32, self.stream)
            check_values_on_host(lens_host, table_host, *self._check_args)
        # The longest context sets the partition count: the lengths' maximum
        # when they were read on the host, else the caller's max_context_len,
        # else the table's capacity (CTAs past a sequence's end exit at once).
        if max_context_len is not None:
            if not isinstance(max_context_len, int) or not 1 <= max_context_len <= capacity:
                raise ValueError(
                    f"[{OP}] max_context_len must be an int in 1..{capacity}, got "
                    f"{max_context_len!r}"
                )
            longest = max_context_len
            if lens_host is not None and int(lens_host.max()) > longest:
                raise ValueError(
                    f"[{OP}] context length {int(lens_host.max())} exceeds max_context_len "
                    f"{longest}"
                )
        elif lens_host is not None:
            longest = int(lens_host.max())
        else:
            longest = capacity
        if partition_size is None:
            sms = cuda.properties()["sm_count"] if cuda.is_available() else 132
            partition_size = default_partition_size(b, kvh, longest, sms)
        if isinstance(partition_size, bool) or not isinstance(partition_size, int):
            raise TypeError(f"[{OP}] partition_size must be an int, got {partition_size!r}")
        if partition_size < 1:
            raise ValueError(f"[{OP}] partition_size must be positive, got {partition_size}")
        self.partition_size = partition_size
        self.partitions = -(-longest // partition_size)
        group = h // kvh
        dtype = qi["dtype"]
        self.scores = scores or default_scores(group)
        if self.scores not in SCORE_PATHS or (self.scores == "mma" and group < 2):
            raise ValueError(
                f"[{OP}] scores must be one of {SCORE_PATHS} ('mma' needs 2+ q heads per kv "
                f"head), got {scores!r} with {group}"
            )
        self.o_shape = (b, h, d)
        self.scratch_floats = b * h * self.partitions * (d + 2) if self.partitions > 1 else 0
        self._build_plan(
            b,
            h,
            kvh,
            d,
            dtype,
            group,
            scale,
            page_size,
            max_pages,
            num_pages,
            capacity,
            contiguous,
            infos,
        )
        if lens_host is not None:
            self.kv_bytes = int(lens_host.sum()) * kvh * d * 2 * 2  # K and V, 2 bytes each
        if allocate:
            self._allocate(names, arrays, infos, lens_host is None)

    def _build_plan(
        self,
        b,
        h,
        kvh,
        d,
        dtype,
        group,
        scale,
        page_size,
        max_pages,
        num_pages,
        capacity,
        contiguous,
        infos,
    ):
        p = AttentionParams(
            batch=b,
            heads=h,
            kv_heads=kvh,
            seqlen_q=1,
            seqlen_k=capacity,
            head_dim=d,
            scale=float(scale),
            page_size=page_size,
            max_pages=max_pages,
            num_pages=num_pages,
            partition_size=self.partition_size,
            alibi_stride=self.alibi_stride,
        )
        a = PagedArgs()
        a.errors = _core.input_error_address()
        if contiguous:
            a.kv_stride[:] = list(infos["k"]["strides"][:3])
        a.q_stride[:] = list(infos["q"]["strides"][:2])
        a.table_stride = 0 if contiguous else infos["page_table"]["strides"][0]
        a.lens_stride = infos["context_lens"]["strides"][0]
        a.partitions = self.partitions
        base = ctypes.sizeof(AttentionParams)  # PagedArgs follows at 64, 8-aligned
        fields = layout(PagedArgs)
        self.slots = [base + fields[f][0] for f in PAGED_POINTER_FIELDS]
        args = bytes(p) + bytes(a)
        phase1 = runtime.pipeline(
            spec(
                "paged_attention_partition",
                d,
                group,
                page_size,
                dtype,
                contiguous,
                self.scores,
                alibi=self.alibi_on,
            )
        )
        self.smem1 = mma_shared_bytes(d) if self.scores == "mma" else 0
        steps = [(phase1, [self.partitions, kvh, b], [WARPS * 32, 1, 1], self.smem1)]
        self.phase1, self.phase2 = phase1, None
        if self.partitions > 1:
            self.phase2 = runtime.pipeline(
                spec("paged_attention_reduce", d, group, page_size, dtype, contiguous)
            )
            steps.append((self.phase2, [h, b, 1], [d, 1, 1], 0))
        self.plan = _core.LaunchPlan(steps, args, self.slots)

    def _allocate(self, names, arrays, infos, lengths_unknown) -> None:
        dev = {n: tensors.to_device(x, infos[n]) for n, x in zip(names, arrays, strict=True)}
        if self.alibi_info is not None:
            dev["alibi_slopes"] = tensors.to_device(self._alibi_slopes, self.alibi_info)
        self._inputs = dev
        q = dev["q"]
        self.o = attention_front.allocate(self.o_shape, q.dtype, q, self.stream, self.on_current)
        acc = mx = sm = 0
        self._scratch = None
        if self.scratch_floats:
            self._scratch = attention_front.allocate(
                (self.scratch_floats,), "float32", q, self.stream, self.on_current
            )
            acc, mx, sm = scratch_addresses(self._scratch.address, self.o_shape, self.partitions)
        self.owned = attention_front.owned_buffers(self.o, self._scratch)
        self.addresses = [
            q.address,
            dev["k"].address,
            dev["v"].address,
            dev["page_table"].address if "page_table" in dev else 0,
            dev["context_lens"].address,
            self.o.address,
            acc,
            mx,
            sm,
            self.slopes_address(dev),
        ]
        if lengths_unknown:
            self.kv_bytes = None  # lengths stay on the device

    def slopes_address(self, dev=None) -> int:
        """The ALiBi slopes' device address (0 without ALiBi)."""
        if dev is not None and "alibi_slopes" in dev:
            return dev["alibi_slopes"].address
        return self.alibi_address

    def shared_bytes(self) -> int:
        """Static + dynamic shared memory of every kernel this problem launches."""
        sizes = [self.phase1.static_shared_bytes + self.smem1]
        if self.phase2:
            sizes.append(self.phase2.static_shared_bytes)
        return max(sizes)

    def __call__(self):
        self.launch()
        if self.host:
            _core.stream_synchronize(self.stream)
        return attention_front.result(self.o, self.host)


def scratch_addresses(base: int, o_shape, partitions: int) -> tuple[int, int, int]:
    """(acc, max, sum) inside one float32 scratch block of B*H*P*(D+2) floats."""
    b, h, d = o_shape
    n = b * h * partitions
    return base, base + 4 * n * d, base + 4 * n * (d + 1)


_PLANS: dict = {}


def _call_torch(
    q,
    k,
    v,
    page_table,
    context_lens,
    scale,
    partition_size,
    stream,
    validate,
    max_context_len,
    check_grad=True,
    alibi_slopes=None,
):
    """The torch fast path (see attention_front): a cached plan per shapes,
    strides, dtypes and options; no host synchronization unless validate='host'."""
    if type(scale) is not float and scale is not None:
        scale = attention_front.normalize_scale(OP, scale, None)
    alibi_key = None if alibi_slopes is None else alibi.torch_key(OP, alibi_slopes)
    key = (
        q.shape,
        q.stride(),
        k.shape,
        k.stride(),
        v.shape,
        v.stride(),
        page_table.shape,
        page_table.stride(),
        context_lens.shape,
        context_lens.stride(),
        q.dtype,
        k.dtype,
        v.dtype,
        page_table.dtype,
        context_lens.dtype,
        q.get_device(),  # ints: cheaper to hash than torch.device objects
        k.get_device(),
        v.get_device(),
        page_table.get_device(),
        context_lens.get_device(),
        scale,
        partition_size,
        validate,
        max_context_len,
        alibi_key,
    )
    plan = _PLANS.get(key)
    if plan is None or validate == "host":
        plan = Prepared(
            q,
            k,
            v,
            page_table,
            context_lens,
            scale=scale,
            partition_size=partition_size,
            stream=stream,
            validate=validate,
            max_context_len=max_context_len,
            alibi_slopes=alibi_slopes,
            allocate=False,
        )
        plan.o_like_q = q.is_contiguous()  # o has q's shape: empty_like is cheaper
        attention_front.remember(_PLANS, key, plan)
    if check_grad and (q.requires_grad or k.requires_grad or v.requires_grad):
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
    qa, ka, va = q.data_ptr(), k.data_ptr(), v.data_ptr()
    if (qa | ka | va) & 15:
        raise ValueError(f"[{OP}] q, k_pages and v_pages must be 16-byte aligned")
    s, on_current = streams.for_torch(stream)
    if plan.o_like_q:
        o = streams.new_like(q, s, on_current)
    else:
        o = streams.new_output(q, plan.o_shape, None, s, on_current)
    if debug.poison_outputs:
        streams.poison(o, s, on_current)
    acc = mx = sm = 0
    if plan.scratch_floats:
        f32 = sys.modules["torch"].float32
        scratch = streams.new_output(q, (plan.scratch_floats,), f32, s, on_current)
        acc, mx, sm = scratch_addresses(scratch.data_ptr(), plan.o_shape, plan.partitions)
    slopes = plan.alibi_address if plan.alibi_info is None else alibi_slopes.data_ptr()
    plan.plan.run(
        s,
        [
            qa,
            ka,
            va,
            page_table.data_ptr(),
            context_lens.data_ptr(),
            o.data_ptr(),
            acc,
            mx,
            sm,
            slopes,
        ],
    )
    return o


def paged_attention(
    q,
    k_pages,
    v_pages,
    page_table,
    context_lens,
    *,
    scale=None,
    partition_size=None,
    max_context_len=None,
    validate=None,
    alibi_slopes=None,
    stream=None,
):
    """Decode attention (one query per sequence) over a paged KV cache.

    Each CTA of the first kernel takes one (partition of partition_size keys, kv
    head, sequence) and serves all q heads of that kv head (GQA); a second kernel
    merges partitions with the log-sum-exp rule (skipped with one partition).

    Shapes, dtypes and strides are checked on the host before any work. Values:
    NumPy inputs are checked on the host. For device-resident page_table and
    context_lens (validate='device', the default) nothing is copied back: the
    kernels never read outside the pool whatever the table holds (an id outside
    it reads page 0, a length outside 1..max_pages*page_size is clamped, and a
    length below 1 gives zeros) and record the bad entry; the next call of any
    op, or attention_proto.check_errors(), raises DeviceInputError naming the
    sequence and the value. validate='host' copies both to the host and checks
    them before launching (the call then waits for the GPU).

    The partition count comes from max_context_len when given (a host int, as
    in vLLM and FlashInfer), else from the table's capacity, so the same call
    can be captured in a CUDA graph and replayed with new lengths and page ids.
    torch tensors run on `stream` (default: torch's current stream) with
    outputs and scratch from torch's caching allocator.

    alibi_slopes adds ALiBi's bias -slope * (len - 1 - j) to the scaled score of
    key j (the query is the sequence's last position, len - 1): "default" for
    the standard slopes of the head count, or float32 [H] / [B, H] on the
    device like q (NumPy with NumPy inputs); a separate specialization of the
    partition kernel (ALIBI=1), so calls without it run the unchanged kernel.
    """
    if tensors.is_torch(q) and all(
        tensors.is_torch(x) for x in (k_pages, v_pages, page_table, context_lens)
    ):
        return _call_torch(
            q,
            k_pages,
            v_pages,
            page_table,
            context_lens,
            scale,
            partition_size,
            stream,
            validate,
            max_context_len,
            alibi_slopes=alibi_slopes,
        )
    return Prepared(
        q,
        k_pages,
        v_pages,
        page_table,
        context_lens,
        scale=scale,
        partition_size=partition_size,
        stream=stream,
        validate=validate,
        max_context_len=max_context_len,
        alibi_slopes=alibi_slopes,
    )()


def decode_contiguous(q, k, v, context_lens, *, scale=None, partition_size=None, scores=None):
    """The same kernel reading K/V [B, KVH, N, D] directly (no page table): the
    reference for bit-exact and paging-overhead comparisons."""
    return Prepared(
        q,
        k,
        v,
        None,
        context_lens,
        scale=scale,
        partition_size=partition_size,
        contiguous=True,
        scores=scores,
    )()


def build_page_pool(k, v, context_lens, page_size, *, fragment=False, extra_pages=0, seed=0):
    """Pages and a table from contiguous K/V [B, KVH, N, D] (NumPy).

    With `fragment`, pages are scattered in random order over a pool that also
    holds `extra_pages` unused pages (filled with NaN, so a stray read shows).
    Returns (k_pages, v_pages, page_table); unused table slots hold -1.
    """
    b, kvh, n, d = k.shape
    lens = np.asarray(context_lens, dtype=np.int64)
    used = [-(-int(x) // page_size) for x in lens]
    max_pages = max(-(-n // page_size), 1)
    total = sum(used) + extra_pages
    order = np.random.default_rng(seed).permutation(total) if fragment else np.arange(total)
    k_pages = np.full((total, kvh, page_size, d), np.nan, dtype=k.dtype)
    v_pages = np.full((total, kvh, page_size, d), np.nan, dtype=v.dtype)
    table = np.full((b, max_pages), -1, dtype=np.int32)
    nxt = 0
    for row in range(b):
        for j in range(used[row]):
            pid = int(order[nxt])
            nxt += 1
            table[row, j] = pid
            lo, hi = j * page_size, min((j + 1) * page_size, int(lens[row]))
            k_pages[pid, :, : hi - lo] = k[row, :, lo:hi]
            v_pages[pid, :, : hi - lo] = v[row, :, lo:hi]
    return k_pages, v_pages, table

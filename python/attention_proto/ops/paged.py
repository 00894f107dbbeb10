"""paged_attention: PagedAttention V2 decode over a page pool
(shaders/cuda/paged_attention.cu): a partition kernel, then a log-sum-exp reduce.

q [B, H, D] (one query per sequence); k_pages, v_pages [num_pages, KVH, page_size, D];
page_table [B, max_pages] int32; context_lens [B] int32. Only the first
ceil(len / page_size) entries of a table row are read; the rest may hold anything.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .. import _core, runtime
from ..params import AttentionParams
from . import attention_front, tensors

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


def spec(entry, head_dim, group, page_size, dtype, contiguous=False, scores=None):
    scores = scores or default_scores(group)
    common = {
        "HEAD_DIM": head_dim,
        "GROUP": group,
        "PAGE_SIZE": page_size,
        "WARPS": WARPS,
    }
    tail = {"CONTIGUOUS": bool(contiguous), "DTYPE": attention_front.dtype_code(dtype)}
    if scores == "mma" and entry == "paged_attention_partition":
        return runtime.kernel_spec(
            entry, "paged_attention_mma.cu", common | {"STAGES": STAGES} | tail
        )
    return runtime.kernel_spec(entry, "paged_attention.cu", common | {"UNROLL": UNROLL} | tail)


def mma_shared_bytes(head_dim: int) -> int:
    """Dynamic shared memory of the mma path: 16 Q rows + each warp's K/V ring."""
    row = head_dim * 2
    return 16 * row + WARPS * STAGES * 2 * 16 * row


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


def _contiguous_c(info) -> bool:
    expect, stride = [], 1
    for n in reversed(info["shape"]):
        expect.insert(0, stride)
        stride *= n
    return all(
        s == e for s, e, n in zip(info["strides"], expect, info["shape"], strict=True) if n > 1
    )


def _host_values(x, info, dtype):
    if info["host"]:
        return np.ascontiguousarray(x)
    out = np.empty(info["shape"], dtype=dtype)
    _core.copy_device_to_host(info["address"], out.reshape(-1).view(np.uint8))
    return out


class Prepared:
    """A validated decode problem, ready to launch (benchmarks launch it repeatedly)."""

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
    ):
        names = ("q", "k", "v", "page_table", "context_lens")
        arrays = (q, k, v, page_table, context_lens)
        if contiguous:
            names, arrays = names[:3] + names[4:], arrays[:3] + arrays[4:]
        infos = {n: tensors.inspect(x, n, OP) for n, x in zip(names, arrays, strict=True)}
        hosts = {i["host"] for i in infos.values()}
        if len(hosts) != 1:
            raise TypeError(f"[{OP}] all arrays must be NumPy arrays or all CUDA arrays")
        self.host = hosts.pop()
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
            if not _contiguous_c(infos[n]):
                raise ValueError(f"[{OP}] {n} must be C-contiguous")
        if li["dtype"] != "int32" or len(li["shape"]) != 1:
            raise TypeError(
                f"[{OP}] context_lens must be a 1-d int32 array, got "
                f"{li['dtype']}{list(li['shape'])}"
            )
        b, h, d = qi["shape"]
        if contiguous:
            kb, kvh, n_max, kd = ki["shape"]
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
            if not _contiguous_c(ti):
                raise ValueError(f"[{OP}] page_table must be C-contiguous")
            max_pages = ti["shape"][1]
            if page_size not in PAGE_SIZES:
                raise ValueError(f"[{OP}] page size must be one of {PAGE_SIZES}, got {page_size}")
            n_max = max_pages * page_size
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
        for name, n in (("batch", b), ("heads", h), ("kv heads", kvh)):
            if n == 0 or n > attention_front.GRID_YZ_MAX:
                raise ValueError(
                    f"[{OP}] {name} must be in 1..{attention_front.GRID_YZ_MAX}, got {n}"
                )
        tensors.check_dims_fit_int32(OP, kv_name, ki["shape"])
        lens = _host_values(context_lens, li, np.int32).astype(np.int64)
        if lens.min() < 1:
            raise ValueError(f"[{OP}] context_lens must be >= 1, got {int(lens.min())}")
        if lens.max() > n_max:
            what = (
                f"max_pages * page_size = {max_pages} * {page_size}"
                if not contiguous
                else f"k's {n_max} rows"
            )
            raise ValueError(f"[{OP}] context length {int(lens.max())} exceeds {what}")
        if not contiguous:
            table = _host_values(page_table, infos["page_table"], np.int32)
            for row, n in enumerate(lens):
                used = table[row, : -(-int(n) // page_size)]
                bad = used[(used < 0) | (used >= num_pages)]
                if bad.size:
                    raise ValueError(
                        f"[{OP}] page_table[{row}] holds page id {int(bad[0])} "
                        f"outside the pool of {num_pages} pages"
                    )
        if scale is None:
            scale = 1.0 / math.sqrt(d)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"[{OP}] scale must be a positive finite number, got {scale!r}")
        longest = int(lens.max())
        if partition_size is None:
            partition_size = DEFAULT_PARTITION if longest > DEFAULT_PARTITION else longest
        if not isinstance(partition_size, int) or partition_size < 1:
            raise ValueError(
                f"[{OP}] partition_size must be a positive int, got {partition_size!r}"
            )
        self.partitions = -(-longest // partition_size)
        group = h // kvh
        dtype = qi["dtype"]
        self.scores = scores or default_scores(group)
        if self.scores not in SCORE_PATHS or (self.scores == "mma" and group < 2):
            raise ValueError(
                f"[{OP}] scores must be one of {SCORE_PATHS} ('mma' needs 2+ q heads per kv "
                f"head), got {scores!r} with {group}"
            )

        # Everything checked: now allocate and upload.
        dev = {n: tensors.to_device(x, infos[n]) for n, x in zip(names, arrays, strict=True)}
        self._inputs = dev
        fw = dev["q"].framework
        self.o = tensors.empty((b, h, d), dtype, fw)
        if self.partitions > 1:
            self._acc = tensors.empty((b, h, self.partitions, d), "float32", None)
            self._max = tensors.empty((b, h, self.partitions), "float32", None)
            self._sum = tensors.empty((b, h, self.partitions), "float32", None)
        params = AttentionParams(
            batch=b,
            heads=h,
            kv_heads=kvh,
            seqlen_q=1,
            seqlen_k=longest,
            head_dim=d,
            scale=float(scale),
            page_size=page_size,
            max_pages=max_pages,
            num_pages=num_pages,
            partition_size=partition_size,
        )
        kv_stride = dev["k"].strides[:3] if contiguous else (0, 0, 0)
        part = (
            (self._acc.address, self._max.address, self._sum.address)
            if (self.partitions > 1)
            else (0, 0, 0)
        )
        paged = struct.pack(
            "<9Q3qi4x",
            dev["q"].address,
            dev["k"].address,
            dev["v"].address,
            0 if contiguous else dev["page_table"].address,
            dev["context_lens"].address,
            self.o.address,
            *part,
            *kv_stride,
            self.partitions,
        )
        self.args = runtime.ArgPacker().raw(bytes(params), 4).raw(paged, 8).bytes()
        self.phase1 = runtime.pipeline(
            spec(
                "paged_attention_partition",
                d,
                group,
                page_size,
                dtype,
                contiguous,
                self.scores,
            )
        )
        self.grid1 = [self.partitions, kvh, b]
        self.block1 = [WARPS * 32, 1, 1]
        self.smem1 = mma_shared_bytes(d) if self.scores == "mma" else 0
        self.phase2 = None
        if self.partitions > 1:
            self.phase2 = runtime.pipeline(
                spec("paged_attention_reduce", d, group, page_size, dtype, contiguous)
            )
            self.grid2 = [h, b, 1]
            self.block2 = [d, 1, 1]
        self.kv_bytes = int(lens.sum()) * kvh * d * 2 * 2  # K and V, 2 bytes each

    def launch(self) -> None:
        self.phase1.launch(self.grid1, self.block1, self.smem1, self.args)
        if self.phase2 is not None:
            self.phase2.launch(self.grid2, self.block2, 0, self.args)

    def shared_bytes(self) -> int:
        """Static + dynamic shared memory of every kernel this problem launches."""
        sizes = [self.phase1.static_shared_bytes + self.smem1]
        if self.phase2:
            sizes.append(self.phase2.static_shared_bytes)
        return max(sizes)

    def __call__(self):
        self.launch()
        return tensors.result(self.o, self.host)


def paged_attention(
    q, k_pages, v_pages, page_table, context_lens, *, scale=None, partition_size=None
):
    """Decode attention (one query per sequence) over a paged KV cache.

    Each CTA of the first kernel takes one (partition of partition_size keys, kv
    head, sequence) and serves all q heads of that kv head (GQA); a second kernel
    merges partitions with the log-sum-exp rule (skipped when one partition covers
    the longest context). Page ids, lengths and dtypes are checked on the host
    before anything is allocated or launched.
    """
    return Prepared(
        q, k_pages, v_pages, page_table, context_lens, scale=scale, partition_size=partition_size
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

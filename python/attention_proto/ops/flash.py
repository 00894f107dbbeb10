"""flash_attention: FlashAttention-2 forward on mma.sync tensor cores
(shaders/cuda/flash_attention.cu)."""

from __future__ import annotations

import functools
import sys
from dataclasses import asdict, dataclass, replace

import numpy as np

from .. import _core, cuda, debug, runtime
from . import alibi, attention_front, streams, tensors, tuning
from . import rope as rope_ops
from .tensors import RUNTIME_DEVICE

HEAD_DIMS = (64, 128)
DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class FlashConfig:
    """How to run: query rows per CTA, keys per step, K/V stages, warps (each
    warp owns block_m / warps rows: 16 or 32)."""

    block_m: int = 128
    block_n: int = 64
    stages: int = 2
    warps: int = 4

    def __post_init__(self):
        rows = self.block_m // max(self.warps, 1)
        if rows not in (16, 32) or rows * self.warps != self.block_m:
            raise ValueError(
                f"[flash_attention] block_m / warps must be 16 or 32, got {self.block_m} / "
                f"{self.warps}"
            )
        if self.block_n % 16 or self.block_n <= 0 or self.stages not in (1, 2):
            raise ValueError(
                f"[flash_attention] block_n must be a positive multiple of 16 and stages 1 or "
                f"2, got {self.block_n} and {self.stages}"
            )

    @property
    def warp_m_tiles(self) -> int:
        return self.block_m // (16 * self.warps)

    def shared_bytes(self, head_dim: int) -> int:
        return _core.flash_shared_bytes(head_dim, self.block_m, self.block_n, self.stages)

    def as_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        return f"m{self.block_m}n{self.block_n}s{self.stages}w{self.warps}"


# The sweep grid (benchmarks time each; CI compiles each and reads its SASS).
# Warp layouts: (block_m, warps) with 16 rows per warp (64, 4), (128, 8) and 32
# rows per warp (128, 4). Left out because ptxas (NVRTC 13.0, sm_90a) spills
# them, 32 rows per warp throughout: 128 keys per step at head_dim 128 (hundreds
# of bytes) or single-buffered at 64, and 64 keys single-buffered at 128.
def sweep(head_dim: int) -> tuple[FlashConfig, ...]:
    out = []
    for m, w in ((64, 4), (128, 8), (128, 4)):
        for n in (32, 64, 128):
            for s in (1, 2):
                if m // w == 32 and n == 128 and (head_dim > 64 or s == 1):
                    continue
                if m // w == 32 and n == 64 and head_dim > 64 and s == 1:
                    continue
                out.append(FlashConfig(m, n, s, w))
    return tuple(out)


# Sweep tiles that sit at 255 registers and spill a few bytes, kept because they
# are FlashAttention-2's own tile (128 x 64, 4 warps): (head_dim, label) -> the
# most spill-store bytes CI accepts. The spill is reported in the benchmark rows
# (local_bytes) and the SASS test bounds it; the reloads are two 64-bit global
# addresses per K/V step, next to ~1500 other instructions.
REPORTED_SPILLS = {(128, "m128n64s2w4"): 16}
# ALIBI=1 adds a float distance per row and step to the same 255 registers: at
# head_dim 64 the tuned 128 x 128 tile then spills 4 bytes when causal (NVRTC
# 13.0, sm_90a); every other sweep tile stays clean (and 128 x 64 at head_dim
# 128 keeps its 16). Timed by bench variants (session 5: +4.3-7.2 % with keys in
# ascending order; the diagonal-first order is unmeasured). Same spills with it.
REPORTED_SPILLS_ALIBI = {(64, "m128n128s2w4"): 4}
# ROPE=1/2 adds the rotation of the Q tile, once, before the key loop: no tuned
# tile spills more than without it (NVRTC 13.0, sm_90a; D=128's tuned tile
# keeps its 16). The earlier design, rotating every K tile in the loop too,
# spilled 16 bytes at the causal D=64 128 x 128 tile.
REPORTED_SPILLS_ROPE: dict = {}


def reported_spill_bytes(kernel_spec) -> int:
    """The spill REPORTED_SPILLS accepts for a compiled variant: its tile's bound,
    also for Proto 2's monolithic and inline modes (the same loop body); 0 for
    every other kernel, and for the function-table mode (Proto 2 checks that)."""
    if kernel_spec.entry != "flash_attention":
        return 0
    c = dict(kv.split("=") for kv in kernel_spec.constants_description.split())
    if c.get("STITCH_MODE") == "2":
        return 0
    cfg = FlashConfig(int(c["BLOCK_M"]), int(c["BLOCK_N"]), int(c["STAGES"]), int(c["WARPS"]))
    key = (int(c["HEAD_DIM"]), cfg.label())
    alibi_bound = REPORTED_SPILLS_ALIBI.get(key, 0) if c.get("ALIBI") == "1" else 0
    rope_bound = REPORTED_SPILLS_ROPE.get(key, 0) if c.get("ROPE", "0") != "0" else 0
    return max(REPORTED_SPILLS.get(key, 0), alibi_bound, rope_bound)


STITCH_MODES = {0: "monolithic", 1: "inline", 2: "function_table"}


ROPE_MODES = {"neox": 1, "gptj": 2}


def spec(
    head_dim: int,
    dtype: str,
    causal: bool,
    config: FlashConfig,
    stitch_mode=None,
    alibi=False,
    rope=0,
):
    """The kernel for one tile; `stitch_mode` (Proto 2) adds STITCH_MODE 0/1/2,
    `alibi` ALIBI=1 and `rope` ROPE=1 (NeoX) or 2 (GPT-J), each left out when
    off, so kernels without them keep their names and archive entries."""
    extra = {} if stitch_mode is None else {"STITCH_MODE": int(stitch_mode)}
    variants = {"ALIBI": 1} if alibi else {}
    if rope:
        variants["ROPE"] = int(rope)
    return runtime.kernel_spec(
        "flash_attention",
        "flash_attention.cu",
        extra
        | {
            "HEAD_DIM": head_dim,
            "BLOCK_M": config.block_m,
            "BLOCK_N": config.block_n,
            "WARPS": config.warps,
            "WARP_M_TILES": config.warp_m_tiles,
            "STAGES": config.stages,
            "CAUSAL": bool(causal),
            "DTYPE": attention_front.dtype_code(dtype),
        }
        | variants,
    )


def sweep_specs(dtype: str = "bfloat16"):
    return [spec(d, dtype, c, cfg) for d in HEAD_DIMS for c in (False, True) for cfg in sweep(d)]


def stitch_specs(head_dim: int = 128, causal: bool = False):
    """Proto 2's three modes at the tuned tile (what the stitching benchmark runs)."""
    cfg = tuning.best_config(head_dim, "bfloat16", causal)
    return [spec(head_dim, "bfloat16", causal, cfg, m) for m in STITCH_MODES]


def _at_tuned_defaults(*variants):
    """Each variant's constants (spec() keywords) at the tuned default of every
    (D, dtype, causal)."""
    return [
        spec(d, t, c, tuning.best_config(d, t, c), **variant)
        for d in HEAD_DIMS
        for t in DTYPES
        for c in (False, True)
        for variant in variants
    ]


def default_specs():
    """The tuned default of every (D, dtype, causal): what a user's first call compiles."""
    return _at_tuned_defaults({})


def alibi_specs():
    """ALIBI=1 at every tuned default (what a first call with alibi_slopes compiles)."""
    return _at_tuned_defaults({"alibi": True})


def rope_specs():
    """ROPE=1 and 2 at every tuned default (a first call with rope= compiles one)."""
    return _at_tuned_defaults(*({"rope": mode} for mode in ROPE_MODES.values()))


class FusedVariants:
    """ALiBi slopes and RoPE tables as a kernel's three pointer arguments
    (slopes, cos, sin; 0 where unused), for the flash kernels' Prepared
    classes (mma.sync and wgmma): checked once, addresses at allocation.
    `alibi_slopes` is None, 'default' or the caller's array; `rope` None or a
    (cos, sin) pair, the kernel rotating q only (k comes rotated)."""

    alibi_slopes = None
    rope = None

    def set_variants(self, alibi_slopes, rope, rope_interleaved) -> None:
        self.alibi_slopes = alibi_slopes
        self.rope = rope
        self.rope_mode = 0 if rope is None else ROPE_MODES["gptj" if rope_interleaved else "neox"]

    def check_variants(self) -> None:
        self.check_alibi()
        self.check_rope()

    def check_rope(self) -> None:
        p = self.problem
        self.rope_infos, self.rope_table_row = None, 0
        if self.rope is None:
            return
        if not isinstance(self.rope, (tuple, list)) or len(self.rope) != 2:
            raise TypeError(
                f"[{OP}] rope must be None or a (cos, sin) pair of tables, got "
                f"{tensors.describe(self.rope)}"
            )
        if p.seqlen_q > p.seqlen_k:
            raise ValueError(
                f"[{OP}] rope needs seqlen_q <= seqlen_k (query i sits at position "
                f"i + Nk - Nq), got {p.seqlen_q} > {p.seqlen_k}"
            )
        ci, si, self.rope_table_row = rope_ops.check_fused_tables(
            OP, self.rope[0], self.rope[1], p.head_dim, p.seqlen_k, p.host, self.stream
        )
        self.rope_infos = (ci, si)

    def variant_fields(self) -> dict:
        return {"alibi_stride": self.alibi_stride, "rope_table_row": self.rope_table_row}

    def variant_addresses(self) -> list[int]:
        """[slopes, cos, sin] as the kernel reads them (0 where unused)."""
        tables = [0, 0]
        if self.rope_infos is not None:
            self.rope_device = [
                tensors.to_device(t, i) for t, i in zip(self.rope, self.rope_infos, strict=True)
            ]
            tables = [t.address for t in self.rope_device]
        return [self.slopes_address(), *tables]

    def check_alibi(self) -> None:
        p = self.problem
        self.alibi_info, self.alibi_stride = None, 0
        if self.alibi_slopes is not None and not (
            isinstance(self.alibi_slopes, str) and self.alibi_slopes == alibi.DEFAULT
        ):
            self.alibi_info, self.alibi_stride = alibi.check(
                OP, self.alibi_slopes, p.batch, p.heads, p.host, self.stream
            )

    def default_alibi_address(self) -> int:
        """The standard slopes' address when alibi_slopes is 'default', else 0."""
        if isinstance(self.alibi_slopes, str):
            return alibi.default_address(self.problem.heads)
        return 0

    def slopes_address(self) -> int:
        """The slopes the kernel reads (0 without ALiBi): the standard ones, or
        the caller's (uploaded when they are NumPy)."""
        if self.alibi_info is None:
            return self.default_alibi_address()
        self.alibi_device = tensors.to_device(self.alibi_slopes, self.alibi_info)
        return self.alibi_device.address


class Prepared(FusedVariants, attention_front.PreparedAttention):
    """One flash_attention problem, validated and ready to launch. With rope=
    the kernel rotates q only: k must come rotated (flash_attention does that
    with the standalone pass before it builds this)."""

    op = "flash_attention"
    dtypes = DTYPES
    head_dims = HEAD_DIMS
    extra_pointers = 3  # the ALiBi slopes, RoPE's cos and sin tables (0 when unused)

    def __init__(
        self,
        q,
        k,
        v,
        *,
        causal=False,
        scale=None,
        return_lse=False,
        alibi_slopes=None,
        rope=None,
        rope_interleaved=False,
        config=None,
        stitch_mode=None,
        stream=None,
        allocate=True,
    ):
        self.config = config
        self.set_variants(alibi_slopes, rope, rope_interleaved)
        if stitch_mode not in (None, *STITCH_MODES):
            raise ValueError(
                f"[flash_attention] stitch_mode must be one of {list(STITCH_MODES)}, "
                f"got {stitch_mode!r}"
            )
        self.stitch_mode = stitch_mode
        super().__init__(
            q,
            k,
            v,
            causal=causal,
            scale=scale,
            return_lse=return_lse,
            stream=stream,
            allocate=allocate,
        )

    def check(self, infos):
        p = self.problem
        self.check_variants()
        if self.config is None:
            self.config = tuning.best_config(p.head_dim, p.dtype, p.causal)
        if not isinstance(self.config, FlashConfig):
            raise TypeError(f"[flash_attention] config must be a FlashConfig, got {self.config!r}")
        if p.causal:
            m_blocks = self.query_blocks()
            if m_blocks > attention_front.GRID_YZ_MAX or p.heads * p.batch >= 2**31:
                raise ValueError(
                    f"[flash_attention] causal launches (heads * batch, query blocks); needs "
                    f"heads * batch < 2^31 and ceil(seqlen_q / {self.config.block_m}) <= "
                    f"{attention_front.GRID_YZ_MAX}, got {p.heads * p.batch} and {m_blocks}"
                )
        if not p.host:
            for name, info in zip("qkv", infos, strict=True):
                check_alignment(name, info["address"], info["strides"])
        smem = self.config.shared_bytes(p.head_dim)
        limit = cuda.properties()["shared_memory_per_block_optin"]
        if smem > limit:
            raise ValueError(
                f"[flash_attention] config {self.config.label()} needs {smem} bytes of shared "
                f"memory at head_dim {p.head_dim}; this GPU allows {limit}"
            )

    def spec(self):
        p = self.problem
        alibi_on = self.alibi_slopes is not None
        return spec(
            p.head_dim, p.dtype, p.causal, self.config, self.stitch_mode, alibi_on, self.rope_mode
        )

    def param_fields(self) -> dict:
        return self.variant_fields()

    def extra_addresses(self) -> list[int]:
        return self.variant_addresses()

    def query_blocks(self) -> int:
        return -(-self.problem.seqlen_q // self.config.block_m)

    def grid(self):
        p = self.problem
        m_blocks = self.query_blocks()
        # Causal runs query blocks longest first: see the kernel's comment.
        return [p.heads * p.batch, m_blocks, 1] if p.causal else [m_blocks, p.heads, p.batch]

    def block(self):
        return [self.config.warps * 32, 1, 1]

    def shared_bytes(self):
        return self.config.shared_bytes(self.problem.head_dim)


def check_alignment(name, address, strides) -> None:
    # cp.async moves 16-byte chunks: every row must start 16-byte aligned.
    # (Strides of size-1 dimensions are reported as 0 and never matter.)
    if address % 16 or any(s % 8 for s in strides[:3]):
        raise ValueError(
            f"[flash_attention] {name} must be 16-byte aligned with strides that are "
            f"multiples of 8 elements, got address {address:#x} and strides {list(strides)}"
        )


_PLANS: dict = {}


def _float32():
    return sys.modules["torch"].float32


def _alibi_key(slopes):
    return alibi.torch_key(OP, slopes)


def _rotated_inputs(q, k, v, rope, interleaved, stream, q_too=False):
    """(q, k, buffers the attention launch must mark used, rope left for the
    kernel) for rope=: k is rotated once by the standalone pass, and with
    `q_too` (torch inputs, rope_by_passes) q as well, leaving the kernel none;
    else the kernel rotates q. Rotating each K tile inside the kernel instead
    repeats the work for every query block: +41-58 % of attention time on an
    H200 (session 5, docs/gpu-notes.md), where this pass reads and writes K
    once. rope= is checked here first, so its errors name flash_attention; a k
    the attention would refuse is left to its own checks."""
    if not isinstance(rope, (tuple, list)) or len(rope) != 2:
        raise TypeError(
            f"[{OP}] rope must be None or a (cos, sin) pair of tables, got {tensors.describe(rope)}"
        )
    qs, ks = tuple(getattr(q, "shape", ())), tuple(getattr(k, "shape", ()))
    if len(qs) != 4 or len(ks) != 4 or qs[3] not in HEAD_DIMS or ks[3] != qs[3] or ks[0] != qs[0]:
        return q, k, [], rope  # the attention's own checks name what is wrong with q and k
    if qs[2] > ks[2]:
        raise ValueError(
            f"[{OP}] rope needs seqlen_q <= seqlen_k (query i sits at position "
            f"i + Nk - Nq), got {qs[2]} > {ks[2]}"
        )
    torch_in = tensors.is_torch(k)
    if torch_in:
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
        _rope_key(rope, interleaved)  # torch tables with torch inputs
    host = isinstance(k, np.ndarray)
    handle = streams.for_inputs(k, stream)[0]
    rope_ops.check_fused_tables(OP, rope[0], rope[1], qs[3], ks[2], host, handle)
    cos, sin = rope
    try:
        if torch_in:  # torch's allocator on the call's stream: reuse is stream-ordered
            k = rope_ops.rope(k, cos, sin, interleaved=interleaved, stream=stream)
        else:
            # Other arrays: the rotated k's stream-ordered buffer may be freed
            # only after the attention kernel, so that launch marks it used too.
            prepared = rope_ops.Prepared(k, cos, sin, interleaved=interleaved, stream=stream)
            return q, prepared(), prepared.owned, rope
    except (TypeError, ValueError) as e:
        raise type(e)(f"[{OP}] k for rope=: {e}") from e
    if not q_too:  # (other arrays returned above: q_too is for torch inputs)
        return q, k, [], rope
    try:  # query i sits at position i + Nk - Nq
        q = rope_ops.rope(q, cos, sin, offset=ks[2] - qs[2], interleaved=interleaved, stream=stream)
    except (TypeError, ValueError) as e:
        raise type(e)(f"[{OP}] q for rope=: {e}") from e
    return q, k, [], None


def _rope_key(rope, interleaved):
    """What a cached torch plan depends on in rope=: the tables' layout."""
    if rope is None:
        return None
    if not isinstance(rope, (tuple, list)) or len(rope) != 2:
        raise TypeError(f"[{OP}] rope must be None or a (cos, sin) pair of tables, got {rope!r}")
    keys = []
    for name, t in zip(("cos", "sin"), rope, strict=True):
        if not tensors.is_torch(t):
            raise TypeError(
                f"[{OP}] rope {name} must be a torch tensor like q, got {tensors.describe(t)}"
            )
        keys.append((t.shape, t.stride(), t.dtype, t.get_device()))
    return (*keys, bool(interleaved))


# The Hopper wgmma kernel (flash_hopper) where it beat the mma.sync kernel on
# an H200 (kernel only against the mma.sync public call, B*N = 16K tokens, N =
# 512-16K, both masks; bench hopper at ec30ccf, docs/gpu-notes.md session 8).
# D=128: step (e) (warp-specialized, the consumer warpgroups ping-ponging at
# the tensor cores) on 128 x 128 tiles, 377-570 TFLOP/s against 279-339,
# causal 225-531 against 191-330 (step (d) within 1-5 % of it either way).
# D=64: step (c) (TMA loads, no warp specialization) on 128 x 64 tiles,
# 327-405 against 275-321, causal 216-381 against 182-316. Below N=512 not
# measured. Step (b) (cp.async) is the fallback where TMA cannot describe a
# layout, at D=128 from 1K only (session 6; at D=64 it was slower at every N).
HOPPER_MIN_SEQLEN_Q = {128: 512, 64: 512}  # D -> the N from which the plan won
HOPPER_FALLBACK_STEP = 2
HOPPER_FALLBACK_MIN_SEQLEN_Q = {128: 1024}  # D -> N, step (b)
# The tile per (D, causal) and key count: (from_keys, (step, block_m, block_n,
# persistent)), ascending. Session 10, bench/tile_sweep.py on an H200 at
# 3381d46 (kernel only, B*N = 16K tokens, bf16; docs/gpu-notes.md): the
# persistent grid (one CTA per SM taking query blocks in turn) beat one CTA
# per block at D=128 on 128 x 128 below 4K keys (1K: 481 against 456
# TFLOP/s, causal 328 against 297) and on 128 x 192 from 4K (4K/8K/16K:
# 556/580/591 against 532/570/583), at D=64 on 128 x 192 from 4K (402/419/422
# against step (c) 128 x 64's 393/403/406; causal 343/371/393 against
# 330/362/385). Session 11, bench/tile_sweep.py at 879f021 (H200, kernel
# only; wip/results/*879f021*): D=64 on three consumer warpgroups (192 x 128,
# persistent) full 373/447/475/483 at 1K/4K/8K/16K against 128 x 192
# persistent 338/408/425/435 and step (c) 357 at 1K (cuDNN 434/456/456/457);
# causal 241/364/423/452 against step (c) 257/340/364/388 (cuDNN
# 334/406/429/441), so step (c) stays below 4K causal keys. D=128 causal
# from 4K: persistent 128 x 192 463/536/565 at 4K/8K/16K against one CTA per
# block on 128 x 176 456/528/572 and 128 x 192 422/499/562 (cuDNN
# 513/541/560); session 11's first sweep (1390c85), which had put one CTA per
# block from 8K, ran beside GPU tests on the same card and is not used.
# The last field, o_tma (HopperConfig.o_tma: the output through shared memory
# and a TMA store; 1 its own tile, 2 the last V stage): session 14,
# bench/ab_sweep.py on an H200 (kernel only, each against the plan without it,
# in turn; docs/gpu-notes.md): its own tile -8.6 / -7.5 % time at D=128 1K
# full / causal on 128 x 128, -2.4 / -1.5 / -2.7 % at D=64 1K / 4K / 8K full
# and -1.7 / -0.4 % causal 4K / 8K on 192 x 128; in the V stage on D=128's
# 128 x 192, -0.6 / -0.9 % full at 4K / 8K but +6.4 / +0.7 % causal, so full
# only. The early Q release (early_q) measured -2.5..+8.4 % and is not used.
HOPPER_PLAN = {
    (128, False): ((0, (5, 128, 128, True, 1)), (4096, (5, 128, 192, True, 2))),
    (128, True): ((0, (5, 128, 128, True, 1)), (4096, (5, 128, 192, True, 0))),
    (64, False): ((0, (5, 192, 128, True, 1)),),
    (64, True): ((0, (3, 128, 64, False, 0)), (4096, (5, 192, 128, True, 1))),
}


# RoPE calls whose plan tile has no room for rope_ahead's second Q buffer
# (D=128 from 4K keys: 128 x 192), by head dim and causal: the tile they take
# with it instead. bench/diag/rope_grid.py (H200, cd1a123, kernel only, in
# turn, 6 rounds, over the plain plan): D=128 8K causal, rope_ahead on 128 x
# 128 persistent +2.8 % against the consumers' rotation on 128 x 192 one CTA
# per block +6.0 %; full 8K +5.6 % against +3.2 %, so full keeps the latter;
# D=64 8K (plan 192 x 128) +1.5 / +4.0 % for the consumers' rotation against
# +15.3 % and more for rope_ahead on 128-row tiles.
ROPE_AHEAD_TILES = {(128, True): (128, 128, 1)}  # (block_m, block_n, o_tma)


def hopper_config(d, causal=False, seqlen_k=0, alibi=False, rope=False):
    """The HopperConfig the dispatcher runs (HOPPER_PLAN). With ALiBi, steps
    (d)/(e) add its key part on the tensor cores (alibi_mma), on a narrower key
    tile where the key block does not fit beside the tiles, or as S's start
    value (alibi_start), each with its order of key tiles (key_order).
    With RoPE, on 128-row tiles where Q's second buffer fits, the producer's
    warps rotate each item's Q one item ahead
    (rope_ahead), and on ROPE_AHEAD_TILES' tile where a plan tile has no room
    for it; elsewhere the consumers rotate it, on the persistent grid on
    128 x 128 tiles without ALiBi and one CTA per block otherwise (spec()
    refuses that rotation on the persistent grid on larger tiles: ptxas
    spilled)."""
    from . import flash_hopper  # imports this module

    entries = HOPPER_PLAN[d, bool(causal)]
    step, block_m, block_n, persistent, o_tma = [e for k, e in entries if seqlen_k >= k][-1]
    cfg = flash_hopper.HopperConfig(block_m, block_n, step, persistent=persistent, o_tma=o_tma)
    if alibi and step >= 4:
        # ALiBi's form and key order by kernel-only cycles over the plain plan, timed
        # call by call (bench/diag/key_order_grid.py, H200, 915a6d7 and 50b2e30,
        # 150 cycles, the two calls within 0.8 point; docs/gpu-notes.md, session 20):
        # - Causal, without RoPE: the key part as S's start value (alibi_start,
        #   ALIBI=3; every causal tile is linear in the key). On 128 x 128 the
        #   diagonal's tile, then ascending (key_order 3): D=128 2K +4.0 % against
        #   +6.0 / +6.8 % for the zig-zag; 128 x 192 and D=64 keep the zig-zag
        #   (D=128 8K +7.0 / +7.1 % against +8.6 %; D=64 8K +10.1 % against +9.9 %).
        # - Without the mask, one turn from the diagonal (key_order 2); the zig-zag
        #   costs even the plain kernel 2-3 % at D=128. Where the plan has 192 keys
        #   the start value on them (8K +5.8 %; the tensor cores' key part on 176
        #   keys +6.6 / +6.8 %, zig-zag +7.8 %); elsewhere the tensor cores (D=128
        #   2K +3.9 / +3.8 % against +5.7 % for the start value and +5.4 % as
        #   dispatched before; D=64 8K +7.2 / +7.1 % against +12.0 % and +10.4 %).
        # - With RoPE (not measured with ALIBI=3): the tensor cores' key part, one
        #   turn without the mask.
        if not rope and causal:
            order = 3 if (block_m, block_n) == (128, 128) else None
            cfg = replace(cfg, alibi_start=True, key_order=order)
        elif not rope and block_n == 192:
            cfg = replace(cfg, alibi_start=True, key_order=2)
        else:
            cfg = flash_hopper.with_alibi_mma(cfg, d)
            cfg = cfg if causal else replace(cfg, key_order=2)
        # - And the window (alibi_window): each item skips the key tiles whose
        #   every weight is exactly 0, bounded by each head's largest |q| and |k|
        #   (a first kernel reads both). Public calls over the plain call, call by
        #   call (bench/diag/alibi_window_grid.py, H200, 4bce413, random normal
        #   inputs, the standard slopes): -33.0 to +0.8 % with it, +2.3 to +9.5 %
        #   without, the output equal bit for bit. Inputs whose norms allow no
        #   skip pay the norms kernel on top (one read of q and k).
        if not rope:
            cfg = replace(cfg, alibi_window=True)
    if rope and block_m == 128 and step >= 4:
        ahead = replace(cfg, rope_ahead=True)
        if flash_hopper.builds(ahead, d, rope=1):
            return ahead
    if rope and not alibi and persistent and (d, bool(causal)) in ROPE_AHEAD_TILES:
        block_m, block_n, o_tma = ROPE_AHEAD_TILES[d, bool(causal)]
        return flash_hopper.HopperConfig(
            block_m, block_n, step, persistent=True, o_tma=o_tma, rope_ahead=True
        )
    # The consumers' rotation on the persistent grid only where its kernel
    # compiles without spills.
    if rope and persistent and not flash_hopper.rope_fits_persistent(cfg):
        cfg = replace(cfg, persistent=False)
    return cfg


def hopper_plan_words(cfg):
    """How dispatch reasons name a plan's configuration."""
    grid = ", persistent grid" if cfg.persistent else ""
    alibi = ", ALiBi keys on the tensor cores" if cfg.alibi_mma else ""
    alibi += ", ALiBi keys as the scores' start" if cfg.alibi_start else ""
    alibi += ", ALiBi's window of key tiles" if cfg.alibi_window else ""
    store = ", output by TMA store" if cfg.o_tma else ""
    ahead = ", Q rotated one item ahead by the producer's warps" if cfg.rope_ahead else ""
    order = {
        0: ", key tiles ascending",
        1: ", key tiles nearest the diagonal first",
        2: ", key tiles in one turn from the diagonal",
        3: ", the diagonal's key tile first, then ascending",
    }.get(cfg.key_order, "")
    return (
        f"step {cfg.step} on {cfg.block_m} x {cfg.block_n} tiles{grid}{alibi}{order}{store}{ahead}"
    )


def hopper_plan_configs(alibi=False, rope=False):
    """Every HopperConfig hopper_config() returns with these options."""
    return {
        hopper_config(d, causal, from_keys, alibi, rope)
        for (d, causal), entries in HOPPER_PLAN.items()
        for from_keys, _ in entries
    }


@functools.cache
def _wgmma_device() -> bool:
    """Whether this process's GPU is sm_90a: asked once, since dispatch() runs on
    every rope= call (rope_by_passes) and properties() builds a dict a call."""
    from . import flash_hopper  # imports this module

    return cuda.is_available() and cuda.properties()["arch"] == flash_hopper.ARCH


def dispatch(q, causal, alibi_slopes=None, rope=None, config=None, stitch_mode=None):
    """(kernel, reason): "wgmma" or "mma_sync" for a problem, and why."""
    if not debug.dispatch_hopper and config is None:
        return "mma_sync", "debug.dispatch_hopper is off"
    from . import flash_hopper  # imports this module

    if isinstance(config, flash_hopper.HopperConfig):
        return "wgmma", f"config={config.label()} names the wgmma kernel"
    if config is not None or stitch_mode is not None:
        return "mma_sync", "config= or stitch_mode= names an mma.sync kernel"
    shape = getattr(q, "shape", ())
    if len(shape) != 4:
        return "mma_sync", "not a [B, H, N, D] array (validation says more)"
    d, n = int(shape[3]), int(shape[2])
    if n < HOPPER_MIN_SEQLEN_Q.get(d, 1 << 62):
        return "mma_sync", f"D={d}, N={n}: the wgmma kernel was not faster there"
    if not _wgmma_device():
        return "mma_sync", "the wgmma kernel needs an sm_90a GPU"
    if causal and -(-n // hopper_config(d, causal).block_m) > attention_front.GRID_YZ_MAX:
        return "mma_sync", "too many query blocks for the wgmma kernel's causal grid"
    return "wgmma", f"D={d}, N={n} on sm_90a: the wgmma kernel"


# rope= calls on the wgmma plan that rotate q by the standalone pass as well
# as k, then run the plain plan (rather than q inside the kernel), by head dim
# and mask: from this many keys; with ALiBi, at every length.
# bench/diag/rope_path_grid.py (H200, 267ce09, public calls timed call by call,
# 60 cycles, each over the plain call; docs/gpu-notes.md, session 21), q in the
# kernel against the passes:
# - D=128 full: +18.5 / +10.2 % against +26.5 / +13.9 % at 1K / 2K; from 4K,
#   where the plan's 128 x 192 leaves the rotating kernel one CTA per block,
#   +14.8 / +9.8 / +7.2 % against +7.3 / +3.9 / +2.1 % at 4K / 8K / 16K.
# - D=128 causal: +24.1 / +14.8 / +9.0 % against +37.5 / +21.2 / +11.8 % at
#   1K / 2K / 4K (q rotated ahead on 128 x 128); +10.1 / +10.1 % against
#   +6.8 / +4.0 % at 8K / 16K.
# - D=64 full (192 x 128, three consumer warpgroups): the passes win at every
#   length, +27.1 / +16.9 / +9.7 / +6.0 / +3.9 % against +18.9 / +11.8 / +6.3 /
#   +3.4 / +1.8 % at 1K-16K.
# - D=64 causal: below 4K (step (c)) +21.6 / +12.3 % against +27.8 / +16.3 %;
#   from 4K +16.1 / +10.1 / +5.7 % against +10.3 / +6.0 / +3.3 %.
# - ALiBi with RoPE (D=128, each case above): the passes then the ALiBi plan
#   by 3.6 to 41.3 points (the kernel with both runs the tensor cores' key part
#   on its own tile, one CTA per block).
ROPE_PASSES_FROM_KEYS = {(128, False): 4096, (128, True): 8192, (64, False): 0, (64, True): 4096}


def rope_passes_rule(d, causal, seqlen_k, alibi=False) -> bool:
    """ROPE_PASSES_FROM_KEYS for a call the wgmma plan runs: True where q is
    better rotated by the standalone pass than inside the kernel."""
    return alibi or seqlen_k >= ROPE_PASSES_FROM_KEYS.get((d, bool(causal)), 1 << 62)


def rope_by_passes(q, k, causal, alibi=False, config=None) -> bool:
    """Whether flash_attention(rope=...) with torch tensors rotates q by the
    standalone pass too, then runs the plain (or ALiBi) plan: only where the
    dispatch picks the wgmma plan itself (a config= keeps the rotation in the
    kernel it names; the mma.sync kernel rotates q itself) and
    rope_passes_rule says so."""
    ks = getattr(k, "shape", ())
    if config is not None or len(ks) != 4 or dispatch(q, causal)[0] != "wgmma":
        return False
    return rope_passes_rule(int(q.shape[3]), causal, int(ks[2]), alibi)


def prepare(q, k, v, *, causal=False, alibi_slopes=None, rope=None, config=None, **kwargs):
    """The Prepared problem the public call runs (dispatch() picks the kernel);
    `reason` on it says why. Benchmarks time its launch as the kernel-only time."""
    kernel, reason = dispatch(q, causal, alibi_slopes, rope, config, kwargs.get("stitch_mode"))
    if kernel == "wgmma":
        kwargs = kwargs | {"alibi_slopes": alibi_slopes, "rope": rope}
        prepared, reason = _prepare_wgmma(q, k, v, causal, config, reason, kwargs)
    else:
        prepared = Prepared(
            q, k, v, causal=causal, alibi_slopes=alibi_slopes, rope=rope, config=config, **kwargs
        )
    prepared.reason = reason
    return prepared


def _prepare_wgmma(q, k, v, causal, config, reason, kwargs):
    """(Prepared, reason) on the wgmma kernel: `config` if it is a HopperConfig,
    else HOPPER_PLAN's (hopper_config); where TMA cannot describe the layout, step (b) if it
    was faster at this D and N, else the mma.sync kernel."""
    from . import flash_hopper  # imports this module

    kwargs = {key: x for key, x in kwargs.items() if key != "stitch_mode"}
    wgmma = flash_hopper.Dispatched
    if isinstance(config, flash_hopper.HopperConfig):
        return wgmma(q, k, v, causal=causal, config=config, **kwargs), reason
    try:
        alibi_on, rope_on = kwargs.get("alibi_slopes") is not None, kwargs.get("rope") is not None
        cfg = hopper_config(int(q.shape[3]), causal, int(k.shape[2]), alibi_on, rope_on)
        prepared = wgmma(q, k, v, causal=causal, config=cfg, **kwargs)
        return prepared, f"{reason}, {hopper_plan_words(cfg)}"
    except flash_hopper.TmaLayoutError as e:
        refusal = str(e)
    d, n = int(q.shape[3]), int(q.shape[2])
    if n >= HOPPER_FALLBACK_MIN_SEQLEN_Q.get(d, 1 << 62):
        cfg = flash_hopper.HopperConfig(step=HOPPER_FALLBACK_STEP)
        prepared = wgmma(q, k, v, causal=causal, config=cfg, **kwargs)
        return prepared, f"{reason}; step {HOPPER_FALLBACK_STEP} instead: {refusal}"
    prepared = Prepared(q, k, v, causal=causal, **kwargs)
    return prepared, f"{reason}; the mma.sync kernel instead: {refusal}"


def _call_torch(
    q,
    k,
    v,
    causal,
    scale,
    return_lse,
    config,
    stream,
    check_grad=True,
    alibi_slopes=None,
    rope=None,
    rope_interleaved=False,
):
    """The torch fast path: a cached plan per (shapes, strides, dtypes, options),
    outputs from torch's allocator on the call's stream, no host synchronization.
    Every line here is host time of every call (issue 9: <= 10 us): no helper
    calls on the common path, no conversions a conditional expression can do."""
    if type(scale) is not float and scale is not None:
        scale = attention_front.normalize_scale(OP, scale, None)
    alibi_key = None if alibi_slopes is None else _alibi_key(alibi_slopes)
    rope_key = None if rope is None else _rope_key(rope, rope_interleaved)
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
        q.get_device(),  # an int: cheaper to hash than a torch.device
        k.get_device(),
        v.get_device(),
        True if causal else False,
        scale,
        True if return_lse else False,
        config,
        alibi_key,
        rope_key,
        debug.dispatch_hopper,  # a switched dispatch never reuses the other's plan
    )
    plan = _PLANS.get(key)
    if plan is None:
        plan = _torch_plan(
            q,
            k,
            v,
            key,
            causal,
            scale,
            return_lse,
            config,
            stream,
            alibi_slopes,
            rope,
            rope_interleaved,
        )
    if check_grad and (q.requires_grad or k.requires_grad or v.requires_grad):
        attention_front.check_no_grad(OP, (("q", q), ("k", k), ("v", v)))
    qa, ka, va = q.data_ptr(), k.data_ptr(), v.data_ptr()
    if (qa | ka | va) & 15:
        for name, x in (("q", q), ("k", k), ("v", v)):
            check_alignment(name, x.data_ptr(), x.stride())
    if plan.plain and stream is None and not debug.poison_outputs:
        # The common call: o like q on torch's current stream.
        o = plan.empty_like(q)
        plan.run_plan(plan.current_stream(RUNTIME_DEVICE), [qa, ka, va, o.data_ptr(), *plan.tail])
        return o
    s, on_current = streams.for_torch(stream)
    if plan.o_like_q:
        o = streams.new_like(q, s, on_current)
    else:
        o = streams.new_output(q, plan.o_shape, None, s, on_current)
    lse = streams.new_output(q, plan.lse_shape, _float32(), s, on_current) if return_lse else None
    if debug.poison_outputs:
        for t in (o, lse) if lse is not None else (o,):
            streams.poison(t, s, on_current)
    slopes = alibi_slopes.data_ptr() if alibi_key is not None and alibi_key != alibi.DEFAULT else 0
    addresses = [qa, ka, va, o.data_ptr(), lse.data_ptr() if lse is not None else 0]
    if plan.scratch_floats:  # the key split: its parts' scratch, freed stream-ordered
        addresses.append(
            streams.new_output(q, (plan.scratch_floats,), _float32(), s, on_current).data_ptr()
        )
    elif plan.extra_pointers:  # slopes, cos and sin (either kernel, with ALiBi or RoPE)
        tables = (rope[0].data_ptr(), rope[1].data_ptr()) if rope is not None else (0, 0)
        addresses += [slopes or plan.alibi_address, *tables]
        if plan.window_floats:  # the ALiBi window's heads' norms, freed stream-ordered
            norms = streams.new_output(q, (plan.window_floats,), _float32(), s, on_current)
            addresses.append(norms.data_ptr())
    plan.run_plan(s, addresses)
    return (o, lse) if return_lse else o


def _torch_plan(
    q, k, v, key, causal, scale, return_lse, config, stream, alibi_slopes, rope, rope_interleaved
):
    """A new cached torch plan (the cold path of _call_torch): validates
    everything a shape can get wrong, once; nothing is allocated. It keeps what
    the common call needs ready: the bound launch, torch's empty_like and
    current-stream lookup, and the argument tail after q, k, v, o."""
    plan = prepare(
        q,
        k,
        v,
        causal=causal,
        scale=scale,
        return_lse=return_lse,
        alibi_slopes=alibi_slopes,
        rope=rope,
        rope_interleaved=rope_interleaved,
        config=config,
        stream=stream,
        allocate=False,
    )
    plan.alibi_address = plan.default_alibi_address()
    plan.o_like_q = q.is_contiguous()  # o has q's shape: empty_like is cheaper
    # The common call (_call_torch's first branch): no lse, no per-call slopes
    # (the standard ones are the plan's, alibi_address) or tables, o like q.
    # Its tail: lse, then the kernel's extra pointers (slopes, cos, sin; none
    # on the plain wgmma kernel).
    plan.scratch_floats = getattr(plan, "split_floats", 0)  # the wgmma kernel's key split
    plan.window_floats = getattr(plan, "norms_floats", 0)  # the wgmma kernel's ALiBi window
    plan.plain = (
        plan.o_like_q
        and not return_lse
        and (alibi_slopes is None or isinstance(alibi_slopes, str))
        and rope is None
        and not plan.scratch_floats
        and not plan.window_floats
    )
    plan.tail = (0, plan.alibi_address, 0, 0)[: 1 + plan.extra_pointers]
    plan.run_plan = plan.plan.run
    plan.empty_like = sys.modules["torch"].empty_like
    plan.current_stream = streams.torch_current_function()
    attention_front.remember(_PLANS, key, plan)
    return plan


OP = "flash_attention"


def flash_attention(
    q,
    k,
    v,
    *,
    causal=False,
    scale=None,
    alibi_slopes=None,
    rope=None,
    rope_interleaved=False,
    return_lse=False,
    config=None,
    stream=None,
):
    """Softmax attention forward, FlashAttention-2 style, on tensor cores.

    q [B, H, Nq, D], k and v [B, KVH, Nk, D] (H % KVH == 0), bfloat16 or float16,
    D in {64, 128}; any strides on B, H, N with a contiguous last dimension.
    torch CUDA tensors take the fast path: the call runs on `stream` (default:
    torch's current stream), its outputs come from torch's caching allocator,
    and nothing waits for the GPU, so it can be captured in a CUDA graph. Other
    DLPack CUDA arrays (cupy, jax) are used in place on `stream` (default: the
    legacy default stream) and the result comes back as the same framework's
    array; NumPy arrays are uploaded and the result downloaded. Causal masks
    align bottom-right as in FlashAttention 2: query i sees keys
    j <= i + Nk - Nq, and a row that sees no key returns 0 (lse = -inf); a row
    with a NaN or +inf score among its visible keys (NaN or Inf in q or k)
    returns NaN (lse = NaN). With return_lse, also returns the float32
    log-sum-exp [B, H, Nq] of the scaled scores. `config` (a FlashConfig)
    overrides the tuned tile choice (a flash_hopper.HopperConfig picks the
    wgmma kernel). On an sm_90a GPU, calls from N = 512 (ALiBi and RoPE
    included) run on the Hopper wgmma kernel (flash.HOPPER_PLAN's tile per head
    dim, mask and key count), where it measured faster (dispatch()
    says which kernel a problem gets and why; prepare() returns it). Forward
    only: inputs that require grad are refused while grad mode is on.

    alibi_slopes adds ALiBi's bias -slope * |i + Nk - Nq - j| to the scaled
    score of query i and key j (with causal: the causal form, -slope * (i +
    Nk - Nq - j)), fused into the kernel (a separate specialization; without
    ALiBi the kernel is unchanged). "default" takes the standard slopes of
    the head count (reference.alibi_slopes; uploaded once per head count); an
    array gives float32 slopes [H] or [B, H], on the device like q (NumPy
    with NumPy inputs). On the wgmma plan's steps (d)/(e) a first kernel
    finds each head's largest |q| and |k|, and each query block skips the key
    tiles whose every weight is exactly 0 in the kernel's arithmetic (the
    result is the same bit for bit; HopperConfig.alibi_window).

    rope=(cos, sin) applies rotary embeddings to q and k: k by one standalone
    pass (attention_proto.rope, on the call's stream, into a new array), q inside
    the kernel, once, before its key loop (a separate specialization, ROPE; without it
    the kernel is unchanged). Where that measured slower on the wgmma plan (torch
    tensors; rope_by_passes: longer keys, and ALiBi with RoPE), the pass rotates q
    too and the plain (or ALiBi) plan runs. Key j turns by row j of the tables and query i
    by row i + Nk - Nq (bottom-right, as the causal mask aligns; needs Nq <= Nk).
    Tables as attention_proto.rope_tables makes them, float32 [>= Nk, D/2], on
    the device like q; pairs (x[i], x[i + D/2]) (GPT-NeoX), or (x[2i], x[2i+1])
    with rope_interleaved=True (GPT-J). Equal, up to rounding of the same float32
    arithmetic, to rope() on q (offset Nk - Nq) and k followed by this call.
    """
    keep = []
    if rope is not None:
        q_too = tensors.is_torch(q) and rope_by_passes(
            q, k, causal, alibi_slopes is not None, config
        )
        q, k, keep, rope = _rotated_inputs(q, k, v, rope, rope_interleaved, stream, q_too)
    if tensors.is_torch(q):
        return _call_torch(
            q,
            k,
            v,
            causal,
            scale,
            return_lse,
            config,
            stream,
            alibi_slopes=alibi_slopes,
            rope=rope,
            rope_interleaved=rope_interleaved,
        )
    prepared = prepare(
        q,
        k,
        v,
        causal=causal,
        scale=scale,
        return_lse=return_lse,
        alibi_slopes=alibi_slopes,
        rope=rope,
        rope_interleaved=rope_interleaved,
        config=config,
        stream=stream,
    )
    prepared.owned = [*prepared.owned, *keep]
    return prepared()

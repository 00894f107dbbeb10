"""flash_attention_wgmma: the Hopper (sm_90a) flash forward on wgmma
(shaders/cuda/flash_attention_wgmma.cu), ablation steps (a)-(e). flash_attention
dispatches to it where it measured faster (ops/flash.py, dispatch); Prepared
builds the launch plan so GPU tests and benchmarks can call it directly."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import _core, cuda, runtime
from . import attention_front, flash, hopper_layout, tensors

HEAD_DIMS = (64, 128)
DTYPES = ("float16", "bfloat16")
# Ablation steps (docs/hopper-kernel.md) the kernel has.
STEPS = {
    1: "a: wgmma + cp.async",
    2: "b: softmax overlaps the P V wgmma",
    3: "c: (b) with TMA loads",
    4: "d: (c) warp-specialized (a producer warpgroup, setmaxnreg)",
    5: "e: (d) with ping-pong between the two consumer warpgroups",
}
ENTRY = "flash_attention_wgmma"
SOURCE = "flash_attention_wgmma.cu"
ARCH = "sm_90a"
# Tile sides the kernel has wgmma wrappers for (shaders/cuda/wgmma_operands.h):
# query rows are 64 per consumer warpgroup; key tiles are any S width there.
# 192 rows (three consumer warpgroups, 512 threads) at D=64 and steps (d)/(e)
# only: their 160 registers a thread do not hold D=128's accumulators.
BLOCK_MS = (64, 128, 192)
BLOCK_NS = (64, 128, 160, 176, 192)
THREE_WARPGROUP_HEAD_DIMS = (64,)


def refusal(config, head_dim: int, rope: int = 0) -> str | None:
    """Why spec() does not build this configuration at head_dim (with rope),
    or None where it does."""
    if config.block_m == 192 and head_dim not in THREE_WARPGROUP_HEAD_DIMS:
        return (
            f"[{ENTRY}] block_m 192 (three consumer warpgroups of 160 registers a thread) "
            f"is built for head_dim {THREE_WARPGROUP_HEAD_DIMS}, got {head_dim}"
        )
    if config.rope_tables and not rope:
        return f"[{ENTRY}] rope_tables is for calls with rope, got {config.label()}"
    if config.rope_ahead and not rope:
        return f"[{ENTRY}] rope_ahead is for calls with rope, got {config.label()}"
    if config.rope_ahead and (why := _unfit("rope_ahead's second Q buffer", config, head_dim)):
        return why
    if config.o_tma == 1 and (why := _unfit("o_tma's output tile", config, head_dim)):
        return why
    if rope and config.persistent and not rope_fits_persistent(config):
        return (
            f"[{ENTRY}] the persistent grid takes rope on 128 x 128 tiles and narrower only, "
            f"without ALiBi's key part (ptxas spilled around the rotation's call on the "
            f"others), got {config.label()}"
        )
    return None


def _unfit(what: str, config, head_dim: int) -> str | None:
    """Why `what` does not fit in shared memory beside config's tiles at
    head_dim (ALiBi's key block counted where config has it), or None."""
    smem = launch_shared_bytes(config, head_dim, alibi=config.alibi_mma)
    if smem <= SHARED_BYTES_OPTIN:
        return None
    return (
        f"[{ENTRY}] {what} does not fit beside {config.label()}'s tiles at head_dim {head_dim} "
        f"({smem} bytes of shared memory, {SHARED_BYTES_OPTIN} at most)"
    )


def builds(config, head_dim: int, rope: int = 0) -> bool:
    """Whether spec() builds this configuration at head_dim (with rope)."""
    return refusal(config, head_dim, rope) is None


def rope_fits_persistent(config) -> bool:
    """ROPE on the persistent grid: on tiles with more keys (128 x 192: 20-44
    bytes) or rows (192 x 128: 224-240), and with ALiBi's key part (causal 128
    x 128: 8-16 bytes), ptxas spilled around the call that rotates each item's
    Q in the consumers. With rope_ahead the producer's warps rotate it and the
    consumers hold no rotation code."""
    if config.rope_ahead:
        return True
    return config.block_m <= 128 and config.block_n <= 128 and not config.alibi_mma


@dataclass(frozen=True)
class HopperConfig:
    """Query rows per CTA (64 per consumer warpgroup) and keys per step."""

    block_m: int = 128
    block_n: int = 128
    step: int = 1
    # Steps (d)/(e) on a grid of at most one CTA per SM, each taking work items
    # (query blocks) in turn, the next item's loads under the last one's end.
    persistent: bool = False
    # ALiBi's key part on the tensor cores (ALIBI=2: one more k16 step of the S
    # wgmma, shaders/cuda/flash_attention_wgmma.cu alibi_key_operand) instead of
    # an FFMA per score; steps (d)/(e), calls with alibi_slopes only.
    alibi_mma: bool = False
    # ALiBi's key part as the S wgmma's start value (ALIBI=3, alibi_key_start):
    # one multiply a score written after the previous step's P is packed,
    # where ALIBI=1's FFMA sits between S and the row max; steps (d)/(e), calls
    # with alibi_slopes only.
    alibi_start: bool = False
    # One softmax exponent in exp2_poly by a polynomial on the FMA pipe
    # (shaders/cuda/exp2_poly.h), the rest on MUFU; 0: all on MUFU. Steps (b)-(e).
    exp2_poly: int = 0
    # RoPE calls: the producer copies each item's cos and sin rows into shared
    # memory with its Q tile (ROPE_TABLES), steps (d)/(e). A switch, not
    # dispatched: not faster than the rotation from global tables (H200,
    # session 12, docs/gpu-notes.md).
    rope_tables: bool = False
    # RoPE calls: Q in two buffers, and the producer warpgroup's warps 1-3
    # rotate the next item's Q in one while the consumers work on this item
    # from the other (ROPE_AHEAD): the rotation leaves the consumers' path
    # between items. Steps (d)/(e), 128 query rows, where the buffer fits.
    rope_ahead: bool = False
    # The persistent grid's last, partly filled round of items runs as parts
    # of each item's key range on more CTAs, merged by flash_split_merge.cu
    # (KEY_SPLIT, shaders/cuda/flash_key_split.h); without the causal mask,
    # ALiBi or RoPE. How many parts: key_split_plan, per problem.
    key_split: bool = False
    # The output through shared memory and a TMA store (O_TMA) instead of each
    # thread's stores; steps (d)/(e), not with key_split. 1 (True): in its own
    # tile, where that fits beside the others (refusal); 2: in the item's last
    # V stage (key tiles at least as tall as the query block).
    o_tma: int = 0
    # Each item's Q released once its last S wgmma has completed, before that
    # step's softmax (EARLY_Q), so the next item's Q load starts sooner;
    # steps (d)/(e).
    early_q: bool = False
    # The order of an item's key tiles (KEY_ORDER): None the kernel's own (with
    # ALiBi 1, nearest the diagonal first, zig-zag; else 0, ascending), 2 the
    # diagonal's tile down to the first, then up from past it, 3 the diagonal's
    # tile, then the others ascending. Any order gives the same result (the
    # online softmax takes keys in any order); the time differs
    # (bench/diag/key_order_grid.py). Not with key_split.
    key_order: int | None = None
    # ALiBi calls skip the key tiles whose every weight is exactly 0 in the
    # kernel's arithmetic (ALIBI_WINDOW, alibi_window in the kernel): a first
    # kernel (NORMS_ENTRY) writes each head's largest |q| and |k|, which bound
    # every score. Steps (d)/(e), a key order from the diagonal (not
    # key_order 0), calls with alibi_slopes only (the plain kernel is unchanged).
    alibi_window: bool = False

    def __post_init__(self):
        if self.block_m not in BLOCK_MS or self.block_n not in BLOCK_NS:
            raise ValueError(
                f"[{ENTRY}] block_m must be one of {BLOCK_MS} and block_n one of {BLOCK_NS}, "
                f"got {self.block_m} and {self.block_n}"
            )
        if self.step not in STEPS:
            raise ValueError(f"[{ENTRY}] step must be one of {list(STEPS)}, got {self.step}")
        if self.block_m == 192 and self.step < 4:
            raise ValueError(f"[{ENTRY}] block_m 192 needs step 4 or 5, got step {self.step}")
        if self.persistent and self.step < 4:
            raise ValueError(f"[{ENTRY}] persistent needs step 4 or 5, got step {self.step}")
        if self.exp2_poly < 0 or (self.exp2_poly and self.step < 2):
            raise ValueError(
                f"[{ENTRY}] exp2_poly must be 0, or n > 0 at steps 2-5, got {self.exp2_poly} "
                f"at step {self.step}"
            )
        if self.rope_tables and self.step < 4:
            raise ValueError(f"[{ENTRY}] rope_tables needs step 4 or 5, got step {self.step}")
        if self.rope_ahead and (self.step < 4 or self.block_m != 128 or self.rope_tables):
            raise ValueError(
                f"[{ENTRY}] rope_ahead needs step 4 or 5, block_m 128 and no rope_tables, got "
                f"{self.label()} at step {self.step}"
            )
        if self.alibi_mma and self.step < 4:
            raise ValueError(f"[{ENTRY}] alibi_mma needs step 4 or 5, got step {self.step}")
        if self.alibi_start and (self.step < 4 or self.alibi_mma):
            raise ValueError(
                f"[{ENTRY}] alibi_start needs step 4 or 5 and no alibi_mma, got {self.label()} "
                f"at step {self.step}"
            )
        if self.key_split and not self.persistent:
            raise ValueError(f"[{ENTRY}] key_split needs the persistent grid, got {self.label()}")
        if (self.o_tma or self.early_q) and self.step < 4:
            raise ValueError(
                f"[{ENTRY}] o_tma and early_q need step 4 or 5, got {self.label()} at step "
                f"{self.step}"
            )
        if self.o_tma and self.key_split:
            raise ValueError(f"[{ENTRY}] o_tma is built without key_split, got {self.label()}")
        if self.key_order not in (None, 0, 1, 2, 3) or (self.key_order and self.key_split):
            raise ValueError(
                f"[{ENTRY}] key_order must be None, 0, 1, 2 or 3 (not 1-3 with key_split), got "
                f"{self.key_order!r} on {self.label()}"
            )
        if self.alibi_window and (self.step < 4 or self.key_order == 0 or self.key_split):
            raise ValueError(
                f"[{ENTRY}] alibi_window needs step 4 or 5, a key order from the diagonal "
                f"(key_order None, 1, 2 or 3) and no key_split, got {self.label()}"
            )
        if self.o_tma not in (0, 1, 2) or (self.o_tma == 2 and self.block_n < self.block_m):
            raise ValueError(
                f"[{ENTRY}] o_tma must be 0, 1 or 2 (2: the output tile in a V stage, "
                f"block_n >= block_m), got {self.o_tma!r} on {self.block_m} x {self.block_n}"
            )

    @property
    def threads(self) -> int:
        # 128 threads per 64 rows; step (d) adds the producer warpgroup.
        return 2 * self.block_m + (128 if self.step >= 4 else 0)

    def shared_bytes(self, head_dim: int) -> int:
        """Dynamic shared memory: the tiles (hopper_layout), with o_tma the
        output tile (2 bytes an element), with rope_tables the item's cos and
        sin rows (4 bytes a float) and with rope_ahead Q's second buffer."""
        tables = 2 * self.block_m * (head_dim // 2) * 4 if self.rope_tables else 0
        output = self.block_m * head_dim * 2 if self.o_tma == 1 else 0
        q_second = self.block_m * head_dim * 2 if self.rope_ahead else 0
        tiles = hopper_layout.shared_bytes(head_dim, self.block_m, self.block_n)
        return tiles + output + tables + q_second

    @property
    def tma_rows(self) -> tuple:
        """Rows each TMA box moves, for q, k and v (step (c)) and, with o_tma,
        the output (a consumer warpgroup's 64 rows)."""
        return (self.block_m, self.block_n, self.block_n) + ((64,) if self.o_tma else ())

    def label(self) -> str:
        suffix = ("p" if self.persistent else "") + ("am" if self.alibi_mma else "")
        suffix += "as" if self.alibi_start else ""
        suffix += f"e{self.exp2_poly}" if self.exp2_poly else ""
        suffix += "rt" if self.rope_tables else ""
        suffix += "ra" if self.rope_ahead else ""
        suffix += "ks" if self.key_split else ""
        suffix += {0: "", 1: "ot", 2: "ov"}.get(self.o_tma, f"o{self.o_tma}")
        suffix += "eq" if self.early_q else ""
        suffix += f"k{self.key_order}" if self.key_order is not None else ""
        suffix += "aw" if self.alibi_window else ""
        return f"m{self.block_m}n{self.block_n}step{self.step}" + suffix


CONFIGS = tuple(HopperConfig(m, n) for m in (64, 128) for n in (64, 128))
# The persistent grid at the dispatch's tiles (steps (d) and (e)).
PERSISTENT_CONFIGS = (
    HopperConfig(128, 128, 4, persistent=True),
    HopperConfig(128, 128, 5, persistent=True),
    HopperConfig(128, 176, 5, persistent=True),
    HopperConfig(128, 192, 5, persistent=True),
)
# One softmax exponent in 8 or 4 on the FMA pipe (exp2_poly) at the plan's
# tiles (192 query rows: D=64 only).
EXP2_POLY_CONFIGS = (
    HopperConfig(128, 64, 3, exp2_poly=4),
    HopperConfig(128, 128, 5, persistent=True, exp2_poly=8),
    HopperConfig(128, 192, 5, persistent=True, exp2_poly=8),
    HopperConfig(128, 192, 5, persistent=True, exp2_poly=4),
    HopperConfig(192, 128, 5, persistent=True, exp2_poly=4),
)
# Three consumer warpgroups (192 query rows; D=64 only), both grids.
THREE_WARPGROUP_CONFIGS = (
    HopperConfig(192, 128, 4),
    HopperConfig(192, 128, 5),
    HopperConfig(192, 64, 5, persistent=True),
    HopperConfig(192, 128, 5, persistent=True),
)
# The key split on the plan's persistent tiles (no causal mask: its last items
# are its shortest already, longest first).
KEY_SPLIT_CONFIGS = (
    HopperConfig(128, 128, 5, persistent=True, key_split=True),
    HopperConfig(128, 192, 5, persistent=True, key_split=True),
    HopperConfig(192, 128, 5, persistent=True, key_split=True),
)
# The output through shared memory and a TMA store (o_tma) in its own tile
# where that fits (D=128: 128 x 128; D=64 also 128 x 192 and 192 x 128) or in
# the last V stage (o_tma=2: 128 x 128 up), and each item's Q released at its
# last S (early_q) on the plan's persistent tiles.
O_TMA_CONFIGS = (
    HopperConfig(128, 128, 4, o_tma=1),
    HopperConfig(128, 128, 5, persistent=True, o_tma=1),
    HopperConfig(128, 192, 5, persistent=True, o_tma=1),
    HopperConfig(192, 128, 5, persistent=True, o_tma=1),
    HopperConfig(128, 128, 5, persistent=True, o_tma=1, early_q=True),
    HopperConfig(128, 192, 5, persistent=True, o_tma=2),
    HopperConfig(128, 128, 5, persistent=True, o_tma=2),
    HopperConfig(128, 176, 4, o_tma=2),
)
EARLY_Q_CONFIGS = (
    HopperConfig(128, 128, 5, persistent=True, early_q=True),
    HopperConfig(128, 192, 5, persistent=True, early_q=True),
    HopperConfig(192, 128, 5, persistent=True, early_q=True),
)
# Key split: at most this many parts an item, each of at least
# KEY_SPLIT_MIN_TILES key tiles, and only where the model below puts the last
# round at most KEY_SPLIT_GAIN of its unsplit time.
KEY_SPLIT_MAX_PARTS = 8
KEY_SPLIT_MIN_TILES = 2
KEY_SPLIT_GAIN = 0.85
# What a part costs beyond its key tiles (its Q load, the pipeline's fill and
# drain, its scratch rows and their merge), in key tiles: a guess. On an H200
# (session 13, bench/diag/key_split_cost.py) 3 to 7 parts all timed within
# 1 % of each other; what kept the split from paying was the KEY_SPLIT
# kernel's own 1.4-1.8 % and the merge's 7-10 us, not the part count.
KEY_SPLIT_PART_TILES = 1


def last_round_items(items: int, ctas: int) -> int:
    """The items the persistent grid's last round holds when it is partly
    filled (items % ctas, or all of them on fewer items than CTAs); 0 when the
    rounds come out whole. The kernel counts them as items % gridDim.x."""
    return items % ctas if items >= ctas else items


def key_split_plan(items: int, ctas: int, key_tiles: int) -> tuple[int, int]:
    """(parts, key tiles a part) for the last round's items (last_round_items):
    the split that minimizes the model's time of that round, rounds of parts
    times a part's tiles plus KEY_SPLIT_PART_TILES; (1, key_tiles) where no
    split gains enough."""
    rest = last_round_items(items, ctas)
    if rest == 0:
        return 1, key_tiles
    best = ((key_tiles + KEY_SPLIT_PART_TILES) * KEY_SPLIT_GAIN, 1, key_tiles)
    for wanted in range(2, KEY_SPLIT_MAX_PARTS + 1):
        tiles = -(-key_tiles // wanted)
        if tiles < KEY_SPLIT_MIN_TILES:  # from here on tiles only shrink
            break
        parts = -(-key_tiles // tiles)  # the kernel's count: ceil(keys / keys a part)
        cost = -(-rest * parts // ctas) * (tiles + KEY_SPLIT_PART_TILES)
        if cost < best[0]:
            best = (cost, parts, tiles)
    return best[1], best[2]


# Tests set this to run many work items per CTA on small problems; None: one
# CTA per SM.
PERSISTENT_MAX_CTAS = None
# Every tile at every step: the ablation compares steps at one tile.
ALL_CONFIGS = tuple(HopperConfig(c.block_m, c.block_n, step) for step in STEPS for c in CONFIGS)


def spec(
    head_dim: int,
    dtype: str,
    causal: bool,
    config: HopperConfig = HopperConfig(),
    alibi: bool = False,
    rope: int = 0,
    extra: dict | None = None,
):
    """`alibi` adds ALIBI=1 and `rope` ROPE=1 (NeoX) or 2 (GPT-J), each left out
    when off, so the plain kernels keep their names and archive entries.
    `extra`: constants a diagnostic adds last (bench/diag/key_order_grid.py)."""
    why = refusal(config, head_dim, rope)
    if why is not None:
        raise ValueError(why)
    if config.key_split and (causal or alibi or rope):
        raise ValueError(
            f"[{ENTRY}] key_split is built without the causal mask, ALiBi or RoPE, got "
            f"causal={bool(causal)}, alibi={bool(alibi)}, rope={rope}"
        )
    return runtime.kernel_spec(
        ENTRY, SOURCE, constants(head_dim, dtype, causal, config, alibi, rope, extra)
    )


def constants(head_dim, dtype, causal, config, alibi=False, rope=0, extra=None) -> dict:
    """spec()'s constants, in the order that names the kernel."""
    return (
        {
            "HEAD_DIM": head_dim,
            "BLOCK_M": config.block_m,
            "BLOCK_N": config.block_n,
            "CAUSAL": bool(causal),
            "DTYPE": attention_front.dtype_code(dtype),
            "HOPPER_STEP": config.step,
        }
        | ({"PERSISTENT": 1} if config.persistent else {})
        | ({"EXP2_POLY": config.exp2_poly} if config.exp2_poly else {})
        | ({"ROPE_TABLES": 1} if config.rope_tables else {})
        | ({"ROPE_AHEAD": 1} if config.rope_ahead else {})
        | ({"KEY_SPLIT": 1} if config.key_split else {})
        | ({"O_TMA": int(config.o_tma)} if config.o_tma else {})
        | ({"EARLY_Q": 1} if config.early_q else {})
        | ({"ALIBI": 3 if config.alibi_start else 2 if config.alibi_mma else 1} if alibi else {})
        | ({"ROPE": int(rope)} if rope else {})
        | ({"KEY_ORDER": config.key_order} if config.key_order is not None else {})
        | ({"ALIBI_WINDOW": 1} if alibi and config.alibi_window else {})
        | (extra or {})
    )


# ALIBI_WINDOW's first kernel: each head's largest row norm of q and of k.
NORMS_ENTRY = "flash_attention_wgmma_norms"
NORMS_THREADS = 256


def norms_spec(head_dim: int, dtype: str, causal: bool, config: HopperConfig, rope: int = 0):
    """The norms kernel of an ALiBi window call, built with its attention
    kernel's constants: it takes that kernel's parameters (one argument block
    serves both launches)."""
    return runtime.kernel_spec(
        NORMS_ENTRY, SOURCE, constants(head_dim, dtype, causal, config, True, rope)
    )


def all_specs():
    """Every variant CI compiles for sm_90a (kept out of catalog.all_specs: the
    archive prebuild compiles that for the local GPU, which may not be sm_90)."""
    configs = dict.fromkeys(
        ALL_CONFIGS
        + plan_configs()
        + PERSISTENT_CONFIGS
        + THREE_WARPGROUP_CONFIGS
        + EXP2_POLY_CONFIGS
        + O_TMA_CONFIGS
        + EARLY_Q_CONFIGS
    )
    plain = [
        spec(d, t, c, cfg)
        for d in HEAD_DIMS
        for t in DTYPES
        for c in (False, True)
        for cfg in configs
        if builds(cfg, d)
    ]
    split = [
        spec(d, t, False, cfg)
        for d in HEAD_DIMS
        for t in DTYPES
        for cfg in KEY_SPLIT_CONFIGS
        if builds(cfg, d)
    ]
    return plain + split + variant_specs()


MERGE_ENTRY = "flash_split_merge"
MERGE_THREADS = 256
MERGE_ROWS = 16  # query rows a merge block (flash_split_merge.cu kRows)


def merge_spec(head_dim: int, dtype: str, block_m: int):
    """flash_split_merge.cu for a KEY_SPLIT kernel's tiles."""
    return runtime.kernel_spec(
        MERGE_ENTRY,
        "flash_split_merge.cu",
        {
            "HEAD_DIM": head_dim,
            "BLOCK_M": block_m,
            "DTYPE": attention_front.dtype_code(dtype),
        },
    )


def merge_specs():
    """The merge kernels of KEY_SPLIT_CONFIGS (no wgmma: kept out of all_specs,
    whose kernels the compile test checks for HGMMA)."""
    shapes = dict.fromkeys(
        (d, t, cfg.block_m)
        for d in HEAD_DIMS
        for t in DTYPES
        for cfg in KEY_SPLIT_CONFIGS
        if builds(cfg, d)
    )
    return [merge_spec(*shape) for shape in shapes]


def plan_configs():
    """The tiles flash_attention dispatches plain calls to (flash.HOPPER_PLAN)."""
    from . import flash  # imports this module

    return tuple(sorted(flash.hopper_plan_configs(), key=HopperConfig.label))


def fits_alibi_mma(config: HopperConfig, head_dim: int) -> bool:
    """ALIBI=2's key block fits in shared memory beside this tile's buffers."""
    return launch_shared_bytes(config, head_dim, alibi=True) <= SHARED_BYTES_OPTIN


def with_alibi_mma(config: HopperConfig, head_dim: int) -> HopperConfig:
    """`config` with ALiBi's key part on the tensor cores, on the widest key
    tile up to its own where the key block fits (D=128 128 x 192: 176)."""
    for block_n in sorted((n for n in BLOCK_NS if n <= config.block_n), reverse=True):
        cfg = replace(config, block_n=block_n, alibi_mma=True)
        if fits_alibi_mma(cfg, head_dim):
            return cfg
    raise ValueError(f"[{ENTRY}] no key tile fits ALiBi's key block beside {config.label()}")


def variant_specs():
    """ALIBI=1, ROPE=1 and ROPE=2 on the configurations flash_attention
    dispatches (flash.HOPPER_PLAN, step (b), the TMA fallback) and on step (a),
    whose softmax is flash_softmax.inc's; ALIBI=2 where it fits; ALIBI=3 on the
    plan's tiles that take it; ALiBi with
    RoPE on the plan's tiles: what CI compiles of the variants."""
    from . import flash  # imports this module

    configs = (
        flash.hopper_plan_configs(rope=True)
        # The plain plan's tiles too: rope_ahead took some RoPE calls off them,
        # and the GPU tests and bench/diag/rope_grid.py still run their forms.
        | flash.hopper_plan_configs()
        | {HopperConfig(step=flash.HOPPER_FALLBACK_STEP), HopperConfig(step=1)}
        | set(THREE_WARPGROUP_CONFIGS)
        # ROPE_TABLES beyond the plan's: the tiles the GPU tests run it on.
        | {replace(c, rope_tables=True) for c in THREE_WARPGROUP_CONFIGS[:2]}
        | {HopperConfig(128, 128, 5, persistent=True, rope_tables=True)}
        # rope_ahead: the GPU tests' tiles (test_rope_rotated_ahead_by_the_producer).
        | {
            HopperConfig(128, 128, 5, persistent=True, rope_ahead=True),
            HopperConfig(128, 128, 5, persistent=True, o_tma=1, rope_ahead=True),
            HopperConfig(128, 128, 4, rope_ahead=True),
            HopperConfig(128, 192, 5, persistent=True, o_tma=1, rope_ahead=True),
        }
    )
    variants = ({"alibi": True}, *({"rope": mode} for mode in flash.ROPE_MODES.values()))
    # ALIBI=2: the ALiBi calls' plan and the other configurations' tiles with
    # it, at each head dim where the key block fits.
    # The plan's ALiBi configurations without their window (window_specs adds
    # them with it): what the window's GPU tests compare against.
    plan = {replace(c, alibi_window=False) for c in flash.hopper_plan_configs(alibi=True)}
    mma = {c for c in plan if c.alibi_mma} | {
        replace(c, alibi_mma=True) for c in configs if c.step >= 4
    }
    # ALIBI=3: the causal ALiBi calls' plans (flash.hopper_config), the GPU
    # tests' small-case tile among them.
    start = {c for c in plan if c.alibi_start}
    return (
        [
            spec(d, t, c, cfg, **variant)
            for variant in variants
            for d in HEAD_DIMS
            for t in DTYPES
            for c in (False, True)
            for cfg in sorted(configs, key=HopperConfig.label)
            if builds(cfg, d, variant.get("rope", 0))
        ]
        + [
            spec(d, t, c, cfg, alibi=True)
            for d in HEAD_DIMS
            for t in DTYPES
            for c in (False, True)
            for cfg in sorted(mma | start, key=HopperConfig.label)
            if (cfg.alibi_start or fits_alibi_mma(cfg, d)) and builds(cfg, d)
        ]
        + window_specs()
        + [
            # A call with ALiBi and RoPE both: the plan's kernel for it.
            spec(d, t, c, cfg, alibi=True, rope=mode)
            for (d, c), entries in flash.HOPPER_PLAN.items()
            for cfg in dict.fromkeys(flash.hopper_config(d, c, k, True, True) for k, _ in entries)
            for t in DTYPES
            for mode in flash.ROPE_MODES.values()
        ]
    )


# ALIBI_WINDOW beyond the plan's tiles: the GPU tests' other key orders (D=128).
WINDOW_TEST_CONFIGS = (
    HopperConfig(128, 128, 4, alibi_start=True, alibi_window=True),
    HopperConfig(128, 128, 5, persistent=True, alibi_mma=True, key_order=3, alibi_window=True),
)


def window_specs() -> list:
    """ALIBI_WINDOW's kernels, each with its norms kernel: the ALiBi plan's
    configurations at steps (d)/(e) (flash.hopper_config dispatches them) and
    WINDOW_TEST_CONFIGS, both dtypes and masks."""
    plan = {
        (d, c): dict.fromkeys(
            cfg for k, _ in entries if (cfg := flash.hopper_config(d, c, k, True)).alibi_window
        )
        for (d, c), entries in flash.HOPPER_PLAN.items()
    }
    for c in (False, True):
        plan[128, c] |= dict.fromkeys(WINDOW_TEST_CONFIGS)
    return [
        made
        for (d, c), configs in plan.items()
        for cfg in configs
        for t in DTYPES
        for made in (spec(d, t, c, cfg, alibi=True), norms_spec(d, t, c, cfg))
    ]


def probe_spec(dtype: str = "bfloat16", **checks):
    """wgmma_probe.cu; `checks` adds CHECK_*/EXPECT_* constants it static_asserts."""
    return runtime.kernel_spec(
        "wgmma_probe", "wgmma_probe.cu", {"DTYPE": attention_front.dtype_code(dtype)} | checks
    )


def probe_args(a: int, b: int, v: int, s_out: int, o_out: int) -> bytes:
    return runtime.ArgPacker().ptr(a).ptr(b).ptr(v).ptr(s_out).ptr(o_out).bytes()


def alibi_keys_bytes(config: HopperConfig) -> int:
    """Static shared memory of ALIBI=2's key block (16 bytes per key and 8 more
    rows) beside the barriers' 128 bytes."""
    return (config.block_n + 8) * 16


# Shared memory one block may opt in to on sm_90 (H100, H200).
SHARED_BYTES_OPTIN = 227 * 1024


def launch_shared_bytes(config: HopperConfig, head_dim: int, alibi: bool) -> int:
    """All the shared memory a launch needs: the dynamic tiles, the barriers'
    128 static bytes and, with ALiBi on the tensor cores, the key block."""
    keys = alibi_keys_bytes(config) if alibi and config.alibi_mma else 0
    return config.shared_bytes(head_dim) + 128 + keys


class TmaLayoutError(ValueError):
    """A layout TMA cannot describe (steps (c)-(e)): flash_attention's dispatch
    falls back to a kernel that loads without TMA."""


class Prepared(flash.FusedVariants, attention_front.PreparedAttention):
    """flash_attention's contract on the wgmma kernel (same arguments and
    outputs, alibi_slopes and rope as flash_attention takes them: with rope=
    the kernel rotates q, k must come rotated)."""

    op = ENTRY
    dtypes = DTYPES
    head_dims = HEAD_DIMS

    def __init__(
        self,
        q,
        k,
        v,
        *,
        config=None,
        alibi_slopes=None,
        rope=None,
        rope_interleaved=False,
        **kwargs,
    ):
        self.config = HopperConfig() if config is None else config
        if not isinstance(self.config, HopperConfig):
            raise TypeError(f"[{ENTRY}] config must be a HopperConfig, got {self.config!r}")
        self.set_variants(alibi_slopes, rope, rope_interleaved)
        # The kernel takes slopes, cos and sin after lse only with ALIBI or ROPE,
        # the key split's scratch with KEY_SPLIT.
        self.extra_pointers = 0 if alibi_slopes is None and rope is None else 3
        if self.config.key_split:
            self.extra_pointers = 1
        # ALIBI_WINDOW: the heads' norms after cos and sin (alibi_window).
        self.window = self.config.alibi_window and alibi_slopes is not None
        if self.window:
            self.extra_pointers = 4
        self._norms = None
        self.split_parts, self.split_tiles, self.split_items = 1, 0, 0
        self._scratch = None
        super().__init__(q, k, v, **kwargs)
        if self.config.step >= 3:
            self._add_tensor_maps()

    def _add_tensor_maps(self) -> None:
        """Step (c) loads through TMA descriptors of q, k and v. They hold the
        addresses, so the launch plan encodes them at every run from its q, k
        and v pointers (one plan serves every buffer of this layout, as for the
        other kernels: the torch path caches it); the view is fixed here, at the
        offsets where the compiled kernel has its three __grid_constant__
        parameters (the driver's cuFuncGetParamInfo)."""
        dtype = attention_front.dtype_code(self.problem.dtype)
        rows = self.config.tma_rows
        layout = self.pipeline.parameter_layout(2 + len(self.slots) + len(rows))
        # Zeros where run() encodes the descriptors; the block ends with them.
        args = place_tensor_maps(self.plan.args, [bytes(128)] * len(rows), layout)
        self.map_offsets = [offset for offset, _ in layout[-len(rows) :]]
        steps = [(self.pipeline, self.grid(), self.block(), self.shared_bytes())]
        if self.window:
            p = self.problem
            norms = runtime.pipeline(
                norms_spec(p.head_dim, p.dtype, p.causal, self.config, self.rope_mode)
            )
            # One argument block for both, as the merge kernel's below.
            if norms.parameter_layout(len(layout)) != layout:
                raise RuntimeError(f"[{NORMS_ENTRY}] its parameters differ from {ENTRY}'s")
            steps.insert(0, (norms, [self.norms_floats, 1, 1], [NORMS_THREADS, 1, 1], 0))
        if self.split_parts > 1:
            p = self.problem
            merge = runtime.pipeline(merge_spec(p.head_dim, p.dtype, self.config.block_m))
            # One argument block for both: the merge kernel's parameters are this one's.
            if merge.parameter_layout(len(layout)) != layout:
                raise RuntimeError(f"[{MERGE_ENTRY}] its parameters differ from {ENTRY}'s")
            blocks = self.split_items * self.config.block_m // MERGE_ROWS
            steps.append((merge, [blocks, 1, 1], [MERGE_THREADS, 1, 1], 0))
        maps = []
        # q, k, v, then (o_tma) o: the launch's pointers 0-3 in that order.
        for index, ((shape, strides), r) in enumerate(zip(self.map_views(), rows, strict=True)):
            dims, strides_bytes, box = tensor_map_view(shape, strides, r)
            maps.append((self.map_offsets[index], index, dtype, dims, strides_bytes, box, 128))
        # Kept for tests and diagnostics (bench/diag/key_split_cost.py relaunches parts of it).
        self.steps, self.tensor_maps = steps, maps
        self.plan = _core.LaunchPlan(steps, args, self.slots, maps)

    def filled_args(self) -> bytes:
        """The argument block as run() fills it: pointer slots, and for step
        (c) the descriptors of this problem's buffers (run() encodes its own)."""
        args = bytearray(super().filled_args())
        if self.config.step >= 3:
            dtype = attention_front.dtype_code(self.problem.dtype)
            rows = self.config.tma_rows
            views = zip(
                self.map_views(), rows, self.map_offsets, self.addresses[: len(rows)], strict=True
            )
            for (shape, strides), r, offset, address in views:
                args[offset : offset + 128] = tensor_map(address, shape, strides, dtype, r)
        return bytes(args)

    def map_views(self) -> list:
        """(shape, strides) of each tensor a TMA descriptor describes: q, k, v
        and, with o_tma, the output (contiguous, as the front allocates it)."""
        views = list(self.views)
        if self.config.o_tma:
            views.append((self.o_shape, tensors.contiguous_strides(self.o_shape)))
        return views

    def check(self, infos):
        p = self.problem
        self.check_variants()
        # q, k, v as the kernel reads them (step (c) describes them to TMA).
        self.views = [(i["shape"], i["strides"]) for i in infos]
        if self.config.step >= 3:  # refuse what TMA cannot describe before allocating
            rows = self.config.tma_rows[:3]  # the output is this front's own, contiguous
            for (shape, strides), r in zip(self.views, rows, strict=True):
                dims, strides_bytes, box = tensor_map_view(shape, strides, r)
                # The driver's own checks, once, on an aligned stand-in address
                # (the launch plan encodes the real ones at every run).
                try:
                    _core.encode_tensor_map(
                        attention_front.dtype_code(p.dtype), 1 << 20, dims, strides_bytes, box, 128
                    )
                except ValueError as e:  # the encoder's argument checks ([tma] ...)
                    raise TmaLayoutError(str(e)) from e
        props = cuda.properties()
        if props["arch"] != ARCH:
            raise RuntimeError(
                f"[{ENTRY}] needs an sm_90a GPU (Hopper), this one is {props['arch']}"
            )
        if (
            p.causal
            and not self.config.persistent
            and self.query_blocks() > attention_front.GRID_YZ_MAX
        ):
            raise ValueError(
                f"[{ENTRY}] causal needs at most {attention_front.GRID_YZ_MAX} query blocks"
            )
        if not p.host:
            for name, info in zip("qkv", infos, strict=True):
                flash.check_alignment(name, info["address"], info["strides"])
        smem = launch_shared_bytes(self.config, p.head_dim, self.alibi_slopes is not None)
        if smem > props["shared_memory_per_block_optin"]:
            raise ValueError(f"[{ENTRY}] {self.config.label()} needs {smem} bytes of shared memory")
        if self.config.key_split:
            items = self.query_blocks() * p.heads * p.batch
            key_tiles = -(-p.seqlen_k // self.config.block_n)
            parts, tiles = key_split_plan(items, self.ctas(), key_tiles)
            if parts > 1:
                self.split_parts, self.split_tiles = parts, tiles
                self.split_items = last_round_items(items, self.ctas())

    @property
    def norms_floats(self) -> int:
        """ALIBI_WINDOW's norms (float32): one per (batch, head) of q, then one
        per (batch, kv head) of k; 0 without the window."""
        p = self.problem
        return p.batch * (p.heads + p.kv_heads) if self.window else 0

    @property
    def split_floats(self) -> int:
        """The key split's scratch (flash_key_split.h): each part's rows and
        each row's max and sum, float32; 0 where this problem is not split."""
        if self.split_parts == 1:
            return 0
        rows = self.split_items * self.split_parts * self.config.block_m
        return rows * (self.problem.head_dim + 2)

    def ctas(self) -> int:
        """The persistent grid's CTAs at most: one per SM (its threads take the
        whole register file)."""
        return PERSISTENT_MAX_CTAS or cuda.properties()["sm_count"]

    def spec(self):
        p = self.problem
        alibi_on = self.alibi_slopes is not None
        return spec(p.head_dim, p.dtype, p.causal, self.config, alibi_on, self.rope_mode)

    def param_fields(self) -> dict:
        if self.config.key_split:  # keys a part (0: no split), as paged decode's partitions
            return {"partition_size": self.split_tiles * self.config.block_n}
        return self.variant_fields()

    def extra_addresses(self) -> list[int]:
        if self.config.key_split:
            if not self.split_floats:
                return [0]
            # From the outputs' allocator, on the call's stream (after _allocate's o).
            self._scratch = attention_front.allocate(
                (self.split_floats,), "float32", self.q, self.stream, self.on_current
            )
            self.owned += attention_front.owned_buffers(self._scratch)
            return [self._scratch.address]
        addresses = self.variant_addresses() if self.extra_pointers else []
        if self.window:
            # From the outputs' allocator, on the call's stream; the norms
            # kernel writes every float before the attention kernel reads it.
            self._norms = attention_front.allocate(
                (self.norms_floats,), "float32", self.q, self.stream, self.on_current
            )
            self.owned += attention_front.owned_buffers(self._norms)
            addresses.append(self._norms.address)
        return addresses

    def query_blocks(self) -> int:
        return -(-self.problem.seqlen_q // self.config.block_m)

    def grid(self):
        p = self.problem
        m_blocks = self.query_blocks()
        if self.config.persistent:
            # Fewer items than SMs, split: one CTA a part, up to one per SM.
            work = m_blocks * p.heads * p.batch
            if self.split_parts > 1 and self.split_items == work:
                work *= self.split_parts
            return [max(1, min(work, self.ctas())), 1, 1]
        return [p.heads * p.batch, m_blocks, 1] if p.causal else [m_blocks, p.heads, p.batch]

    def block(self):
        return [self.config.threads, 1, 1]

    def shared_bytes(self):
        return self.config.shared_bytes(self.problem.head_dim)


def place_tensor_maps(args: bytes, maps: list[bytes], layout) -> bytes:
    """The argument block with the descriptors at the offsets of the kernel's
    last len(maps) parameters in `layout` ((offset, size) per parameter, as
    compiled). The compiler aligns them to 64 bytes of the constant bank's
    address, not of the block (sm_90a: offsets 240, 368, 496), so the offsets
    come from the kernel, never from an alignment rule here."""
    if len(layout) < len(maps) or any(size != 128 for _, size in layout[-len(maps) :]):
        raise ValueError(
            f"[{ENTRY}] the kernel's parameters {layout} do not end in {len(maps)} "
            "128-byte TMA descriptors"
        )
    block = bytearray(args)
    for data, (offset, _) in zip(maps, layout[-len(maps) :], strict=True):
        if offset < len(block) or len(data) != 128:
            raise ValueError(
                f"[{ENTRY}] descriptor at offset {offset} overlaps the {len(block)}-byte "
                f"block, or is not 128 bytes ({len(data)})"
            )
        block += bytes(offset - len(block)) + data
    return bytes(block)


def tensor_map_view(shape, strides, rows: int):
    """(dims, strides_bytes, box) of a TMA view of a [B, H, N, D] 16-bit tensor
    (strides in elements) whose loads move `rows` rows by 64 columns (one
    128-byte swizzled block), dims innermost first. Size-1 dimensions may
    report stride 0; TMA wants a multiple of 16 bytes, so they take the stride
    a contiguous layout would give them (never used)."""
    b, h, n, d = (int(x) for x in shape)
    for size, stride, name in zip((b, h, n), strides[:3], ("batch", "head", "row"), strict=True):
        if size > 1 and stride == 0:  # a broadcast (expanded) view
            raise TmaLayoutError(
                f"[{ENTRY}] step >= 3 (TMA) needs a real {name} stride, got a broadcast view "
                f"(stride 0 over {size}); pass a materialized copy"
            )
    sb, sh, sn = (int(s) * 2 for s in strides[:3])
    sn = sn if n > 1 else d * 2
    sh = sh if h > 1 else sn * n
    sb = sb if b > 1 else sh * h
    return [d, n, h, b], [sn, sh, sb], [64, rows, 1, 1]


def tensor_map(address: int, shape, strides, dtype_code: int, rows: int) -> bytes:
    """The descriptor of tensor_map_view at `address`, encoded now (the launch
    plan encodes its own at each run)."""
    dims, strides_bytes, box = tensor_map_view(shape, strides, rows)
    return _core.encode_tensor_map(dtype_code, address, dims, strides_bytes, box, 128)


class Dispatched(Prepared):
    """Prepared as flash_attention's dispatch builds it: errors name the public
    call (flash_attention), not the kernel."""

    op = "flash_attention"

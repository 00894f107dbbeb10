"""Proto 1, Hopper path (issue 11): the wgmma kernel's ablation steps (a)-(e)
and tiles, kernel only, beside the public call (what flash_attention's
dispatch runs), the mma.sync kernel's public call, cuDNN, FlashAttention 2
(SDPA's FLASH backend) and FlexAttention, in one run, with the bf16 GEMM of
the same run as the ceiling, and each variant's registers and shared memory.

Shapes follow FlashAttention's benchmark: B*N = 16K tokens, H*D = 2048, bf16;
TFLOP/s = 4*B*H*N^2*D / t, halved for causal. Every number is timed with
torch events around batches of back-to-back calls (bench.callpath), median
over batches; the headline three (public call, its relaunch, cuDNN) in turn,
round by round (twice the rounds at N = 8K, 16K), and their ratios to cuDNN
per round (_headline); at N = 8K and 16K also call by call in turn
(callpath.interleaved), where all three run at one clock: at its power limit
the H200 sets its clock by the kernel it runs, and alone cuDNN's causal kernel
ran at a 13 % higher clock than ours (session 21, bench/diag/clock_probe.py
--cudnn). The batch ratios stay the headline (each op alone, as a loop of it
runs); the one-clock ratios stand beside them. Each input tensor is 64 MB,
larger than L2.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .. import cuda, runtime
from .common import environment, run_block, skip_reason, table, write_json

TOKENS = 16384
LENGTHS = (512, 1024, 4096, 8192, 16384)
HEADS = {64: 32, 128: 16}  # H * D = 2048
FLEX_LENGTH = 8192  # Flex compiles per shape: timed at the headline N only
# (step, block_m, block_n): every step on 128 x 128 tiles, the steps that run
# on 128 x 64 tiles (the D=64 dispatch's tile below 4K keys), and step (e) on
# the wider key tiles flash.HOPPER_PLAN takes from 4K/8K keys, and three
# consumer warpgroups on 192 x 128 (D=64 only), for the tile question; a fourth
# field True: the persistent grid (HopperConfig.persistent).
VARIANTS = (
    (1, 128, 128),
    (2, 128, 128),
    (3, 128, 128),
    (4, 128, 128),
    (5, 128, 128),
    (3, 128, 64),
    (4, 128, 64),
    (5, 128, 64),
    (5, 128, 176),
    (5, 128, 192),
    (5, 128, 128, True),
    (5, 128, 192, True),
    (5, 192, 128),
    (5, 192, 128, True),
)
STEP_LETTER = {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}


def variant_key(step: int, block_m: int, block_n: int, persistent: bool = False) -> str:
    """The results' column of a variant: step_e_m128n128 (..._persistent)."""
    return f"step_{STEP_LETTER[step]}_m{block_m}n{block_n}" + ("_persistent" if persistent else "")


def variant_config(step: int, block_m: int, block_n: int, persistent: bool = False):
    from ..ops import flash_hopper

    return flash_hopper.HopperConfig(block_m, block_n, step, persistent=persistent)


def flops(b, h, n, d, causal) -> float:
    return 4 * b * h * n * n * d * (0.5 if causal else 1.0)


def _resources(d: int) -> list[dict]:
    """Registers (ptxas's entry count and the highest register the SASS uses,
    which setmaxnreg lets exceed the entry count), spills and shared memory of
    each variant at head dim d (bf16, non-causal), from an NVRTC compile."""
    from .. import sass
    from ..ops import flash_hopper

    variants = _variants(False, d)
    configs = [variant_config(*variant) for variant in variants]
    specs = [flash_hopper.spec(d, "bfloat16", False, cfg) for cfg in configs]
    # One NVRTC compile each (the archive keeps no ptxas log), all at once:
    # sequentially they took ~100 s of a 10-minute device call (session 10).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda spec: runtime.compile_for(spec, flash_hopper.ARCH), specs))
    out = []
    for variant, cfg, spec, result in zip(variants, configs, specs, results, strict=True):
        text = sass.disassemble(result.binary)
        res = sass.resources_from_log(result.log, spec.entry)
        out.append(
            {
                "head_dim": d,
                "variant": variant_key(*variant),
                "threads": cfg.threads,
                "entry_registers": res.registers,
                "sass_registers": sass.registers_named(text),
                "spill_bytes": res.spill_store_bytes + res.spill_load_bytes,
                "shared_bytes": cfg.shared_bytes(d),
            }
        )
    return out


def _variants(quick, d):
    """The variants _row times at head dim d: the five steps only in a quick
    run; 192 query rows at the head dims built for them."""
    from ..ops import flash_hopper

    return [
        v
        for v in (VARIANTS if not quick else VARIANTS[:5])
        if flash_hopper.builds(variant_config(*v), d)
    ]


def _row_specs(lengths, quick):
    """The wgmma and mma.sync kernels _row launches at these lengths."""
    from ..ops import flash, flash_hopper
    from ..ops.tuning import best_config

    specs = []
    for d in (64, 128):
        for causal in (False, True):
            specs.append(flash.spec(d, "bfloat16", causal, best_config(d, "bfloat16", causal)))
            configs = {flash.hopper_config(d, causal, n) for n in lengths}
            configs |= {variant_config(*v) for v in _variants(quick, d)}
            specs += [flash_hopper.spec(d, "bfloat16", causal, cfg) for cfg in configs]
    return specs


HEADLINE_ROUNDS, HEADLINE_BATCHES = 6, 6  # rounds: a multiple of the three
# Issue 11's lengths take twice the rounds: there the ratio sits within 1-2 %
# of 1.0 and the rounds' CV reached 9 % (session 15).
TARGET_LENGTHS, TARGET_ROUNDS = (8192, 16384), 12
HEADLINE_CYCLES = 120  # call by call at TARGET_LENGTHS (bench/diag/headline_in_turn.py's, 267ce09)


def headline_rounds(n: int) -> int:
    """Rounds of the in-turn headline at N = n."""
    return TARGET_ROUNDS if n in TARGET_LENGTHS else HEADLINE_ROUNDS


def _headline(torch, fns, fl, rounds=HEADLINE_ROUNDS, cycles=0) -> dict:
    """The public call, its plan's relaunch and cuDNN timed in turn,
    `rounds` rounds of HEADLINE_BATCHES batches each, so a drift of
    the card's clock spreads over all three (timed one after another, the
    relaunch of the causal 8K plan read 6 % below the public call in session
    14), each round starting one further along (each holds each place twice:
    in a fixed order the public call, always first, ran 1-2 % faster than its
    plan's relaunch, always second, at D=128 in session 15). TFLOP/s from
    the median over rounds, CV over the rounds, and each ratio to cuDNN as
    the median of the rounds' ratios (above 1: faster). With `cycles`, the
    three again call by call in turn (interleaved): *_over_cudnn_interleaved,
    the median of the cycles' ratios, at one clock."""
    from ..timing import summarize
    from .callpath import _in_turn, interleaved, median_ratio

    names = list(fns)
    _, per_round = _in_turn(torch, list(fns.values()), rounds, HEADLINE_BATCHES, rotate=True)
    out = {}
    for name, times in zip(names, per_round, strict=True):
        stats = summarize(times)
        out[f"{name}_tflops"] = fl / stats.median_s / 1e12
        out[f"{name}_cv"] = stats.cv
    peer = per_round[names.index("sdpa_cudnn")]
    for name in ("public", "public_kernel"):
        ours = per_round[names.index(name)]
        ratios = [c / t for t, c in zip(ours, peer, strict=True)]
        out[f"{name}_over_cudnn"] = median_ratio(peer, ours)
        out[f"{name}_over_cudnn_cv"] = summarize(ratios).cv
    if cycles:
        calls = interleaved(torch, list(fns.values()), cycles=cycles)
        peer = calls[names.index("sdpa_cudnn")]
        for name in ("public", "public_kernel"):
            out[f"{name}_over_cudnn_interleaved"] = median_ratio(peer, calls[names.index(name)])
    return out


def _row(torch, ap, d, causal, n, peers, flex, quick):
    from ..ops import flash, flash_hopper
    from ..ops.tuning import best_config
    from .callpath import _gpu_time

    b, h = max(TOKENS // n, 1), HEADS[d]
    qkv = tuple(torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
    fl = flops(b, h, n, d, causal)
    row = {"head_dim": d, "causal": causal, "seqlen": n, "batch": b, "heads": h}

    def record(name, fn, sets):
        try:
            t = _gpu_time(torch, fn, sets)
        except Exception as e:  # noqa: BLE001 - a refusal is reported, not fatal
            row[f"{name}_error"] = str(e).splitlines()[0][:120]
            return
        row[f"{name}_tflops"] = fl / t.median_s / 1e12
        row[f"{name}_cv"] = t.cv

    # The headline: the public call, the same plan relaunched (kernel only)
    # and cuDNN, timed in turn (see _headline).
    plan = flash.prepare(*qkv, causal=causal)
    row["public_kernel"] = plan.reason
    row["public_config"] = plan.config.label()
    fns = {
        "public": lambda x=qkv: ap.flash_attention(*x, causal=causal),
        "public_kernel": plan.launch,
        "sdpa_cudnn": lambda x=qkv: peers["sdpa_cudnn"](*x, causal),
    }
    try:
        cycles = HEADLINE_CYCLES if n in TARGET_LENGTHS else 0
        row.update(_headline(torch, fns, fl, headline_rounds(n), cycles))
    except Exception as e:  # noqa: BLE001 - a refusal is reported, not fatal
        row["headline_error"] = str(e).splitlines()[0][:120]
    del plan
    cfg = best_config(d, "bfloat16", causal)
    row["mma_sync_config"] = cfg.label()
    mma_sync = lambda q, k, v: ap.flash_attention(q, k, v, causal=causal, config=cfg)  # noqa: E731
    record("mma_sync", mma_sync, [qkv])
    for variant in _variants(quick, d):
        key = variant_key(*variant)
        try:
            prep = flash_hopper.Prepared(*qkv, causal=causal, config=variant_config(*variant))
        except Exception as e:  # noqa: BLE001
            row[f"{key}_error"] = str(e).splitlines()[0][:120]
            continue
        record(key, lambda p: p.launch(), [(prep,)])
        del prep
    for name, fn in peers.items():
        if name == "sdpa_cudnn":  # timed with the headline
            continue
        record(name, lambda q, k, v, fn=fn: fn(q, k, v, causal), [qkv])
    if flex is not None and n == FLEX_LENGTH:
        try:
            call = flex(*qkv, causal)
            record("flex", lambda c: c(), [(call,)])
        except Exception as e:  # noqa: BLE001 - a compile failure is reported
            row["flex_error"] = str(e).splitlines()[0][:120]
    del qkv
    return row


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED hopper benchmark: {skip_reason()}")
        return []
    from ..ops import flash_hopper

    if cuda.properties()["arch"] != flash_hopper.ARCH:
        print(f"SKIPPED hopper benchmark: the wgmma kernel needs {flash_hopper.ARCH}")
        return []
    import torch

    import attention_proto as ap

    from .callpath import FLASH_BATCHES, REPEAT, _sdpa
    from .flash import _flex, _gemm_tflops

    quick = getattr(args, "quick", False)
    gemm, gemm_stats = _gemm_tflops(torch)
    peers = {
        "sdpa_cudnn": _sdpa(torch, "CUDNN_ATTENTION"),
        "sdpa_flash": _sdpa(torch, "FLASH_ATTENTION"),
    }
    try:
        flex = _flex(torch)
    except Exception as e:  # noqa: BLE001 - Flex is optional
        print(f"Flex unavailable: {e}")
        flex = None
    lengths = (1024, 8192) if quick else LENGTHS
    # Every kernel the rows launch, compiled at once first (the timings never
    # include a compile; sequentially the compiles took minutes of the call).
    if runtime.archive_root() is not None:  # without an archive each compiles at first use
        specs = _row_specs(lengths, quick)
        print(runtime.prebuild(specs, flash_hopper.ARCH, jobs=os.cpu_count() or 1))
    rows = []
    for d in (64, 128):
        for causal in (False, True):
            for n in lengths:
                row = _row(torch, ap, d, causal, n, peers, flex, quick)
                row["gemm_tflops"] = gemm
                rows.append(row)
                print(
                    f"D={d} causal={int(causal)} N={n}: public {row.get('public_tflops', 0):.0f}"
                    f" cuDNN {row.get('sdpa_cudnn_tflops', 0):.0f} TFLOP/s,"
                    f" in turn {row.get('public_over_cudnn', 0):.3f}x"
                    f" (kernel {row.get('public_kernel_over_cudnn', 0):.3f}x)",
                    flush=True,
                )
    resources = [r for d in (64, 128) for r in _resources(d)]
    result = {
        "env": env,
        "run": run_block(
            "hopper",
            args,
            {
                "rows": {"batches": FLASH_BATCHES, "repeat": REPEAT},
                "headline_in_turn": {
                    "rounds": HEADLINE_ROUNDS,
                    "rounds_at": {str(n): TARGET_ROUNDS for n in TARGET_LENGTHS},
                    "batches": HEADLINE_BATCHES,
                    "repeat": REPEAT,
                    "order": "rotated per round",
                },
                "headline_interleaved": {"cycles": HEADLINE_CYCLES, "at": list(TARGET_LENGTHS)},
            },
        ),
        "gemm_tflops": gemm,
        "gemm_cv": gemm_stats.cv,
        "rows": rows,
        "resources": resources,
    }
    write_json(args, result)
    print()
    print(f"bf16 GEMM 8192^3: {gemm:.0f} TFLOP/s (CV {gemm_stats.cv:.3f}) on {env['gpu']}")
    cols = ["head_dim", "causal", "seqlen", "public_tflops", "public_kernel_tflops"]
    cols += ["mma_sync_tflops"] + [f"{variant_key(*v)}_tflops" for v in VARIANTS]
    cols += ["sdpa_cudnn_tflops", "sdpa_flash_tflops", "flex_tflops"]
    print(table(rows, cols))
    print(table(resources, list(resources[0])))
    # Last, the headline in turn: what issue 11 reads.
    head = ["head_dim", "causal", "seqlen", "public_config", "public_tflops"]
    head += ["public_kernel_tflops", "sdpa_cudnn_tflops", "public_over_cudnn"]
    head += ["public_kernel_over_cudnn"]
    print(table(rows, head))
    return rows

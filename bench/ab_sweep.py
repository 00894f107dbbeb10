"""Diagnostic, not a suite: one wgmma kernel option against the dispatched
plan (flash.hopper_config), kernel only (Prepared relaunch), timed in turn
(plan, variant, cuDNN, plan, ...) ROUNDS times so that a drift of the card's
clock does not read as the option's effect: the ratio is the median over the
rounds of variant / plan in each round. Run it alone on the card.

    python3 bench/ab_sweep.py FIELD [--d 128] [--rounds 5]
    # FIELD: a boolean HopperConfig field, set True on each plan where it
    # applies (session 12 timed a since-removed prefetch_q with it); a+b sets
    # both; a=2 sets an integer field to 2.
Shapes as bench hopper: B*N = 16K tokens, H*D = 2048, bf16. Writes
$OUT/ab_sweep.json."""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace

from attention_proto.bench.common import write_diagnostic
from attention_proto.ops import flash
from attention_proto.ops import flash_hopper as fh
from tile_sweep import option  # bench/ is the script's directory

LENGTHS = (1024, 4096, 8192)


def _settings(field: str) -> dict:
    """FIELD's options: a+b is both True, a=2 is a set to 2."""
    pairs = (f.partition("=") for f in field.split("+"))
    return {name: int(value) if value else True for name, _, value in pairs}


def main():
    import torch

    from attention_proto.bench.callpath import _in_turn, _sdpa

    field = sys.argv[1]
    rounds = int(option("--rounds", 5))
    dims = [int(option("--d"))] if option("--d") else [128, 64]
    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    rows = []
    for d in dims:
        for causal in (False, True):
            for n in LENGTHS:
                plan = flash.hopper_config(d, causal, n)
                try:
                    variant = replace(plan, **_settings(field))
                except ValueError as e:  # the option does not apply to this plan
                    print(f"D={d} c={int(causal)} N={n} {plan.label()}: {e}")
                    continue
                h, b = 2048 // d, 16384 // n
                qkv = [torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
                fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
                try:
                    preps = [fh.Prepared(*qkv, causal=causal, config=c) for c in (plan, variant)]
                except ValueError as e:  # spec() does not build the option on this problem
                    print(f"D={d} c={int(causal)} N={n} {variant.label()}: {e}")
                    continue
                split = getattr(preps[1], "split_parts", 1)
                fns = [lambda p=p: p.launch() for p in preps]
                fns.append(lambda x=qkv, c=causal: cudnn(*x, c))
                medians, times = _in_turn(torch, fns, rounds)
                ratio = statistics.median(v / p for p, v in zip(times[0], times[1], strict=True))
                tf = [fl / t / 1e12 for t in medians]
                row = {
                    "d": d,
                    "causal": causal,
                    "n": n,
                    "plan": plan.label(),
                    "variant": variant.label(),
                    "tflops": [round(x, 1) for x in tf],
                    "variant_over_plan_time": round(ratio, 4),
                    "key_split_parts": split,
                }
                rows.append(row)
                print(
                    f"D={d} c={int(causal)} N={n:>5} {plan.label():<16} {tf[0]:.0f}"
                    f"  {variant.label():<18} {tf[1]:.0f} ({(ratio - 1) * 100:+.1f}% time)"
                    f"  cudnn {tf[2]:.0f}" + (f"  ({split} key parts)" if split > 1 else ""),
                    flush=True,
                )
    write_diagnostic("ab_sweep", torch.cuda.get_device_name(), rows, option=field)


if __name__ == "__main__":
    main()

"""Diagnostic, not a suite: does a function's place in a round of in-turn
timing (bench.callpath._in_turn) move its time? An A/A test: the same public
call twice in a round, then its plan's relaunch and cuDNN through SDPA, in a
fixed order and then rotated (each fn in each place equally often). Two runs
of bench hopper's in-turn headline (5 fixed rounds) had the public call 1-2 %
faster than the relaunch of the same plan at D=128 on 128 x 192 tiles, the
same kernel on the same buffers; a place effect would show here as the second
copy of the public call slower than the first in the fixed order only.

    python3 bench/diag/place_effect.py [--rounds 12]
Writes $OUT/place_effect.json. Run it alone on the card."""

from __future__ import annotations

import statistics
import sys

CASES = ((8192, 128, False), (8192, 128, True), (4096, 128, True), (8192, 64, True))


def _ratios(per_round, names):
    """Each fn's time over the first fn's, per round; the median and spread."""
    base = per_round[0]
    out = {}
    for name, times in zip(names, per_round, strict=True):
        r = [t / b for t, b in zip(times, base, strict=True)]
        out[name] = {
            "median_over_first": round(statistics.median(r), 4),
            "min": round(min(r), 4),
            "max": round(max(r), 4),
        }
    return out


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import _in_turn, _sdpa
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 12
    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    names = ["public_a", "public_b", "relaunch", "cudnn"]
    rows = []
    for n, d, causal in CASES:
        h, b = 2048 // d, 16384 // n
        qkv = [torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
        plan = flash.prepare(*qkv, causal=causal)
        public = lambda x=qkv, c=causal: ap.flash_attention(*x, causal=c)  # noqa: E731
        fns = [public, public, plan.launch, lambda x=qkv, c=causal: cudnn(*x, c)]
        for rotate in (False, True):
            _, per_round = _in_turn(torch, fns, rounds, batches=6, rotate=rotate)
            row = {
                "n": n,
                "d": d,
                "causal": causal,
                "config": plan.config.label(),
                "rotate": rotate,
                "rounds": rounds,
                "over_public_a": _ratios(per_round, names),
                "ms": {
                    k: [round(t * 1e3, 4) for t in v] for k, v in zip(names, per_round, strict=True)
                },
            }
            rows.append(row)
            med = {k: v["median_over_first"] for k, v in row["over_public_a"].items()}
            print(
                f"N={n} D={d} causal={int(causal)} rotate={int(rotate)}: time over public_a "
                + ", ".join(f"{k} {v:.4f}" for k, v in med.items()),
                flush=True,
            )
        del plan
    write_diagnostic("place_effect", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

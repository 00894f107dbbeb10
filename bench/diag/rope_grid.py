"""Diagnostic, not a suite: RoPE calls' kernels, kernel only (Prepared relaunch
on k already rotated, as bench variants' rope_in_kernel), each against the
plain plan on the rotated inputs, timed in turn with the order rotated per
round (bench.callpath._in_turn). Per case: the plain plan; Q rotated by the
consumers between items (one CTA per block on the wider tiles, where their
rotation spilled on the persistent grid); Q rotated ahead by the producer's
warps 1-3 into a second buffer (rope_ahead) on the plan's tile where it fits,
and on 128 x 128 (D=64 also 128 x 192) persistent, with the plain kernel on
that tile beside it. Session 16 timed the producer's rotation without the
second buffer (wip/dropped/rope-producer, wip/results/*rope-grid-49a560c*).
Shapes as bench variants: D=128, H=32, B*N = 16K tokens, bf16; D=64 with H=32
too.

    python3 bench/diag/rope_grid.py [--rounds 6] [--head-dim 64]
Writes $OUT/rope_grid.json. Run it alone on the card."""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace

CASES = ((128, 2048, False), (128, 2048, True), (128, 8192, False), (128, 8192, True))
CASES += ((64, 8192, False), (64, 8192, True))


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import _in_turn, median_ratio
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash, flash_hopper

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from grid_rows import case_inputs

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 6
    only = int(sys.argv[sys.argv.index("--head-dim") + 1]) if "--head-dim" in sys.argv else None
    rows = []
    for d, n, causal in CASES:
        if only is not None and d != only:
            continue
        q, k, v = case_inputs(torch, d, n, causal)
        b, h = q.shape[:2]
        cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(n, d))
        rk = ap.rope(k, cos, sin)
        rq = ap.rope(q, cos, sin)
        plain = flash.hopper_config(d, causal, n)
        consumer = replace(
            plain, persistent=plain.persistent and flash_hopper.rope_fits_persistent(plain)
        )
        square = flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1)
        wide = flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=1)
        # (config, with rope): the plain plan first, the ratios' denominator.
        configs = {"plain": (plain, False), "rope_consumers": (consumer, True)}
        for name, cfg in (("plan", plain), ("128x128", square), ("128x192", wide)):
            if cfg.block_m != 128:
                continue
            ahead = replace(cfg, rope_ahead=True)
            taken = (ahead, True) in configs.values()
            if not taken and flash_hopper.builds(ahead, d, rope=1):
                if cfg != plain:
                    configs[f"plain_{name}"] = (cfg, False)
                configs[f"rope_ahead_{name}"] = (ahead, True)
        preps = {}
        for name, (cfg, with_rope) in configs.items():
            rope = (cos, sin) if with_rope else None
            qq = q if with_rope else rq
            preps[name] = flash_hopper.Prepared(qq, rk, v, causal=causal, config=cfg, rope=rope)
        names = list(preps)
        fns = [preps[x].launch for x in names]
        _, per_round = _in_turn(torch, fns, rounds, batches=6, rotate=True)
        fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
        row = {"d": d, "n": n, "causal": causal, "rounds": rounds}
        for name, times in zip(names, per_round, strict=True):
            row[f"{name}_config"] = configs[name][0].label()
            row[f"{name}_tflops"] = round(fl / statistics.median(times) / 1e12, 1)
            over = median_ratio(times, per_round[0])
            row[f"{name}_over_plain_pct"] = round((over - 1) * 100, 2)
        rows.append(row)
        print(
            f"D={d} N={n} causal={int(causal)}: "
            + ", ".join(
                f"{x} {row[f'{x}_config']} {row[f'{x}_tflops']:.0f}"
                f" ({row[f'{x}_over_plain_pct']:+.1f}%)"
                for x in names
            ),
            flush=True,
        )
        del preps
    write_diagnostic("rope_grid", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

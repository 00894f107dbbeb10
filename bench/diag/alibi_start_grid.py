"""Diagnostic, not a suite: ALiBi calls' kernels, kernel only, each over the
plain plan (timed in turn with the order rotated per round,
bench.callpath._in_turn): the key part on the tensor cores as dispatched
(alibi_mma, on the widest tile its key block fits), per score on the plan's
tile (ALIBI=1), and as the S wgmma's start value on the plan's tile
(alibi_start, ALIBI=3). The standard slopes; D=128 (H=32) and D=64 (H=32),
B*N = 16K tokens, bf16, as bench variants.

    python3 bench/diag/alibi_start_grid.py [--rounds 6] [--prebuild] [--wide]
Writes $OUT/alibi_start_grid.json. Run it alone on the card."""

from __future__ import annotations

import sys
from dataclasses import replace

CASES = ((128, 2048, False), (128, 2048, True), (128, 8192, False), (128, 8192, True))
CASES += ((64, 8192, False), (64, 8192, True))
# --from-keys 4096: the cases where D=128's plan takes 128 x 192 (4K and 8K).
WIDE = ((128, 4096, False), (128, 4096, True), (128, 8192, False), (128, 8192, True))


def kernels(d, n, causal):
    """(name, config, alibi) per kernel timed for one case."""
    from attention_proto.ops import flash

    plan = flash.hopper_config(d, causal, n)
    dispatched = flash.hopper_config(d, causal, n, alibi=True)
    rows = [("plain", plan, False), ("alibi_dispatched", dispatched, True)]
    if plan.step >= 4:
        rows.append(("alibi_per_score", plan, True))
        rows.append(("alibi_start", replace(plan, alibi_start=True), True))
    return rows


def main():
    if "--prebuild" in sys.argv:
        from grid_rows import prebuild

        from attention_proto.ops import flash_hopper

        prebuild(
            flash_hopper.spec(d, "bfloat16", causal, cfg, alibi)
            for d, n, causal in CASES + WIDE
            for _, cfg, alibi in kernels(d, n, causal)
        )
        return
    import torch
    from grid_rows import case_inputs, case_row

    from attention_proto.bench.callpath import _in_turn
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash_hopper

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 6
    rows = []
    for d, n, causal in WIDE if "--wide" in sys.argv else CASES:
        q, k, v = case_inputs(torch, d, n, causal)
        b, h = q.shape[:2]
        preps, labels = {}, {}
        for name, cfg, alibi in kernels(d, n, causal):
            extra = {"alibi_slopes": "default"} if alibi else {}
            preps[name] = flash_hopper.Prepared(q, k, v, causal=causal, config=cfg, **extra)
            labels[name] = cfg.label()
        names = list(preps)
        _, per_round = _in_turn(torch, [preps[x].launch for x in names], rounds, 6, rotate=True)
        fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
        rows.append(case_row(d, n, causal, names, per_round, labels, fl, rounds=rounds))
        del preps
    write_diagnostic("alibi_start_grid", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

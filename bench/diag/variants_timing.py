"""Diagnostic, not a suite: why bench variants' kernel-only RoPE cost
(`rope_in_kernel_pct`, +15.0 % at D=128 N=8K causal at c9757af) reads about
twice bench/diag/rope_grid.py's for the same two kernels (+8.0 %, session 16).
The same prepared problems as bench variants (flash.prepare: the plain plan
and the RoPE call's kernel) plus a second plain copy (an A/A control), timed
by bench variants' pairing (variants._paired; at 9fd3869 fixed order and 5
rounds, since f9279a0 rotated, 6 rounds, here with 2 and 15 warm-up calls) and
by bench hopper's in-turn rounds with the order rotated (callpath._in_turn).

    python3 bench/diag/variants_timing.py
Writes $OUT/variants_timing.json. Run it alone on the card."""

from __future__ import annotations

CASES = ((8192, True), (8192, False), (2048, True))


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench import variants
    from attention_proto.bench.callpath import _in_turn, median_ratio
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    d, h = variants.D, variants.H
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(8192, d))
    rows = []
    for n, causal in CASES:
        b = variants.TOKENS // n
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
        plain = flash.prepare(q, k, v, causal=causal)
        fused = flash.prepare(q, k, v, causal=causal, rope=(cos, sin))
        again = flash.prepare(q, k, v, causal=causal)
        fns = [plain.launch, fused.launch, again.launch]
        row = {"n": n, "causal": causal, "rope_kernel": fused.reason}
        # bench variants' pairing, rotated since f9279a0, with its warm-up
        # before and after session 16's change (2 calls, 3 batches).
        for warmup in (2, variants.PAIRED_WARMUP):
            _, pcts = variants._paired(fns, variants.ITERATIONS, warmup=warmup)
            row[f"paired_warmup_{warmup}"] = {"rope_pct": pcts[1], "aa_pct": pcts[2]}
        for rounds in (6, 12):
            _, per_round = _in_turn(torch, fns, rounds, batches=6, rotate=True)
            pct = [round((median_ratio(x, per_round[0]) - 1) * 100, 2) for x in per_round[1:]]
            row[f"in_turn_rotated_{rounds}"] = {"rope_pct": pct[0], "aa_pct": pct[1]}
        rows.append(row)
        print(
            f"N={n} causal={int(causal)}: "
            + ", ".join(
                f"{m} RoPE {row[m]['rope_pct']:+.1f}% A/A {row[m]['aa_pct']:+.1f}%"
                for m in row
                if m.startswith(("paired", "in_turn"))
            ),
            flush=True,
        )
        del plain, fused, again, q, k, v
    write_diagnostic("variants_timing", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

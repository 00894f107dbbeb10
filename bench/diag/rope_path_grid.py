"""Diagnostic, not a suite: which way a rope= call should rotate q. Per case,
the public calls timed call by call (callpath.interleaved, one clock):
- plain: flash_attention(q, k, v);
- fused: flash_attention(q, k, v, rope=(cos, sin)), as dispatched (k by the
  standalone pass, q inside the kernel);
- passes: rope(q), rope(k), then the plain call (the plan's own tile);
and with D=128 the same three with the standard ALiBi slopes. Each over
plain (cycle by cycle), so the fused/passes difference is what a dispatch
rule between them would gain. Shapes as bench variants: H=32, B*N = 16K
tokens, bf16, N = 1K-16K, D = 128 and 64, both masks. One FP check a case:
fused and passes agree within bf16 rounding.

    python3 bench/diag/rope_path_grid.py [--cycles 60]
Writes $OUT/rope_path_grid.json. Run it alone on the card."""

from __future__ import annotations

import sys

LENGTHS = (1024, 2048, 4096, 8192, 16384)


def _calls(ap, q, k, v, causal, cs, alibi):
    """The case's public calls by name (the rows the module docstring lists)."""
    call = ap.flash_attention
    fns = {
        "plain": lambda: call(q, k, v, causal=causal),
        "fused": lambda: call(q, k, v, causal=causal, rope=cs),
        "passes": lambda: call(ap.rope(q, *cs), ap.rope(k, *cs), v, causal=causal),
    }
    if alibi:
        a = "default"
        fns["alibi"] = lambda: call(q, k, v, causal=causal, alibi_slopes=a)
        fns["alibi_fused"] = lambda: call(q, k, v, causal=causal, alibi_slopes=a, rope=cs)
        fns["alibi_passes"] = lambda: call(
            ap.rope(q, *cs), ap.rope(k, *cs), v, causal=causal, alibi_slopes=a
        )
    return fns


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import interleaved
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from grid_rows import case_inputs, case_row

    cycles = int(sys.argv[sys.argv.index("--cycles") + 1]) if "--cycles" in sys.argv else 60
    cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(max(LENGTHS), 128))
    tables = {128: (cos, sin)}
    tables[64] = tuple(torch.from_numpy(x).cuda() for x in ap.rope_tables(max(LENGTHS), 64))
    rows = []
    for d in (128, 64):
        for causal in (False, True):
            for n in LENGTHS:
                q, k, v = case_inputs(torch, d, n, causal)
                fns = _calls(ap, q, k, v, causal, tables[d], alibi=d == 128)
                err = (fns["fused"]().float() - fns["passes"]().float()).abs().max().item()
                labels = {
                    name: flash.prepare(
                        q,
                        k,
                        v,
                        causal=causal,
                        alibi_slopes="default" if "alibi" in name else None,
                        rope=tables[d] if "fused" in name else None,
                        allocate=False,
                    ).config.label()
                    for name in fns
                }
                names = list(fns)
                times = interleaved(torch, [fns[x] for x in names], cycles=cycles)
                row = case_row(
                    d, n, causal, names, times, labels, fused_vs_passes_max_abs=err, cycles=cycles
                )
                # What the passes save over the fused call, in points of plain.
                row["passes_gain_pts"] = round(
                    row["fused_over_plain_pct"] - row["passes_over_plain_pct"], 2
                )
                if d == 128:
                    row["alibi_passes_gain_pts"] = round(
                        row["alibi_fused_over_plain_pct"] - row["alibi_passes_over_plain_pct"], 2
                    )
                rows.append(row)
                print(
                    f"   passes gain {row['passes_gain_pts']:+.1f} pts"
                    + (f", with ALiBi {row['alibi_passes_gain_pts']:+.1f} pts" if d == 128 else "")
                    + f"; fused vs passes max |diff| {err:.2e}",
                    flush=True,
                )
                del q, k, v, fns
    write_diagnostic("rope_path_grid", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

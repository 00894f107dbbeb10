"""One case's row of a kernel-only grid (bench/diag/*_grid.py): each kernel's
median time per call and its ratio to the first ("plain") kernel, taken round
by round or cycle by cycle (callpath.median_ratio), printed as one line."""

from __future__ import annotations

import statistics


def case_row(d, n, causal, names, times, labels, flops=None, **fields) -> dict:
    """`times[i]`: kernel names[i]'s seconds per call, one entry a round or
    cycle; `flops`: the case's work, for TFLOP/s columns."""
    from attention_proto.bench.callpath import median_ratio

    row = {"d": d, "n": n, "causal": causal, **fields, "configs": labels}
    for name, t in zip(names, times, strict=True):
        row[f"{name}_ms"] = round(statistics.median(t) * 1e3, 4)
        if flops:
            row[f"{name}_tflops"] = round(flops / statistics.median(t) / 1e12, 1)
        row[f"{name}_over_plain_pct"] = round((median_ratio(t, times[0]) - 1) * 100, 2)
        row[f"{name}_cv"] = round(statistics.pstdev(t) / statistics.mean(t), 4)
    print(
        f"D={d} N={n} causal={int(causal)} plain {labels[names[0]]} {row[f'{names[0]}_ms']} ms: "
        + ", ".join(f"{x} {labels[x]} {row[f'{x}_over_plain_pct']:+.1f}%" for x in names[1:]),
        flush=True,
    )
    return row


def prebuild(specs) -> None:
    """Compiles a grid's kernels (each once) for sm_90a into the archive, in
    parallel: the --prebuild step of a development call."""
    import os

    from attention_proto import runtime

    specs = list({s.name: s for s in specs}.values())
    print(runtime.prebuild(specs, "sm_90a", jobs=os.cpu_count() or 1), flush=True)

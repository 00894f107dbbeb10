"""One case's row of a kernel-only grid (bench/diag/*_grid.py): each kernel's
median time per call and its ratio to the first ("plain") kernel, taken round
by round or cycle by cycle (callpath.median_ratio), printed as one line."""

from __future__ import annotations

import statistics

# bench variants' shapes: H = 32 heads, B * N = 16K tokens.
HEADS, TOKENS = 32, 16384


def case_inputs(torch, d, n, causal, scale=1.0):
    """One case's q, k, v as every grid draws them: [16K / n, 32, n, d] bf16,
    standard normal from a generator seeded by the case (the same tensors in
    each script and run), q and k times `scale`."""
    g = torch.Generator(device="cuda").manual_seed(n + d + causal)
    q, k, v = (
        torch.randn(TOKENS // n, HEADS, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
        for _ in "qkv"
    )
    return (q * scale, k * scale, v) if scale != 1 else (q, k, v)


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

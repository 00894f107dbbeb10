"""Findings of `bench stitching` (Proto 2): monolithic vs inline vs function-table
composition of the flash loop body, at the largest N of the run.

The benchmark runs at the tuned tile of its day. When the tuning table has moved
on since, the findings say so and are capped at medium confidence: the overhead
of inlining is a property of the tile (registers), so it must be re-measured.
"""

from __future__ import annotations

from ...ops import tuning
from .base import Findings, ratio_cv


def _tuned_label(arch: str, d: int) -> str:
    m, n, s, w = tuning.TABLE.get((arch, d, False), tuning.FALLBACK[d])
    return f"m{m}n{n}s{s}w{w}"


def derive(run) -> list[dict]:
    f = Findings(run)
    rows, n_iter = run.data["rows"], run.iterations("rows")
    big = max(r["n"] for r in rows)
    at = {r["mode"]: r for r in rows if r["n"] == big}
    mono, inline, table = at["monolithic"], at["inline"], at["function_table"]
    d, tile = mono["d"], mono["config"]
    tuned = _tuned_label(run.env.get("arch", "sm_90a"), d)
    stale = tile != tuned
    note = (
        f" Measured at {tile}, which is no longer the tuned D={d} tile ({tuned}): re-run "
        f"`bench stitching`."
        if stale
        else ""
    )
    ceiling = "medium" if stale else "high"
    tags = ["stitching"] + (["stale-config"] if stale else [])
    cfg = {"n": big, "d": d, "config": tile, "tuned_config": tuned}
    cv = ratio_cv(mono["cv"], inline["cv"])
    f.add(
        "inline-overhead",
        "stitching",
        "Inline stitching overhead",
        f"Factoring the loop body into __forceinline__ pieces costs "
        f"{inline['overhead_pct']:+.1f}% against the monolithic kernel at N={big}, D={d} "
        f"({inline['registers']} vs {mono['registers']} registers, no calls left).{note}",
        tags + ["inline"],
        metric="inline_overhead_pct",
        value=inline["overhead_pct"],
        unit="%",
        cv=cv,
        n=n_iter,
        config=cfg,
        ceiling=ceiling,
    )
    cv = ratio_cv(mono["cv"], table["cv"])
    f.add(
        "function-table-overhead",
        "stitching",
        "Function-table stitching overhead",
        f"Calling the pieces through device function pointers costs "
        f"{table['overhead_pct']:+.0f}% ({table['ns_per_call']:.0f} ns per call on a warp's "
        f"path): the calls survive ({table['calls']} CALL), the tiles cross a "
        f"{table['stack_frame']}-byte stack frame and the pieces spill "
        f"{table['piece_spill_bytes']} bytes.{note}",
        tags + ["function-pointer", "spill"],
        metric="function_table_overhead_pct",
        value=table["overhead_pct"],
        unit="%",
        cv=cv,
        n=n_iter,
        config=cfg,
        ceiling=ceiling,
    )
    f.add(
        "recommendation",
        "stitching",
        "Recommendation for trait-style dispatch",
        "Compose kernel pieces at compile time (templates or specialization constants with "
        "inlined functions), never through device function pointers in a tensor-core inner "
        f"loop: the register-resident tiles must cross each call in memory, which cost "
        f"{table['overhead_pct']:.0f}% here, while inlining cost "
        f"{inline['overhead_pct']:+.1f}%.{note}",
        tags + ["recommendation"],
        metric="function_table_vs_inline_ratio",
        value=table["ms"] / inline["ms"],
        unit="x",
        cv=ratio_cv(table["cv"], inline["cv"]),
        n=n_iter,
        config=cfg,
        ceiling=ceiling,
    )
    return f.records

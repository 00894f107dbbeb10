"""Findings of `bench variants` (Proto 7): what standalone RoPE, fused ALiBi and
GQA cost next to plain attention, the peers' cost of the same bias, and how
many kernel variants each constant adds."""

from __future__ import annotations

from .base import Findings, ratio_cv


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    n_rows, n_gqa = run.iterations("rows"), run.iterations("gqa")
    rows = sorted(d["rows"], key=lambda r: (r["n"], r["causal"]))
    _rope(f, [r for r in rows if "rope_pct" in r], n_rows)
    for causal in (False, True):
        at = [r for r in rows if r["causal"] == causal]
        if at:
            _alibi(f, at, causal, n_rows)
            if all("rope_fused_pct" in r for r in at):
                _rope_fused(f, at, causal, n_rows, d.get("rope_fused_design", FIRST_DESIGN))
            if all("rope_in_kernel_pct" in r for r in at):
                _rope_in_kernel(f, at, causal, n_rows)
    if rows and all("rope_k_pct" in r and "rope_fused_pct" in r for r in rows):
        _rope_goal(f, rows, n_rows)  # runs since session 24 time rope(k) alone
    _gqa(f, d["gqa"], n_gqa)
    _constants(f, d["variant_counts"])
    return f.records


def _timed(f) -> str:
    """How the run timed its pairs (session 20 moved from batches to call by call)."""
    how = f.run.meta.get("iterations", {}).get("timing", "")
    if "interleaved" in how:
        return "timed call by call in turn (one clock), the median of per-cycle ratios"
    return "each timed in batches of its own calls, in turn"


def _tag(causal) -> str:
    return "causal" if causal else "full"


def _rope(f, rows, n) -> None:
    if not rows:
        return
    parts = [
        f"N={r['n']}: {r['rope_ms'] * 1e3:.0f} us, {r['rope_pct']:.1f}% of attention "
        f"({r['base_ms']:.3f} ms); plain torch RoPE {r['torch_rope_ms'] * 1e3:.0f} us"
        for r in rows
    ]
    worst = max(rows, key=lambda r: r["rope_pct"])
    f.add(
        "rope-standalone",
        "variants",
        "Standalone RoPE on q and k against the attention it feeds",
        f"rope(q) + rope(k) (two public calls, NeoX pairs, D=128, H=32, bf16, B*N = 16K "
        f"tokens) against non-causal flash_attention, same run: {'; '.join(parts)}.",
        ["proto7", "rope", "standalone"],
        metric="rope_pct_of_attention_max",
        value=worst["rope_pct"],
        unit="%",
        cv=ratio_cv(worst["rope_cv"], worst["base_cv"]),
        n=n,
        config={"n": [r["n"] for r in rows], "head_dim": 128, "heads": 32},
    )


def _alibi(f, rows, causal, n) -> None:
    def peers(r) -> str:
        peer = []
        if "sdpa_bias_pct" in r:
            peer.append(f"SDPA with a bias tensor {r['sdpa_bias_pct']:+.1f}%")
        if "flex_alibi_pct" in r:
            peer.append(f"Flex score_mod {r['flex_alibi_pct']:+.1f}%")
        for key, name in (("sdpa_error", "SDPA"), ("flex_error", "Flex"), ("flex_skipped", "Flex")):
            if key in r:  # a peer left out or failed: say so rather than drop it
                peer.append(f"{name}: {r[key]}")
        return f"; {', '.join(peer)}" if peer else ""

    _fused_cost(
        f,
        rows,
        causal,
        n,
        column="alibi",
        label="ALiBi",
        tag="alibi",
        call="flash_attention with alibi_slopes='default'",
        peers_note="; each peer against itself without the bias",
        ours="ours ",
        after=peers,
    )


def _fused_cost(f, rows, causal, n, *, column, label, tag, call, peers_note, ours, after):
    """A variant fused into flash_attention against the same call without it,
    per mask: the worst N is the finding's value."""

    def same_kernel(r) -> str:
        # Runs since session 8 also time both on the mma.sync kernel (config=).
        key = column + "_mma_sync"
        if key + "_pct" not in r:
            return ""
        return (
            f"; both on the mma.sync kernel {r[key + '_pct']:+.1f}% "
            f"({r['base_mma_sync_ms']:.3f} -> {r[key + '_ms']:.3f} ms)"
        )

    parts = [
        f"N={r['n']}: {ours}{r[column + '_pct']:+.1f}% ({r['base_ms']:.3f} -> "
        f"{r[column + '_ms']:.3f} ms)" + same_kernel(r) + after(r)
        for r in rows
    ]
    worst = max(rows, key=lambda r: r[column + "_pct"])
    stem = column.replace("_fused", "")
    plain = f" (the plain call: {rows[0]['base_kernel']})" if "base_kernel" in rows[0] else ""
    caveat = ""
    if stem == "alibi" and "alibi_kernel" in rows[0]:  # since the ALiBi window (session 22)
        plain += f" (the ALiBi call: {rows[0]['alibi_kernel']})"
        if "window" in rows[0]["alibi_kernel"]:
            caveat = (
                " The window's saving depends on the data (standard normal inputs here): it "
                "skips the key tiles whose every weight is exactly 0 by a bound from each "
                "head's largest |q| and |k|, read by a first pass (which leaves out the heads "
                "whose slope alone keeps every key), and inputs whose norms allow no skip pay "
                "that pass on top of the per-score cost."
            )
    f.add(
        f"{stem}-fused.{_tag(causal)}",
        "variants",
        f"{label} fused into flash_attention: its cost, {_tag(causal)} mask",
        f"{call} against the same call without{plain}, public calls, D=128, H=32, bf16, same "
        f"run, {_timed(f)}{peers_note}: {'; '.join(parts)}.{caveat}",
        ["proto7", tag, "fused", _tag(causal)],
        metric=f"{column}_overhead_pct_max",
        value=worst[column + "_pct"],
        unit="%",
        cv=ratio_cv(worst[column + "_cv"], worst["base_cv"]),
        n=n,
        config={"causal": causal, "n": [r["n"] for r in rows]},
    )


def _gqa(f, rows, n) -> None:
    for g in sorted({r["group"] for r in rows}):
        at = sorted((r for r in rows if r["group"] == g), key=lambda r: (r["n"], r["causal"]))
        parts = [
            f"N={r['n']} {_tag(r['causal'])}: {r['gqa_pct']:+.1f}% ({r['expanded_ms']:.3f} -> "
            f"{r['gqa_ms']:.3f} ms)"
            for r in at
        ]
        worst = max(at, key=lambda r: r["gqa_pct"])
        name = "MQA" if at[0]["kv_heads"] == 1 else f"GQA group {g}"
        f.add(
            f"gqa.g{g}",
            "variants",
            f"{name} in flash_attention against the same heads on expanded K/V",
            f"32 query heads on {at[0]['kv_heads']} kv heads against K/V repeated to 32 heads "
            f"(the same math), public calls, D=128, bf16, same run: {'; '.join(parts)}.",
            ["proto7", "gqa", f"g{g}"],
            metric="gqa_vs_expanded_pct_max",
            value=worst["gqa_pct"],
            unit="%",
            cv=ratio_cv(worst["gqa_cv"], worst["expanded_cv"]),
            n=n,
            config={"group": g, "kv_heads": at[0]["kv_heads"]},
        )


def _constants(f, counts) -> None:
    f.add(
        "constants",
        "variants",
        "Which variants are compile-time constants, and what each adds to the archive",
        f"ALiBi is the flash constant ALIBI: {counts['flash_alibi']} more kernels beside the "
        f"{counts['flash_defaults']} tuned defaults (one per D, dtype and mask)"
        + (
            f"; fused RoPE the constant ROPE (NeoX or GPT-J): {counts['flash_rope']} more"
            if "flash_rope" in counts
            else ""
        )
        + (
            f"; on the wgmma plan ALiBi adds {counts['hopper_alibi']} kernels beside its "
            f"{counts['hopper_defaults']} (per D, mask, key count and dtype; its window's norms "
            "kernels among them)"
            if "hopper_alibi" in counts
            else ""
        )
        + f"; standalone RoPE is "
        f"{counts['rope_standalone']} kernels (D 64/128, fp16/bf16, NeoX/GPT-J); GQA is a "
        f"runtime argument (kv heads) and adds {counts['gqa']}.",
        ["proto7", "specialization", "archive"],
        metric="alibi_variants",
        value=counts["flash_alibi"],
        unit="kernels",
        cv=0.0,  # counts
        n=1,
        config=dict(counts),
    )


# Runs before results recorded the design (session 5, 9b731d4) rotated both tiles.
FIRST_DESIGN = "Q and K tiles rotated in shared memory as they land"


def _rope_fused(f, rows, causal, n, design) -> None:
    _fused_cost(
        f,
        rows,
        causal,
        n,
        column="rope_fused",
        label="RoPE",
        tag="rope",
        call=f"flash_attention with rope=(cos, sin) ({design})",
        peers_note="",
        ours="",
        after=lambda r: (
            (f", {r['rope_path']}" if "rope_path" in r else "")
            + (f"; standalone q+k {r['rope_pct']:.1f}% of base" if "rope_pct" in r else "")
        ),
    )


def _rope_in_kernel(f, rows, causal, n) -> None:
    parts = [
        f"N={r['n']}: {r['rope_in_kernel_pct']:+.1f}% ({r['base_kernel_ms']:.3f} -> "
        f"{r['rope_kernel_ms']:.3f} ms)"
        for r in rows
    ]
    worst = max(rows, key=lambda r: r["rope_in_kernel_pct"])
    f.add(
        f"rope-in-kernel.{_tag(causal)}",
        "variants",
        f"The fused RoPE kernel's own cost (q rotated in the kernel), {_tag(causal)} mask",
        "The ROPE flash kernel on keys already rotated (as a KV cache holds them) against the "
        "plain kernel, kernel only (prepared relaunch), D=128, H=32, bf16, same run: "
        f"{'; '.join(parts)}. The public rope= call adds the standalone pass over k. "
        + (
            f"Kernel: the dispatched one ({worst['rope_kernel']})."
            if "rope_kernel" in worst
            else "Kernel: the mma.sync kernel (runs before session 11)."
        ),
        ["proto7", "rope", "fused", "kernel", _tag(causal)],
        metric="rope_in_kernel_overhead_pct_max",
        value=worst["rope_in_kernel_pct"],
        unit="%",
        cv=ratio_cv(worst["rope_kernel_cv"], worst["base_kernel_cv"]),
        n=n,
        config={"causal": causal, "n": [r["n"] for r in rows]},
    )


# Issue 13's goal for fused RoPE, as a share of the plain call.
ROPE_GOAL_PCT = 3.0


def _rope_goal(f, rows, n) -> None:
    """Fused RoPE against its goal, with its two parts timed alone in the same
    run: where the standalone pass over k alone reaches the goal, no design
    that rotates k by a pass can meet it there."""

    def case(r) -> str:
        return f"N={r['n']} {_tag(r['causal'])}"

    parts = [
        f"{case(r)}: fused {r['rope_fused_pct']:+.1f}%, rope(k) alone {r['rope_k_pct']:.1f}% "
        f"of the call ({r['rope_k_ms'] * 1e3:.0f} us), q rotated in the kernel on keys already "
        f"rotated {r['rope_in_kernel_pct']:+.1f}% (kernel only)"
        for r in rows
    ]
    met = [case(r) for r in rows if r["rope_fused_pct"] < ROPE_GOAL_PCT]
    missed = [r for r in rows if r["rope_fused_pct"] >= ROPE_GOAL_PCT]
    k_over = [case(r) for r in missed if r["rope_k_pct"] >= ROPE_GOAL_PCT]
    verdict = (
        f"The goal (fused RoPE < {ROPE_GOAL_PCT:.0f}% of the plain call) is met at "
        f"{', '.join(met) if met else 'no case'} and missed at "
        f"{', '.join(case(r) for r in missed) if missed else 'no case'}."
    )
    if k_over:
        verdict += (
            f" At {', '.join(k_over)} the pass over k alone costs at least the goal: there a "
            "fused call that rotates k by a pass cannot meet it, however q is rotated."
        )
    low = min(rows, key=lambda r: r["rope_k_pct"])
    f.add(
        "rope-goal",
        "variants",
        f"Fused RoPE against its goal (< {ROPE_GOAL_PCT:.0f}% of the plain call), and its parts",
        "flash_attention with rope=(cos, sin) against the same call without, beside rope(k) "
        "(the standalone pass the fused call runs over k) timed against the same plain call, "
        "and the ROPE kernel on keys already rotated against the plain kernel; D=128, H=32, "
        f"bf16, same run, {_timed(f)}: {'; '.join(parts)}. {verdict}",
        ["proto7", "rope", "fused", "goal"],
        metric="rope_k_pass_pct_of_call_min",
        value=low["rope_k_pct"],
        unit="%",
        cv=ratio_cv(low["rope_k_cv"], low["base_cv"]),
        n=n,
        config={"goal_pct": ROPE_GOAL_PCT, "n": sorted({r["n"] for r in rows})},
    )

"""Findings of `bench hopper` (Proto 1 on Hopper, issue 11): the wgmma
kernel's ablation per (D, mask), where the public call stands against cuDNN,
FlashAttention 2 and Flex, which tile each D wants, where the mma.sync kernel
still wins, and what each variant costs in registers and shared memory."""

from __future__ import annotations

from .base import Findings, ratio_cv

HEADLINE_N = 8192
STEPS = ("a", "b", "c", "d", "e")
STEP_TEXT = {
    "a": "(a) wgmma, cp.async loads",
    "b": "(b) + softmax overlapping the P V wgmma",
    "c": "(c) + TMA loads",
    "d": "(d) + warp specialization (producer warpgroup, setmaxnreg)",
    "e": "(e) + ping-pong of the consumer warpgroups",
}


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    rows = d.get("rows") or []
    it = run.meta.get("iterations", {}).get("rows", {})
    n = int(it.get("batches", 1)) if isinstance(it, dict) else int(it)
    gemm = d["gemm_tflops"]
    for hd in sorted({r["head_dim"] for r in rows}):
        for causal in (False, True):
            sel = sorted(
                (r for r in rows if r["head_dim"] == hd and r["causal"] == causal),
                key=lambda r: r["seqlen"],
            )
            if sel:
                _ablation(f, hd, causal, sel, gemm, n)
                _peers(f, hd, causal, sel, n)
    if rows:
        _best_tile(f, rows, n)
        _mma_sync_wins(f, rows, n)
    if d.get("resources"):
        _resources(f, d["resources"])
    return f.records


def _tag(causal) -> str:
    return "causal" if causal else "full"


def _headline(rows) -> dict:
    at = [r for r in rows if r["seqlen"] == HEADLINE_N]
    return at[0] if at else rows[-1]


def _step(r, letter, tile="m128n128"):
    return r.get(f"step_{letter}_{tile}_tflops")


def _ablation(f, hd, causal, rows, gemm, n) -> None:
    head = _headline(rows)
    steps = [s for s in STEPS if _step(head, s) is not None]
    if len(steps) < 2:
        return
    parts = []
    for s in steps:
        per_n = ", ".join(f"{_step(r, s):.0f}" if _step(r, s) is not None else "-" for r in rows)
        parts.append(
            f"{STEP_TEXT[s]}: {per_n} ({_step(head, s) / gemm:.0%} of the GEMM at "
            f"N={head['seqlen']})"
        )
    best = max(steps, key=lambda s: _step(head, s))
    gain = _step(head, best) / _step(head, "a") if "a" in steps else float("nan")
    lengths = "/".join(str(r["seqlen"]) for r in rows)
    tag = _tag(causal)
    f.add(
        f"ablation.d{hd}.{tag}",
        "hopper",
        f"What each Hopper feature is worth: the wgmma kernel's steps, D={hd} {tag}",
        f"Kernel-only TFLOP/s on 128 x 128 tiles at N = {lengths} (B*N = 16K tokens, "
        f"H*D = 2048, bf16; the same run's bf16 GEMM 8192^3: {gemm:.0f} TFLOP/s): "
        + "; ".join(parts)
        + f". At N={head['seqlen']} step ({best}) is the fastest, {gain:.2f}x step (a).",
        ["proto1", "hopper", "wgmma", "ablation", f"d{hd}", tag],
        metric="best_step_over_step_a",
        value=gain,
        unit="x",
        cv=ratio_cv(head.get(f"step_{best}_m128n128_cv"), head.get("step_a_m128n128_cv")),
        n=n,
        config={"head_dim": hd, "causal": causal, "seqlen": head["seqlen"], "steps": steps},
    )


def _peers(f, hd, causal, rows, n) -> None:
    head = _headline(rows)
    if "public_tflops" not in head or "sdpa_cudnn_tflops" not in head:
        return
    # Runs since session 15 time the three in turn and keep each ratio as the
    # median of the rounds' ratios; older runs have only the TFLOP/s.
    in_turn = "public_over_cudnn" in head
    ratio = head.get("public_over_cudnn", head["public_tflops"] / head["sdpa_cudnn_tflops"])
    kratio = head.get(
        "public_kernel_over_cudnn",
        head.get("public_kernel_tflops", float("nan")) / head["sdpa_cudnn_tflops"],
    )
    timing = (
        "timed in turn, ratios the median of the rounds' ratios"
        if in_turn
        else "timed one after another"
    )
    per_n = "; ".join(
        f"N={r['seqlen']}: public {r.get('public_tflops', float('nan')):.0f} "
        f"(kernel {r.get('public_kernel_tflops', float('nan')):.0f}), cuDNN "
        f"{r.get('sdpa_cudnn_tflops', float('nan')):.0f}, FA2 "
        f"{r.get('sdpa_flash_tflops', float('nan')):.0f}"
        + (f", Flex {r['flex_tflops']:.0f}" if "flex_tflops" in r else "")
        for r in rows
    )
    tag = _tag(causal)
    others = ", ".join(
        f"{name} {head['public_tflops'] / head[key]:.2f}x"
        for name, key in (("FA2", "sdpa_flash_tflops"), ("Flex", "flex_tflops"))
        if head.get(key)
    )
    f.add(
        f"vs-cudnn.d{hd}.{tag}",
        "hopper",
        f"flash_attention on Hopper against cuDNN, FA2 and Flex, D={hd} {tag}",
        f"TFLOP/s, same run, bf16, B*N = 16K tokens: {per_n}. At N={head['seqlen']} the "
        f"public call ({head.get('public_kernel', '?')}; {head.get('public_config', '?')}) "
        f"runs at {ratio:.3f}x cuDNN through SDPA (kernel only {kratio:.3f}x; {timing}); "
        f"against {others or 'no other peer'}."
        + (
            f" Timed call by call in turn instead (one clock: at its power limit the card "
            f"sets its clock by the kernel it runs): {head['public_over_cudnn_interleaved']:.3f}x "
            f"(kernel only {head.get('public_kernel_over_cudnn_interleaved', float('nan')):.3f}x)."
            if "public_over_cudnn_interleaved" in head
            else ""
        ),
        ["proto1", "hopper", "cudnn", "peers", f"d{hd}", tag],
        metric="public_over_cudnn",
        value=ratio,
        unit="x",
        cv=head.get("public_over_cudnn_cv")
        if in_turn
        else ratio_cv(head.get("public_cv"), head.get("sdpa_cudnn_cv")),
        n=n,
        config={"head_dim": hd, "causal": causal, "seqlen": head["seqlen"]}
        | (
            {"call_by_call_over_cudnn": head["public_over_cudnn_interleaved"]}
            if "public_over_cudnn_interleaved" in head
            else {}
        ),
    )


def _best_tile(f, rows, n) -> None:
    parts, value, cvs, config = [], [], [], {}
    for hd in sorted({r["head_dim"] for r in rows}):
        sel = [r for r in rows if r["head_dim"] == hd and r["seqlen"] == HEADLINE_N]
        cells = {}
        for r in sel:
            for key, x in r.items():
                if key.startswith("step_") and key.endswith("_tflops"):
                    cells.setdefault(key[: -len("_tflops")], []).append((x, r))
        if not cells:
            continue
        # Mean over the masks at the headline N: one tile answers both.
        mean = {k: sum(x for x, _ in v) / len(v) for k, v in cells.items() if len(v) == len(sel)}
        best = max(mean, key=mean.get)
        second = max((k for k in mean if k != best), key=mean.get, default=None)
        margin = mean[best] / mean[second] if second else float("nan")
        parts.append(
            f"D={hd}: {best} ({mean[best]:.0f} TFLOP/s, mean of full and causal), then "
            f"{second} ({mean.get(second, float('nan')):.0f})"
        )
        value.append(margin)
        cvs += [r.get(f"{best}_cv") for _, r in cells[best]]
        config[f"d{hd}"] = best
    if not parts:
        return
    f.add(
        "best-variant",
        "hopper",
        "The best wgmma variant (step and tile) per head dim",
        f"Kernel only at N={HEADLINE_N}: " + "; ".join(parts) + ".",
        ["proto1", "hopper", "tile", "wgmma"],
        metric="best_over_second",
        value=min(value),
        unit="x",
        cv=ratio_cv(*(c for c in cvs if c is not None)) if cvs else None,
        n=n,
        config=config,
    )


def _mma_sync_wins(f, rows, n) -> None:
    wins, lost, cvs = [], [], []
    for r in sorted(rows, key=lambda r: (r["head_dim"], r["causal"], r["seqlen"])):
        best_wgmma = max(
            (x for k, x in r.items() if k.startswith("step_") and k.endswith("_tflops")),
            default=None,
        )
        if best_wgmma is None or "mma_sync_tflops" not in r:
            continue
        label = f"D={r['head_dim']}{' causal' if r['causal'] else ''} N={r['seqlen']}"
        ratio = r["mma_sync_tflops"] / best_wgmma
        cvs.append(r.get("mma_sync_cv"))
        (wins if ratio > 1 else lost).append(f"{label} ({ratio:.2f}x)")
    if not (wins or lost):
        return
    f.add(
        "mma-sync-wins",
        "hopper",
        "Where the mma.sync kernel still beats every wgmma variant",
        f"The mma.sync public call against the fastest wgmma variant (kernel only): it "
        f"wins at {', '.join(wins) or 'no case'}; it loses at {', '.join(lost) or 'no case'}.",
        ["proto1", "hopper", "mma-sync", "dispatch"],
        metric="cases_mma_sync_wins",
        value=len(wins),
        unit="cases",
        cv=max((c for c in cvs if c is not None), default=None),
        n=n,
        config={"cases": len(wins) + len(lost)},
    )


def _resources(f, resources) -> None:
    parts = [
        f"D={r['head_dim']} {r['variant']}: {r['threads']} threads, {r['entry_registers']} "
        f"registers at entry, {r['sass_registers']} used, {r['spill_bytes']} B spilled, "
        f"{r['shared_bytes'] // 1024} KiB shared"
        for r in resources
    ]
    spills = sum(r["spill_bytes"] for r in resources)
    f.add(
        "resources",
        "hopper",
        "Registers and shared memory of each wgmma variant",
        "From the NVRTC compile for sm_90a (ptxas's report and the SASS; with setmaxnreg "
        "the consumer warpgroups use more registers than the entry count): "
        + "; ".join(parts)
        + ".",
        ["proto1", "hopper", "registers", "shared-memory", "sass"],
        metric="spill_bytes_total",
        value=spills,
        unit="bytes",
        cv=0.0,  # counts from compiled code
        n=len(resources),
        config={"variants": [r["variant"] for r in resources]},
        scope="cpu",
    )

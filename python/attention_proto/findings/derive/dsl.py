"""Findings of `bench dsl` (Proto 5): the Triton twin of the flash forward
against the hand-written kernels, from the compiled code (SASS via nvdisasm,
against the mma.sync kernel) and from the public calls' TFLOP/s in the same
run: against the public flash_attention call as dispatched (the Hopper wgmma
plan on sm_90a) where the run has it (since session 21), else against the
mma.sync kernel; the wgmma kernel's kernel-only steps where older runs have
them."""

from __future__ import annotations

from .base import Findings, ratio_cv

HAND, TWIN = "cuda mma.sync", "triton"


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    code = d.get("code_quality") or []
    speed = d.get("speed") or []
    it = run.meta.get("iterations", {}).get("speed", {})
    n = int(it.get("batches", 1)) if isinstance(it, dict) else int(it)
    pairs = _pairs(code)
    if pairs:
        _tensor_cores(f, pairs)
        _instruction_mix(f, pairs)
        _compile_time(f, pairs)
    if speed:
        for hd in sorted({r["head_dim"] for r in speed}):
            for causal in (False, True):
                rows = [r for r in speed if r["head_dim"] == hd and r["causal"] == causal]
                if rows:
                    _speed(f, hd, causal, rows, n)
        _recommendation(f, pairs, speed, n)
    return f.records


def _pairs(code) -> list[tuple[dict, dict]]:
    """(hand-written, twin) rows of the same (D, tile, causal)."""
    by = {(r["head_dim"], r["tile"], r["causal"], r["kernel"]): r for r in code}
    out = []
    for (hd, tile, causal, kernel), r in sorted(by.items(), key=lambda kv: str(kv[0])):
        if kernel == HAND and (hd, tile, causal, TWIN) in by:
            out.append((r, by[(hd, tile, causal, TWIN)]))
    return out


def _label(r) -> str:
    return f"D={r['head_dim']} {r['tile']}{' causal' if r['causal'] else ''}"


def _tensor_cores(f, pairs) -> None:
    text = "; ".join(
        f"{_label(h)}: ours {h['HMMA']} HMMA / {h['HGMMA']} HGMMA, Triton {t['HMMA']} HMMA / "
        f"{t['HGMMA']} HGMMA"
        for h, t in pairs
    )
    twin_wgmma = sum(t["HGMMA"] > 0 for _, t in pairs)
    f.add(
        "tensor-core-instructions",
        "dsl",
        "Which tensor-core instructions the Triton twin reaches on sm_90a",
        f"At the same tile, SASS instruction counts (nvdisasm of each kernel compiled for "
        f"sm_90a): {text}. Triton emits wgmma (HGMMA) in {twin_wgmma} of {len(pairs)} "
        f"kernels where the hand-written kernel uses mma.sync (HMMA); TMA loads (UTMALDG): "
        f"ours {sum(h['UTMALDG'] for h, _ in pairs)}, Triton "
        f"{sum(t['UTMALDG'] for _, t in pairs)}.",
        ["proto5", "triton", "wgmma", "sass"],
        metric="twin_kernels_with_wgmma",
        value=twin_wgmma,
        unit="kernels",
        cv=0.0,  # counts from compiled code
        n=len(pairs),
        config={"pairs": [_label(h) for h, _ in pairs]},
        scope="cpu",
    )


def _instruction_mix(f, pairs) -> None:
    parts = []
    for h, t in pairs:
        parts.append(
            f"{_label(h)}: instructions {h['instructions']} vs {t['instructions']}, main loop "
            f"{h['main_loop']} vs {t['main_loop']}, MUFU {h['MUFU']} vs {t['MUFU']}, spills "
            f"{h['spill_bytes']} vs {t['spill_bytes']} B, LDSM {h['LDSM']} vs {t['LDSM']}"
        )
    spill = max(t["spill_bytes"] for _, t in pairs)
    f.add(
        "instruction-mix",
        "dsl",
        "Instruction mix: the hand-written kernel against the Triton twin",
        "Ours vs Triton at the same tile (SASS, sm_90a): " + "; ".join(parts) + ".",
        ["proto5", "triton", "sass", "spills"],
        metric="twin_max_spill_bytes",
        value=spill,
        unit="bytes",
        cv=0.0,
        n=len(pairs),
        config={"pairs": [_label(h) for h, _ in pairs]},
        scope="cpu",
    )


def _compile_time(f, pairs) -> None:
    hand = [h["compile_s"] for h, _ in pairs]
    twin = [t["compile_s"] for _, t in pairs]
    ratio = (sum(twin) / len(twin)) / (sum(hand) / len(hand))
    f.add(
        "compile-time",
        "dsl",
        "Compile time: NVRTC for the hand-written kernel vs Triton",
        f"Cold compile to an sm_90a cubin, mean over {len(pairs)} kernels: NVRTC "
        f"{sum(hand) / len(hand):.2f} s, Triton {sum(twin) / len(twin):.2f} s "
        f"({ratio:.1f}x).",
        ["proto5", "triton", "compile"],
        metric="compile_time_ratio",
        value=ratio,
        unit="x",
        cv=None,  # one compile each
        n=len(pairs),
        config={"hand_s": hand, "twin_s": twin},
        scope="cpu",
        ceiling="medium",
    )


def _hand(r) -> tuple[str, str]:
    """(column, words) of the hand-written side a row's twin is held against:
    the public call as dispatched where the run timed it, else the mma.sync kernel."""
    if "cuda_public_tflops" in r:
        return (
            "cuda_public",
            f"hand-written public call ({r.get('public_kernel', 'as dispatched')})",
        )
    return "cuda_mma_sync", "hand-written mma.sync kernel"


def _speed(f, hd, causal, rows, n) -> None:
    rows = sorted(rows, key=lambda r: r["seqlen"])
    longest = rows[-1]
    names = ("triton_table", "triton_autotune", "cuda_mma_sync", "sdpa_cudnn")
    if "cuda_public_tflops" in longest:
        names = ("triton_table", "triton_autotune", "cuda_public", *names[2:])
    if not all(f"{k}_tflops" in longest for k in names):
        return
    hand, hand_words = _hand(longest)
    best_twin = max(longest["triton_table_tflops"], longest["triton_autotune_tflops"])
    ratio = best_twin / longest[f"{hand}_tflops"]
    mma = best_twin / longest["cuda_mma_sync_tflops"]
    per_n = "; ".join(
        f"N={r['seqlen']}: "
        + ", ".join(f"{k} {r.get(k + '_tflops', float('nan')):.0f}" for k in names)
        + (
            f", wgmma kernel-only {r['cuda_wgmma_kernel_tflops']:.0f}"
            if "cuda_wgmma_kernel_tflops" in r
            else ""
        )
        + "".join(
            f" (step {x} {r[f'cuda_wgmma_step_{x}_kernel_tflops']:.0f})"
            for x in ("b", "c")
            if f"cuda_wgmma_step_{x}_kernel_tflops" in r
        )
        for r in rows
    )
    tag = "causal" if causal else "full"
    f.add(
        f"speed.d{hd}.{tag}",
        "dsl",
        f"Triton twin vs hand-written flash forward, D={hd} {tag}",
        f"TFLOP/s of the public calls with torch bf16 tensors (B*N = 16K tokens, H*D = 2048), "
        f"same run, each timed in batches of its own calls: {per_n}. At N={longest['seqlen']} "
        f"the better twin runs at {ratio:.2f}x the {hand_words}"
        + (f", {mma:.2f}x the mma.sync kernel" if hand != "cuda_mma_sync" else "")
        + f" and {best_twin / longest['sdpa_cudnn_tflops']:.2f}x cuDNN; autotune chose "
        f"{longest.get('autotune_best')}.",
        ["proto5", "triton", "tflops", f"d{hd}", tag],
        metric="twin_over_hand",
        value=ratio,
        unit="x",
        cv=ratio_cv(longest["triton_autotune_cv"], longest[f"{hand}_cv"]),
        n=n,
        config={"head_dim": hd, "causal": causal, "seqlen": longest["seqlen"]},
    )


def _recommendation(f, pairs, speed, n) -> None:
    longest = {}
    for r in speed:
        key = (r["head_dim"], r["causal"])
        if key not in longest or r["seqlen"] > longest[key]["seqlen"]:
            longest[key] = r
    ok = [r for r in longest.values() if "triton_autotune_tflops" in r]
    if not ok:
        return
    hand, hand_words = _hand(ok[0])
    if any(_hand(r)[0] != hand for r in ok):  # a run times every case alike
        hand, hand_words = "cuda_mma_sync", "hand-written mma.sync kernel"
    ratios = [r["triton_autotune_tflops"] / r[f"{hand}_tflops"] for r in ok]
    mma = [r["triton_autotune_tflops"] / r["cuda_mma_sync_tflops"] for r in ok]
    cudnn = [r["triton_autotune_tflops"] / r["sdpa_cudnn_tflops"] for r in ok]
    spills = max((t["spill_bytes"] for _, t in pairs), default=0)
    twin_wgmma = any(t["HGMMA"] for _, t in pairs) and not any(h["HGMMA"] for h, _ in pairs)
    if hand == "cuda_public":
        hand_words = "public flash_attention call as dispatched"
    if min(ratios) >= 1.0:
        verdict = "for the dense flash forward the DSL is the faster route on this GPU" + (
            " (it reaches wgmma, which our mma.sync kernel does not"
            + (f", despite spilling up to {spills} B)" if spills else ")")
            if twin_wgmma and hand == "cuda_mma_sync"
            else ""
        )
    elif max(ratios) < 1.0:
        verdict = "the hand-written kernel is the faster route in all of them"
    else:
        verdict = "neither route is the faster in all of them"
    beside = (
        f" ({min(mma):.2f}-{max(mma):.2f}x our mma.sync kernel)" if hand != "cuda_mma_sync" else ""
    )
    # Shorter N, where the longest N's verdict may not hold: the cases it misses.
    ahead = [
        f"D={r['head_dim']}{' causal' if r['causal'] else ''} N={r['seqlen']} "
        f"({r['triton_autotune_tflops'] / r[f'{hand}_tflops']:.2f}x)"
        for r in speed
        if r not in ok
        and f"{hand}_tflops" in r
        and "triton_autotune_tflops" in r
        and (r["triton_autotune_tflops"] >= r[f"{hand}_tflops"]) != (min(ratios) >= 1.0)
    ]
    if ahead:
        side = "the hand-written call leads" if min(ratios) >= 1.0 else "the twin leads"
        verdict += f"; at shorter N {side} at {', '.join(ahead)}"
    f.add(
        "recommendation",
        "dsl",
        "Is a kernel DSL (Triton) viable for this library's attention kernels?",
        f"Autotuned, the Triton twin runs at {min(ratios):.2f}-{max(ratios):.2f}x our "
        f"{hand_words}{beside} and {min(cudnn):.2f}-{max(cudnn):.2f}x cuDNN at the longest N "
        f"of each (D, causal): {verdict}. Kernels whose host contract matters (paged decode "
        f"with device-side checks, specialization constants and the binary archive) stay "
        f"hand-written: the runtime controls what Triton's launcher does not expose.",
        ["proto5", "triton", "recommendation"],
        metric="twin_over_hand_min",
        value=min(ratios),
        unit="x",
        cv=max(
            (ratio_cv(r["triton_autotune_cv"], r[f"{hand}_cv"]) or 0.0 for r in ok),
            default=None,
        ),
        n=n,
        config={"cases": [[r["head_dim"], r["causal"], r["seqlen"]] for r in ok]},
    )

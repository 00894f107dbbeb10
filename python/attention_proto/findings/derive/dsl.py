"""Findings of `bench dsl` (Proto 5): the Triton twin of the flash forward
against the hand-written mma.sync kernel, from the compiled code (SASS via
nvdisasm) and from the public calls' TFLOP/s in the same run; the Hopper wgmma
kernel's kernel-only time where the run has it."""

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


def _speed(f, hd, causal, rows, n) -> None:
    rows = sorted(rows, key=lambda r: r["seqlen"])
    longest = rows[-1]
    names = ("triton_table", "triton_autotune", "cuda_mma_sync", "sdpa_cudnn")
    if not all(f"{k}_tflops" in longest for k in names):
        return
    best_twin = max(longest["triton_table_tflops"], longest["triton_autotune_tflops"])
    ratio = best_twin / longest["cuda_mma_sync_tflops"]
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
        f"same run: {per_n}. At N={longest['seqlen']} the better twin runs at {ratio:.2f}x the "
        f"hand-written mma.sync kernel and {best_twin / longest['sdpa_cudnn_tflops']:.2f}x "
        f"cuDNN; autotune chose {longest.get('autotune_best')}.",
        ["proto5", "triton", "tflops", f"d{hd}", tag],
        metric="twin_over_hand",
        value=ratio,
        unit="x",
        cv=ratio_cv(longest["triton_autotune_cv"], longest["cuda_mma_sync_cv"]),
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
    ratios = [r["triton_autotune_tflops"] / r["cuda_mma_sync_tflops"] for r in ok]
    cudnn = [r["triton_autotune_tflops"] / r["sdpa_cudnn_tflops"] for r in ok]
    spills = max((t["spill_bytes"] for _, t in pairs), default=0)
    twin_wgmma = any(t["HGMMA"] for _, t in pairs) and not any(h["HGMMA"] for h, _ in pairs)
    if min(ratios) >= 1.0:
        verdict = "for the dense flash forward the DSL is the faster route on this GPU" + (
            " (it reaches wgmma, which our hand-written kernel does not"
            + (f", despite spilling up to {spills} B)" if spills else ")")
            if twin_wgmma
            else ""
        )
    else:
        verdict = "the DSL does not yet match the hand-written kernel in every case"
    f.add(
        "recommendation",
        "dsl",
        "Is a kernel DSL (Triton) viable for this library's attention kernels?",
        f"Autotuned, the Triton twin runs at {min(ratios):.2f}-{max(ratios):.2f}x our "
        f"mma.sync flash kernel and {min(cudnn):.2f}-{max(cudnn):.2f}x cuDNN at the longest N "
        f"of each (D, causal): {verdict}. Kernels whose host contract matters (paged decode "
        f"with device-side checks, specialization constants and the binary archive) stay "
        f"hand-written: the runtime controls what Triton's launcher does not expose.",
        ["proto5", "triton", "recommendation"],
        metric="twin_over_hand_min",
        value=min(ratios),
        unit="x",
        cv=max(
            (ratio_cv(r["triton_autotune_cv"], r["cuda_mma_sync_cv"]) or 0.0 for r in ok),
            default=None,
        ),
        n=n,
        config={"cases": [[r["head_dim"], r["causal"], r["seqlen"]] for r in ok]},
    )

"""The report's pictures, drawn from the results files the findings cite.
matplotlib is optional (`pip install ".[report]"`); without it no PNG is drawn
and the caller says so. Each function draws one PNG from one run's data."""

from __future__ import annotations

from pathlib import Path

PEERS = (
    ("public", "flash_attention (public call)"),
    ("ours", "flash_attention best tile (kernel only)"),
    ("sdpa_flash", "SDPA FLASH (FA2)"),
    ("sdpa_cudnn", "SDPA cuDNN"),
    ("sdpa_efficient", "SDPA mem-efficient"),
    ("flex", "FlexAttention"),
)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _lengths(ax, xs) -> None:
    """A log2 axis labelled with the lengths measured (512, 1K, ... 64K)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x // 1024}K" if x >= 1024 else str(x) for x in xs])
    ax.minorticks_off()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    # No software/version stamp, so the same data draws the same file.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def tile_sweep(flash: dict, d: int, path: Path) -> Path:
    """TFLOP/s of every swept tile (rows) at every N (columns), both masks."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5), sharey=True)
    sweep = [s for s in flash["sweep"] if s["d"] == d]
    configs = sorted({s["config"] for s in sweep})
    lengths = sorted({s["n"] for s in sweep})
    for ax, causal in zip(axes, (False, True), strict=True):
        cell = {(s["config"], s["n"]): s["tflops"] for s in sweep if s["causal"] == causal}
        grid = [[cell.get((c, n), float("nan")) for n in lengths] for c in configs]
        im = ax.imshow(grid, aspect="auto", cmap="viridis")
        tops = [max((g[j] for g in grid if g[j] == g[j]), default=0) for j in range(len(lengths))]
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v != v:  # not swept at this N
                    continue
                ax.text(
                    j,
                    i,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 0.7 * tops[j] else "black",
                    weight="bold" if v == tops[j] else "normal",
                )
        ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
        ax.set_yticks(range(len(configs)), configs)
        ax.set_xlabel("N (B*N = 16K tokens)")
        ax.set_title(f"D={d} {'causal' if causal else 'non-causal'}: TFLOP/s (best bold)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def flash_vs_peers(flash: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for ax, (d, causal) in zip(
        axes.flat, [(64, False), (64, True), (128, False), (128, True)], strict=True
    ):
        rows = sorted(
            (r for r in flash["rows"] if r["d"] == d and r["causal"] == causal),
            key=lambda r: r["n"],
        )
        for key, name in PEERS:
            pts = [(r["n"], r[key]) for r in rows if r.get(key) == r.get(key) and key in r]
            if pts:
                style = "o-" if key != "flex" else "s--"
                ours = key in ("ours", "public")
                ax.plot(*zip(*pts, strict=True), style, label=name, lw=2.5 if ours else 1)
        ax.axhline(flash["gemm_tflops"], color="grey", ls=":", label="bf16 GEMM (same run)")
        _lengths(ax, [r["n"] for r in rows])
        ax.set_title(f"D={d} {'causal' if causal else 'non-causal'}, bf16")
        ax.set_ylabel("TFLOP/s")
        ax.set_xlabel("N")
        ax.set_ylim(bottom=0)
    axes.flat[0].legend(fontsize=8)
    return _save(fig, path)


def decode_bandwidth(paged: dict, page_sizes: dict[int, int], path: Path) -> Path:
    """TB/s of K/V read against context, paged (best page size), contiguous and
    SDPA, with the copy ceiling; `page_sizes` maps kv heads to the best size."""
    plt = _pyplot()
    kinds = sorted(page_sizes)
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(5.5 * len(kinds), 4.5), sharey=True, squeeze=False
    )
    for ax, kvh in zip(axes[0], kinds, strict=True):
        rows = [r for r in paged["rows"] if r["kv_heads"] == kvh and "tbps" in r]
        for label, keep in (
            (
                f"paged, page size {page_sizes[kvh]}",
                lambda r, kvh=kvh: r["path"] == "paged" and r["page_size"] == page_sizes[kvh],
            ),
            ("contiguous (same kernel)", lambda r: r["path"] == "contiguous"),
            ("SDPA cuDNN", lambda r: r["path"] == "sdpa_cudnn"),
            ("SDPA FLASH", lambda r: r["path"] == "sdpa_flash"),
        ):
            pts = sorted((r["context"], r["tbps"]) for r in rows if keep(r))
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", label=label)
        ax.axhline(
            paged["copy_ceiling_tbps"], color="grey", ls=":", label="copy ceiling (read+write)"
        )
        _lengths(ax, sorted({r["context"] for r in rows}))
        ax.set_xlabel("context (keys per sequence; B*context = 256K)")
        ax.set_title(f"decode, 32 query heads / {kvh} kv heads, D=128")
    # Decode only reads, so it can pass a copy's read+write rate: show all of it.
    top = max([r["tbps"] for r in paged["rows"] if "tbps" in r] + [paged["copy_ceiling_tbps"]])
    axes[0][0].set_ylim(0, top * 1.05)
    axes[0][0].set_ylabel("K/V TB/s")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def linear_crossover(linear: dict, path: Path) -> Path:
    """Milliseconds against T: linear attention (best chunk) and its peers, one
    panel per head dim; where the linear curve passes under softmax's is the
    crossover."""
    plt = _pyplot()
    dims = sorted({r["d"] for r in linear["rows"]})
    fig, axes = plt.subplots(1, len(dims), figsize=(5.5 * len(dims), 4.5), squeeze=False)
    for ax, d in zip(axes[0], dims, strict=True):
        rows = sorted((r for r in linear["rows"] if r["d"] == d), key=lambda r: r["t"])
        for key, label in (
            ("best_ms", "linear_attention (best chunk)"),
            ("fla_ms", "fla chunk_linear_attn"),
            ("flash_ms", "flash_attention causal"),
            ("sdpa_cudnn_ms", "SDPA cuDNN causal"),
        ):
            pts = [(r["t"], r[key]) for r in rows if key in r and r[key] == r[key]]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), "o-", label=label, lw=2.5 if key == "best_ms" else 1
                )
        _lengths(ax, [r["t"] for r in rows])
        ax.set_yscale("log")
        ax.set_xlabel("T (B*T = 32K tokens, H = 16)")
        ax.set_title(f"D={d}, bf16")
    axes[0][0].set_ylabel("ms per call")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def compile_vs_archive(
    specialization: list[tuple[str, dict]], foundation: dict | None, path: Path
) -> Path:
    """Left: seconds to compile 1-500 distinct variants cold, serial and on every
    core, against loading as many from the archive. Right: per kernel of the
    package, cold compile against archive read + load."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for host, data in specialization:
        for workers in sorted({r["workers"] for r in data["cold"]}):
            pts = sorted(
                (r["variants"], r["total_s"]) for r in data["cold"] if r["workers"] == workers
            )
            left.plot(
                *zip(*pts, strict=True),
                "o-",
                label=f"compile, {workers} thread{'s' if workers > 1 else ''} ({host})",
            )
        load = data["archive"].get("load_ms_per_kernel")
        if load:
            xs = [1, 500]
            left.plot(
                xs,
                [x * load / 1e3 for x in xs],
                "k--",
                label=f"archive load, {load:.2f} ms each ({host})",
            )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("distinct flash variants")
    left.set_ylabel("seconds")
    left.set_title("cold compile vs archive load")
    left.legend(fontsize=7)
    if foundation and "archive_total_load_ms" in foundation:
        ms = sorted(r["compile_ms"] for r in foundation["compile"])
        right.plot(range(len(ms)), ms, ".", label="cold compile, each shipped kernel")
        right.axhline(
            foundation["archive_total_load_ms"],
            color="k",
            ls="--",
            label=f"archive read + load, mean {foundation['archive_total_load_ms']:.2f} ms",
        )
        right.set_yscale("log")
        right.set_xlabel("kernel (sorted by compile time)")
        right.set_ylabel("ms")
        right.set_title(f"{len(ms)} kernels: {foundation['load_speedup']:.0f}x")
        right.legend(fontsize=8)
    else:
        right.set_axis_off()
    return _save(fig, path)

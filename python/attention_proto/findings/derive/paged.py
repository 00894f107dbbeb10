"""Findings of `bench paged` (Proto 3): decode bandwidth per page size, paging
cost against contiguous K/V, the peers, the split and the GQA score paths.
MHA and GQA are separate questions (different kernels since the mma path)."""

from __future__ import annotations

from .base import Findings, ratio_cv

MIN_CONTEXT = 4096  # below it launch overhead, not bandwidth, decides


def _heads(d) -> int:
    for r in d["smem"]:
        return r["group"] * r["kv_heads"]
    return 32


def _kind(heads, kvh) -> tuple[str, str]:
    return ("mha", "MHA") if kvh == heads else (f"gqa-{heads}-{kvh}", f"GQA {heads}/{kvh}")


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    n_rows = run.iterations("rows")
    ceiling, heads = d["copy_ceiling_tbps"], _heads(d)
    long = [r for r in d["rows"] if r["context"] >= MIN_CONTEXT and "tbps" in r]
    for kvh in sorted({r["kv_heads"] for r in long}):
        key, kind = _kind(heads, kvh)
        pg = [r for r in long if r["path"] == "paged" and r["kv_heads"] == kvh]
        by_ps: dict[int, list[dict]] = {}
        for r in pg:
            by_ps.setdefault(r["page_size"], []).append(r)
        mean = {ps: sum(r["tbps"] for r in rs) / len(rs) for ps, rs in by_ps.items()}
        best = max(sorted(mean), key=lambda ps: mean[ps])
        at = sorted(by_ps[best], key=lambda r: r["context"])
        cv = max(r["cv"] for r in at)
        ctx = f"contexts {at[0]['context']}-{at[-1]['context']}"
        cfg = {"kv_heads": kvh, "heads": heads, "page_size": best}
        cfg["contexts"] = [r["context"] for r in at]
        f.add(
            f"best-page-size.{key}",
            "paged",
            f"Best page size for decode, {kind}",
            f"{kind}, D=128, bf16, {ctx}, {_what(at)}: page size {best} reads K/V fastest, "
            f"{min(r['tbps'] for r in at):.2f}-{max(r['tbps'] for r in at):.2f} TB/s (mean "
            f"{mean[best]:.2f}; {mean[best] / ceiling * 100:.0f}% of the {ceiling:.2f} TB/s "
            f"read+write copy ceiling). Means by page size: "
            + ", ".join(f"{ps}: {mean[ps]:.2f}" for ps in sorted(mean))
            + ".",
            ["page-size", "bandwidth", key],
            metric="decode_tbps_mean",
            value=mean[best],
            unit="TB/s",
            cv=cv,
            n=n_rows,
            config=cfg,
        )
        over = [r["overhead_pct"] for r in at]
        # Kernel against kernel: the paged rows' kernel CV (runs that timed the
        # public call keep it apart) with the contiguous row's.
        over_cv = max(
            (
                ratio_cv(r.get("kernel_cv", r["cv"]), c["cv"])
                for r in at
                for c in long
                if (c["path"], c["context"], c["kv_heads"]) == ("contiguous", r["context"], kvh)
            ),
            default=cv,
        )
        f.add(
            f"paging-overhead.{key}",
            "paged",
            f"Paging overhead against contiguous K/V, {kind}",
            f"At page size {best} the page-table walk costs {min(over):+.1f}% to "
            f"{max(over):+.1f}% against the same kernel reading contiguous K/V ({ctx}).",
            ["overhead", "paging", key],
            metric="paging_overhead_pct_max",
            value=max(over),
            unit="%",
            cv=over_cv,
            n=n_rows,
            config=cfg,
        )
        for peer in ("sdpa_cudnn", "sdpa_flash"):
            pairs = []
            for r in at:
                p = [
                    x
                    for x in long
                    if (x["path"], x["context"], x["kv_heads"]) == (peer, r["context"], kvh)
                ]
                if p:
                    pairs.append((r["tbps"] / p[0]["tbps"], ratio_cv(r["cv"], p[0]["cv"])))
            if not pairs:
                continue
            ratios = [x for x, _ in pairs]
            f.add(
                f"vs-{peer.replace('_', '-')}.{key}",
                "paged",
                f"Paged decode vs {peer}, {kind}",
                f"{kind}, page size {best}, {ctx}, {_what(at)}: {min(ratios):.2f}x to "
                f"{max(ratios):.2f}x the "
                f"K/V bandwidth of {peer} decoding the same data laid out contiguously.",
                ["peer", peer, key],
                metric=f"ratio_{peer}_min",
                value=min(ratios),
                unit="x",
                cv=max(c for _, c in pairs),
                n=n_rows,
                config=cfg,
            )
    _shared_memory(f, d)
    _split(f, d, run.iterations("split"))
    if d.get("score_paths"):
        _score_paths(f, d, heads, run.iterations("score_paths"))
    return f.records


def _shared_memory(f, d) -> None:
    rows = d["smem"]
    f.add(
        "shared-memory-map",
        "paged",
        "Shared-memory map of the partition kernel",
        "Shared memory (static + dynamic) per phase-1 CTA by (group, page size): "
        + ", ".join(
            f"group {r['group']} {r.get('scores', 'lanes')} ps {r['page_size']}: {r['smem']} B"
            for r in rows
        )
        + "; page size does not change it.",
        ["shared-memory", "registers"],
        metric="max_smem_bytes",
        value=max(r["smem"] for r in rows),
        unit="B",
        cv=0.0,  # read from the compiled kernels: exact
        n=len(rows),
        config={"head_dim": 128},
    )


def _split(f, d, n) -> None:
    """Per (kv heads, context): is one partition per sequence or a split faster?"""
    cases: dict[tuple, list[dict]] = {}
    for r in d["split"]:
        cases.setdefault((r["kv_heads"], r["context"]), []).append(r)
    text, gains = [], []
    for (kvh, ctx), rs in sorted(cases.items()):
        one = next(r for r in rs if r["partitions"] == 1)
        best = min(rs, key=lambda r: r["us"])
        gains.append((one["us"] / best["us"], ratio_cv(one["cv"], best["cv"]), kvh, ctx))
        text.append(f"kvh {kvh} ctx {ctx} B={best['batch']}: {best['partitions']} partition(s)")
    top = max(gains)
    if top[0] > 1.0:
        verdict = f"The split pays most at kvh {top[2]} ctx {top[3]}: {top[0]:.2f}x over one."
    else:
        verdict = "One partition per sequence was fastest in every case measured."
    f.add(
        "split-kv",
        "paged",
        "Where the two-phase split pays",
        "Fastest of one partition vs 512- and 256-key partitions: "
        + "; ".join(text)
        + ". "
        + verdict,
        ["split-kv", "partition"],
        metric="split_speedup_max",
        value=top[0],
        unit="x",
        cv=top[1],
        n=n,
        config={"kv_heads": top[2], "context": top[3], "contexts": sorted({c for _, c in cases})},
    )


def _score_paths(f, d, heads, n) -> None:
    rows = sorted(d["score_paths"], key=lambda r: (r["kv_heads"], r["context"]))
    sp = [r["speedup"] for r in rows]
    kvh = rows[0]["kv_heads"]
    f.add(
        "gqa-mma-vs-lanes",
        "paged",
        "GQA decode: tensor-core scores vs per-key lane reductions",
        f"Page size 16, GQA {heads}/{kvh}: scoring the head group as the rows of mma.sync "
        f"m16n8k16 runs {min(sp):.2f}x to {max(sp):.2f}x faster than one lane group per key "
        f"with shuffle reductions ({min(r['mma_tbps'] for r in rows):.2f}-"
        f"{max(r['mma_tbps'] for r in rows):.2f} TB/s vs {min(r['lanes_tbps'] for r in rows):.2f}-"
        f"{max(r['lanes_tbps'] for r in rows):.2f} TB/s, contexts {rows[0]['context']}-"
        f"{rows[-1]['context']}).",
        ["gqa", "tensor-cores", "decode"],
        metric="gqa_mma_speedup_min",
        value=min(sp),
        unit="x",
        cv=max(ratio_cv(r["mma_cv"], r["lanes_cv"]) for r in rows),
        n=n,
        config={"page_size": 16, "kv_heads": kvh, "heads": heads},
    )


def _what(rows) -> str:
    """What the paged rows timed: the public call (with the kernel alone beside
    it) since the suite measured it, the prepared relaunch before."""
    if all("kernel_us" in r for r in rows):
        return "the public call with torch tensors"
    return "the prepared relaunch (kernel only)"

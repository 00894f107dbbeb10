"""Proto 3: PagedAttention V2 decode bandwidth, paging overhead and peers.

KV of 256K tokens in total (B = 256K / context), H = 32 query heads, D = 128,
bf16, MHA (32 kv heads) and GQA 32/8. Achieved bandwidth = bytes of K and V
read / time. In the same run: the device's copy ceiling (bytes read + written by
a 2 GiB device-to-device copy), the same kernel on contiguous K/V (no page
table), and torch SDPA decode (cuDNN and FLASH backends) on the contiguous data.
"""

from __future__ import annotations

import functools

from .. import cuda, findings
from ..ops import paged
from ..timing import time_callable
from .common import environment, evidence, table, write_json

SOURCE = "python -m attention_proto.bench paged"
TOTAL_TOKENS = 256 * 1024
H, D = 32, 128


def _copy_ceiling(torch):
    a = torch.empty(2**30, device="cuda", dtype=torch.float16)
    b = torch.empty_like(a)
    s = time_callable(lambda: b.copy_(a), warmup=3, iterations=20)
    return 2 * a.numel() * 2 / s.median_s / 1e12, s


def _pages(torch, k, page_size, seed):
    """[B, KVH, N, D] -> pages [B*N/ps, KVH, ps, D] scattered by a random permutation."""
    b, kvh, n, d = k.shape
    per = n // page_size
    pages = (
        k.view(b, kvh, per, page_size, d).permute(0, 2, 1, 3, 4).reshape(b * per, kvh, page_size, d)
    )
    g = torch.Generator(device="cpu").manual_seed(seed)
    perm = torch.randperm(b * per, generator=g).cuda()
    out = torch.empty_like(pages)
    out[perm] = pages
    return out, perm.view(b, per).to(torch.int32)


def _sdpa(torch, backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    f = torch.nn.functional.scaled_dot_product_attention
    be = getattr(SDPBackend, backend)

    def run(q, k, v):
        with sdpa_kernel([be]):
            return f(q, k, v, enable_gqa=True)

    return run


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED paged benchmark: no CUDA device ({cuda.unavailable_reason()})")
        return []
    import torch

    quick = getattr(args, "quick", False)
    contexts = [4096, 32768] if quick else [1024, 4096, 8192, 16384, 32768, 65536]
    page_sizes = [16, 32] if quick else list(paged.PAGE_SIZES)
    kv_heads = [8] if quick else [8, 32]
    iters = 30
    ceiling, ceiling_stats = _copy_ceiling(torch)
    peers = {
        "sdpa_cudnn": _sdpa(torch, "CUDNN_ATTENTION"),
        "sdpa_flash": _sdpa(torch, "FLASH_ATTENTION"),
    }
    rows, smem_rows, split_rows, path_rows = [], [], [], []
    for kvh in kv_heads:
        for ctx in contexts:
            b = TOTAL_TOKENS // ctx
            q = torch.randn(b, H, D, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(b, kvh, ctx, D, device="cuda", dtype=torch.bfloat16)
            v = torch.randn(b, kvh, ctx, D, device="cuda", dtype=torch.bfloat16)
            lens = torch.full((b,), ctx, device="cuda", dtype=torch.int32)
            kv_bytes = 2 * k.numel() * 2
            base = {"kv_heads": kvh, "context": ctx, "batch": b}
            cont = paged.Prepared(q, k, v, None, lens, contiguous=True)
            t_cont = time_callable(cont.launch, warmup=5, iterations=iters)
            row = dict(
                base,
                path="contiguous",
                page_size="-",
                us=t_cont.median_s * 1e6,
                tbps=kv_bytes / t_cont.median_s / 1e12,
                cv=t_cont.cv,
            )
            rows.append(row)
            for ps in page_sizes:
                kp, page_table = _pages(torch, k, ps, seed=ps)
                vp, _ = _pages(torch, v, ps, seed=ps)
                prep = paged.Prepared(q, kp, vp, page_table, lens)
                t = time_callable(prep.launch, warmup=5, iterations=iters)
                rows.append(
                    dict(
                        base,
                        path="paged",
                        page_size=ps,
                        us=t.median_s * 1e6,
                        tbps=kv_bytes / t.median_s / 1e12,
                        cv=t.cv,
                        overhead_pct=(t.median_s / t_cont.median_s - 1) * 100,
                        partitions=prep.partitions,
                    )
                )
                if ps == 16 and H // kvh > 1:
                    # The two GQA score paths on the same pages: tensor cores (the
                    # default) against per-key lane reductions (paged_attention.cu).
                    lanes = paged.Prepared(q, kp, vp, page_table, lens, scores="lanes")
                    t_l = time_callable(lanes.launch, warmup=5, iterations=iters)
                    path_rows.append(
                        dict(
                            base,
                            mma_tbps=kv_bytes / t.median_s / 1e12,
                            mma_cv=t.cv,
                            lanes_tbps=kv_bytes / t_l.median_s / 1e12,
                            lanes_cv=t_l.cv,
                            speedup=t_l.median_s / t.median_s,
                        )
                    )
                if ctx == contexts[0]:
                    smem_rows.append(
                        {
                            "kv_heads": kvh,
                            "page_size": ps,
                            "group": H // kvh,
                            "scores": prep.scores,
                            "smem": prep.shared_bytes(),
                            "regs": prep.phase1.registers,
                        }
                    )
                del kp, vp, page_table
            qs = q.view(b, H, 1, D)
            for name, fn in peers.items():
                try:
                    t = time_callable(functools.partial(fn, qs, k, v), warmup=5, iterations=iters)
                    rows.append(
                        dict(
                            base,
                            path=name,
                            page_size="-",
                            us=t.median_s * 1e6,
                            tbps=kv_bytes / t.median_s / 1e12,
                            cv=t.cv,
                        )
                    )
                except RuntimeError as e:
                    rows.append(dict(base, path=name, page_size="-", error=str(e)[:100]))
            if ctx <= 8192:  # does the split pay? one partition vs 512-key partitions
                for part in (ctx, 512, 256):
                    prep = paged.Prepared(q, k, v, None, lens, contiguous=True, partition_size=part)
                    t = time_callable(prep.launch, warmup=5, iterations=iters)
                    split_rows.append(
                        dict(
                            base,
                            partition_size=part,
                            partitions=prep.partitions,
                            us=t.median_s * 1e6,
                            cv=t.cv,
                            tbps=kv_bytes / t.median_s / 1e12,
                        )
                    )
            del q, k, v
    result = {
        "env": env,
        "copy_ceiling_tbps": ceiling,
        "copy_cv": ceiling_stats.cv,
        "rows": rows,
        "smem": smem_rows,
        "split": split_rows,
        "score_paths": path_rows,
    }
    write_json(args.out, "paged", result)
    if args.findings:
        _emit(args.findings, env, ceiling, rows, smem_rows, split_rows, path_rows)
    print(
        f"copy ceiling {ceiling:.2f} TB/s (read+write, CV {ceiling_stats.cv:.3f}) on {env['gpu']}"
    )
    print(table(smem_rows, ["kv_heads", "group", "scores", "page_size", "smem", "regs"]))
    print(
        table(
            path_rows,
            ["kv_heads", "context", "mma_tbps", "mma_cv", "lanes_tbps", "lanes_cv", "speedup"],
        )
    )
    print(
        table(
            split_rows,
            ["kv_heads", "context", "batch", "partition_size", "partitions", "us", "tbps", "cv"],
        )
    )
    print(
        table(
            rows,
            [
                "kv_heads",
                "context",
                "batch",
                "path",
                "page_size",
                "us",
                "tbps",
                "cv",
                "overhead_pct",
                "partitions",
            ],
        )
    )
    return rows


def _emit(path, env, ceiling, rows, smem_rows, split_rows, path_rows=()):
    def ev(metric, value, unit, cv, config):
        return evidence(env, metric, value, unit, cv, 30, config)

    pg = [r for r in rows if r["path"] == "paged" and r["context"] >= 4096]
    by_ps = {}
    for r in pg:
        by_ps.setdefault(r["page_size"], []).append(r["tbps"])
    best_ps = max(by_ps, key=lambda p: sum(by_ps[p]) / len(by_ps[p]))
    mean_best = sum(by_ps[best_ps]) / len(by_ps[best_ps])
    cv = max(r["cv"] for r in pg)
    findings.emit_finding(
        findings.Finding(
            "paged",
            "Best page size for decode",
            f"Averaged over contexts >= 4K, page size {best_ps} reads K/V fastest: "
            f"{mean_best:.2f} TB/s (copy ceiling {ceiling:.2f} TB/s read+write).",
            ["page-size", "bandwidth"],
            findings.confidence_for(cv),
            SOURCE,
            ev("best_page_size_tbps", mean_best, "TB/s", cv, {"page_size": best_ps}),
        ),
        path,
    )
    findings.emit_finding(
        findings.Finding(
            "paged",
            "Shared-memory map of the partition kernel",
            "Shared memory (static + dynamic) per phase-1 CTA by (group, page size): "
            + ", ".join(
                f"group {r['group']} {r.get('scores', 'lanes')} ps {r['page_size']}: {r['smem']} B"
                for r in smem_rows
            )
            + "; page size does not change it (lanes: merge buffers scale with group and head "
            "dim; mma: 16 Q rows + each warp's K/V ring, reused for the merge).",
            ["shared-memory"],
            "high",
            SOURCE,
            ev(
                "max_smem_bytes",
                max(r["smem"] for r in smem_rows),
                "B",
                None,
                {"head_dim": D},
            ),
        ),
        path,
    )
    over = [r["overhead_pct"] for r in pg if r["page_size"] == best_ps]
    findings.emit_finding(
        findings.Finding(
            "paged",
            "Paging overhead against contiguous K/V",
            f"At page size {best_ps} the page-table walk costs {min(over):+.1f}% to "
            f"{max(over):+.1f}% against the same kernel reading contiguous K/V (contexts >= 4K).",
            ["overhead", "paging"],
            findings.confidence_for(cv),
            SOURCE,
            ev("paging_overhead_pct_max", max(over), "%", cv, {"page_size": best_ps}),
        ),
        path,
    )
    if split_rows:
        best_split = {}
        for r in split_rows:
            key = (r["kv_heads"], r["context"])
            if key not in best_split or r["us"] < best_split[key]["us"]:
                best_split[key] = r
        text = "; ".join(
            f"kvh {k[0]} ctx {k[1]}: {r['partitions']} partition(s) fastest ({r['us']:.0f} us)"
            for k, r in best_split.items()
        )
        findings.emit_finding(
            findings.Finding(
                "paged",
                "Where the two-phase split pays",
                "One partition vs 512- and 256-key partitions: " + text + ".",
                ["split-kv", "partition"],
                "medium",
                SOURCE,
                ev("split_rows", len(split_rows), "rows", None, {}),
            ),
            path,
        )
    if path_rows:
        sp = [r["speedup"] for r in path_rows]
        pcv = max(max(r["mma_cv"], r["lanes_cv"]) for r in path_rows)
        findings.emit_finding(
            findings.Finding(
                "paged",
                "GQA decode: tensor-core scores vs per-key lane reductions",
                f"Page size 16, GQA {H}/{path_rows[0]['kv_heads']}: scoring the head group as "
                f"the rows of mma.sync m16n8k16 runs {min(sp):.2f}x to {max(sp):.2f}x faster "
                f"than one lane group per key with shuffle reductions "
                f"({min(r['mma_tbps'] for r in path_rows):.2f}-"
                f"{max(r['mma_tbps'] for r in path_rows):.2f} TB/s vs "
                f"{min(r['lanes_tbps'] for r in path_rows):.2f}-"
                f"{max(r['lanes_tbps'] for r in path_rows):.2f} TB/s over contexts "
                f"{path_rows[0]['context']}-{path_rows[-1]['context']}).",
                ["gqa", "tensor-cores", "decode"],
                findings.confidence_for(pcv),
                SOURCE,
                ev("gqa_mma_speedup_min", min(sp), "x", pcv, {"page_size": 16}),
            ),
            path,
        )
    for peer in ("sdpa_cudnn", "sdpa_flash"):
        for kvh in sorted({r["kv_heads"] for r in pg}):
            ratios = []
            for r in pg:
                if r["page_size"] != best_ps or r["kv_heads"] != kvh:
                    continue
                p = [
                    x
                    for x in rows
                    if x["path"] == peer
                    and x["context"] == r["context"]
                    and x["kv_heads"] == kvh
                    and "tbps" in x
                ]
                if p:
                    ratios.append(r["tbps"] / p[0]["tbps"])
            if not ratios:
                continue
            kind = "MHA" if kvh == H else f"GQA {H}/{kvh}"
            findings.emit_finding(
                findings.Finding(
                    "paged",
                    f"Paged decode vs {peer}, {kind}",
                    f"{kind}, page size {best_ps}, contexts >= 4K: {min(ratios):.2f}x to "
                    f"{max(ratios):.2f}x the K/V bandwidth of {peer} on contiguous data.",
                    ["peer", peer],
                    findings.confidence_for(cv),
                    SOURCE,
                    ev(
                        f"ratio_{peer}_min",
                        min(ratios),
                        "x",
                        cv,
                        {"page_size": best_ps, "kv_heads": kvh},
                    ),
                ),
                path,
            )

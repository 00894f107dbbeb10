"""Proto 3: PagedAttention V2 decode bandwidth, paging overhead and peers.

KV of 256K tokens in total (B = 256K / context), H = 32 query heads, D = 128,
bf16, MHA (32 kv heads) and GQA 32/8. Achieved bandwidth = bytes of K and V
read / time. In the same run: the device's copy ceiling (bytes read + written by
a 2 GiB device-to-device copy), the same kernel on contiguous K/V (no page
table), and torch SDPA decode (cuDNN and FLASH backends) on the contiguous data.
"""

from __future__ import annotations

import functools

from .. import cuda
from ..ops import paged
from ..timing import time_callable
from .common import environment, run_block, skip_reason, table, write_json

TOTAL_TOKENS = 256 * 1024
H, D = 32, 128
ITERATIONS, COPY_ITERATIONS = 30, 20


def _copy_ceiling(torch):
    a = torch.empty(2**30, device="cuda", dtype=torch.float16)
    b = torch.empty_like(a)
    s = time_callable(lambda: b.copy_(a), warmup=3, iterations=COPY_ITERATIONS)
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
        print(f"SKIPPED paged benchmark: {skip_reason()}")
        return []
    import torch

    import attention_proto as ap

    quick = getattr(args, "quick", False)
    contexts = [4096, 32768] if quick else [1024, 4096, 8192, 16384, 32768, 65536]
    page_sizes = [16, 32] if quick else list(paged.PAGE_SIZES)
    kv_heads = [8] if quick else [8, 32]
    iters = ITERATIONS
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
                # The headline: the public call with torch tensors, timed like the
                # peers; the prepared relaunch (kernel only) beside it, and the
                # paging cost kernel against kernel.
                pub = time_callable(
                    functools.partial(ap.paged_attention, q, kp, vp, page_table, lens),
                    warmup=5,
                    iterations=iters,
                )
                rows.append(
                    dict(
                        base,
                        path="paged",
                        page_size=ps,
                        us=pub.median_s * 1e6,
                        tbps=kv_bytes / pub.median_s / 1e12,
                        cv=pub.cv,
                        kernel_us=t.median_s * 1e6,
                        kernel_tbps=kv_bytes / t.median_s / 1e12,
                        kernel_cv=t.cv,
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
    iterations = {"rows": iters, "split": iters, "score_paths": iters, "copy": COPY_ITERATIONS}
    result = {
        "run": run_block("paged", args, iterations),
        "env": env,
        "copy_ceiling_tbps": ceiling,
        "copy_cv": ceiling_stats.cv,
        "rows": rows,
        "smem": smem_rows,
        "split": split_rows,
        "score_paths": path_rows,
    }
    write_json(args, result)
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
                "kernel_tbps",
                "overhead_pct",
                "partitions",
            ],
        )
    )
    return rows

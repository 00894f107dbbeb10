"""Proto 6 benchmark: chunked linear attention (linear_attention) at every
chunk size against causal softmax attention, in one run: from which sequence
length does it win, and which chunk size is best?

Shapes: T = 1K..64K at B*T = 32K tokens (B = 1 from 32K on, so 64K holds 64K
tokens), H = 16, D = 64 and 128, bf16. Per chunk size C: the public call
`attention_proto.linear_attention` with torch tensors (the headline, timed
like the peers), the prepared two-kernel plan relaunched (kernel only) and the
two kernels (chunk_h, chunk_o) alone.
FLOPs count the dense chunked algorithm: per token 2*D*D (K^T V) + 2*D*D
(Q . state) + 4*C*D (Q K^T and P V over full C x C blocks), so TFLOP/s is
comparable across C. Bytes: q, k, v read once, o written once, and the
[chunks, D, D] 16-bit states written by chunk_h and read by chunk_o; % of the
copy ceiling divides that traffic rate by a device-to-device copy's (read +
write) rate in the same run. Peers, same inputs: flash-linear-attention's
chunk_linear_attn(normalize=False, scale=1) when `fla` imports (else skipped
with the reason), our causal flash_attention (tuned tile) and SDPA cuDNN
causal. The crossover is the first T from which the best chunk size is faster
than a softmax peer and stays faster at every longer T.
"""

from __future__ import annotations

from .. import cuda
from ..ops import linear, linear_front
from ..timing import summarize, time_callable
from .common import environment, run_block, skip_reason, table, write_json

TOKENS = 32 * 1024
HEADS = 16
LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
COPY_BYTES = 1 << 30


def flops(b, h, t, d, chunk) -> float:
    return b * h * t * (4 * d * d + 4 * chunk * d)


def bytes_moved(b, h, t, d, chunk) -> float:
    chunks = -(-t // chunk)
    return 2 * (4 * b * h * t * d + 2 * b * h * chunks * d * d)


def _copy_bandwidth(torch):
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    s = time_callable(lambda: dst.copy_(src), warmup=3, iterations=20)
    return 2 * COPY_BYTES / s.median_s, s


def _fla(torch):
    """flash-linear-attention's chunk kernel, or (None, why not)."""
    try:
        from fla.ops.linear_attn import chunk_linear_attn
    except Exception as e:  # noqa: BLE001 - any import failure is a skip reason
        return None, f"fla not importable: {type(e).__name__}: {str(e).splitlines()[0][:100]}"

    def run(q, k, v):
        # fla's layout is [B, T, H, D] (head_first=False).
        qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))
        return lambda: chunk_linear_attn(qt, kt, vt, scale=1.0, normalize=False)

    return run, None


def _kernel_seconds(prep, iters):
    """GPU seconds of each kernel of the plan alone, by the runtime's events."""
    args = prep.filled_args()
    return [
        summarize(pipe.benchmark(grid, block, smem, args, 5, iters))
        for pipe, grid, block, smem in prep.steps
    ]


def _peer(row, name, fn, fl, iters):
    try:
        s = time_callable(fn, warmup=3, iterations=iters)
        row[name + "_ms"] = s.median_s * 1e3
        row[name + "_tflops"] = fl / s.median_s / 1e12
        row[name + "_cv"] = s.cv
    except Exception as e:  # noqa: BLE001 - a peer refusing a shape is a result
        row[name + "_ms"] = float("nan")
        row[name + "_error"] = str(e).splitlines()[0][:120]


def crossover(rows, peer) -> int | None:
    """The first T from which linear (best chunk) beats `peer` at every longer T."""
    out = None
    for r in sorted(rows, key=lambda r: r["t"], reverse=True):
        p = r.get(peer + "_ms")
        if p is None or p != p or r["best_ms"] >= p:
            break
        out = r["t"]
    return out


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED linear benchmark: {skip_reason()}")
        return []
    import torch

    import attention_proto as ap

    quick = getattr(args, "quick", False)
    lengths = [2048, 16384] if quick else LENGTHS
    iters = 10 if quick else 30
    copy_bw, copy_stats = _copy_bandwidth(torch)
    fla, fla_skip = _fla(torch)
    if fla_skip:
        print(f"SKIPPED peer fla: {fla_skip}")
    f = torch.nn.functional.scaled_dot_product_attention
    from torch.nn.attention import SDPBackend, sdpa_kernel

    rows, sweep = [], []
    for d in linear_front.HEAD_DIMS:
        for t in lengths:
            b = max(1, TOKENS // t)
            q, k, v = (
                torch.randn(b, HEADS, t, d, device="cuda", dtype=torch.bfloat16) * 0.1
                for _ in range(3)
            )
            row = {"d": d, "t": t, "b": b, "h": HEADS}
            best = None
            for c in linear_front.CHUNK_SIZES:
                prep = linear.Prepared(q, k, v, chunk_size=c)
                total = time_callable(
                    lambda c=c, q=q, k=k, v=v: ap.linear_attention(q, k, v, chunk_size=c),
                    warmup=3,
                    iterations=iters,
                )
                kernel = time_callable(prep.launch, warmup=3, iterations=iters)
                h_s, o_s = _kernel_seconds(prep, iters)
                fl, by = flops(b, HEADS, t, d, c), bytes_moved(b, HEADS, t, d, c)
                entry = {
                    "d": d,
                    "t": t,
                    "chunk": c,
                    "ms": total.median_s * 1e3,
                    "cv": total.cv,
                    "kernel_ms": kernel.median_s * 1e3,
                    "kernel_cv": kernel.cv,
                    "chunk_h_ms": h_s.median_s * 1e3,
                    "chunk_o_ms": o_s.median_s * 1e3,
                    "tflops": fl / total.median_s / 1e12,
                    "bytes": by,
                    "copy_fraction": by / total.median_s / copy_bw,
                    "registers": [p.registers for p, *_ in prep.steps],
                    "local_bytes": [p.local_bytes for p, *_ in prep.steps],
                    "smem": [s for *_, s in prep.steps],
                }
                sweep.append(entry)
                if best is None or entry["ms"] < best["ms"]:
                    best = entry
                del prep
            row.update(best_chunk=best["chunk"], best_ms=best["ms"], best_cv=best["cv"])
            row["best_tflops"] = best["tflops"]
            row["best_kernel_ms"] = best["kernel_ms"]
            row["best_copy_fraction"] = best["copy_fraction"]
            softmax_fl = 2 * b * HEADS * t * t * d  # causal: half of 4*B*H*T^2*D
            _peer(
                row,
                "flash",
                lambda q=q, k=k, v=v: ap.flash_attention(q, k, v, causal=True),
                softmax_fl,
                iters,
            )

            def cudnn(q=q, k=k, v=v):
                with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                    return f(q, k, v, is_causal=True)

            _peer(row, "sdpa_cudnn", cudnn, softmax_fl, iters)
            if fla is not None:
                _peer(row, "fla", fla(q, k, v), flops(b, HEADS, t, d, 64), iters)
            rows.append(row)
            print(
                f"D={d} T={t}: linear {row['best_ms']:.3f} ms (C={row['best_chunk']}) "
                f"flash {row['flash_ms']:.3f} cuDNN {row.get('sdpa_cudnn_ms', 0):.3f} "
                f"fla {row.get('fla_ms', float('nan')):.3f} ms",
                flush=True,
            )
            del q, k, v
            torch.cuda.empty_cache()
    crossovers = {
        str(d): {p: crossover([r for r in rows if r["d"] == d], p) for p in ("flash", "sdpa_cudnn")}
        for d in linear_front.HEAD_DIMS
    }
    result = {
        "run": run_block("linear", args, {"rows": iters, "sweep": iters, "copy": 20}),
        "env": env,
        "copy_bytes_per_s": copy_bw,
        "copy_cv": copy_stats.cv,
        "fla_skipped": fla_skip,
        "rows": rows,
        "sweep": sweep,
        "crossover": crossovers,
    }
    write_json(args, result)
    print()
    print(f"copy ceiling: {copy_bw / 1e9:.0f} GB/s (read + write) on {env['gpu']}")
    print(
        table(sweep, ["d", "t", "chunk", "ms", "kernel_ms", "chunk_h_ms", "chunk_o_ms", "tflops"])
    )
    print(table(rows, ["d", "t", "best_chunk", "best_ms", "flash_ms", "sdpa_cudnn_ms", "fla_ms"]))
    print(f"crossover T (linear faster from there on): {crossovers}")
    return rows

"""What a user's call costs: the public call with torch CUDA tensors against the
kernel alone and against torch's SDPA backends, all timed the same way; the
serving-latency case; host cost per call; Proto 8's custom-op overhead.

Timing (ours and peers alike): torch CUDA events on the current stream around
a batch of REPEAT back-to-back calls, divided by REPEAT, median over the
batches. A call whose host cost exceeds its GPU time shows up as such, as it
would in a user's loop. Inputs rotate over sets larger than L2 where one set
would fit in it. Kernel-only: the prepared plan relaunched (no validation, no
allocation) in the same way.
"""

from __future__ import annotations

import time

from .. import cuda
from ..ops import flash, paged
from ..timing import summarize
from .common import environment, run_block, skip_reason, table, write_json

REPEAT = 10
FLASH_BATCHES, PAGED_BATCHES = 30, 40  # timed batches of REPEAT calls per number
HOST_SAMPLES, HOST_CALLS = 5, 300
# The small inputs of the host-cost rows, where the GPU time hides behind the host's.
FLASH_HOST_SHAPE = {"batch": 1, "heads": 2, "context": 128, "head_dim": 64}
PAGED_HOST_SHAPE = {"batch": 1, "heads": 8, "kv_heads": 2, "context": 256, "page_size": 16}


def _gpu_time(torch, fn, sets, *, batches=FLASH_BATCHES, warmup=3):
    """Seconds per call of fn(*sets[i % len(sets)]) (see the module docstring)."""
    for i in range(warmup * REPEAT):
        fn(*sets[i % len(sets)])
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples, i = [], 0
    for _ in range(batches):
        start.record()
        for _ in range(REPEAT):
            fn(*sets[i % len(sets)])
            i += 1
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e-3 / REPEAT)
    return summarize(samples)


def in_turn_order(rounds: int, count: int, rotate: bool = True):
    """The indices of `count` fns in the order in-turn timing runs them,
    `rounds` rounds of each once. `rotate`: round r starts at r % count, so
    that with rounds a multiple of count each fn holds each place in a round
    equally often (a place effect, the first after a pause say, then favours
    none)."""
    for r in range(rounds):
        for j in range(count):
            yield (j + r) % count if rotate else j


def median_ratio(times, base) -> float:
    """The median over rounds of times[r] / base[r] (each fn's per-round
    times, as in-turn timing returns them): a drift of the card between
    rounds cancels in each ratio."""
    import statistics

    return statistics.median(t / b for t, b in zip(times, base, strict=True))


def _in_turn(torch, fns, rounds, batches=10, rotate=False):
    """Median seconds per call of each fn(), timed in turn (fns[0], fns[1],
    ..., fns[0], ...) `rounds` times, so a drift of the card's clock spreads
    over all of them; with each fn's per-round medians, for ratios taken
    round by round. `rotate`: see in_turn_order. Returns (medians, per_round)."""
    import statistics

    per_round = [[] for _ in fns]
    for i in in_turn_order(rounds, len(fns), rotate):
        per_round[i].append(_gpu_time(torch, fns[i], [()], batches=batches).median_s)
    return [statistics.median(t) for t in per_round], per_round


def interleaved(torch, fns, cycles=60, chunk=10, warmup=2):
    """Each fn's GPU seconds per call, the fns called in turn back to back
    (each cycle starting one fn further along), an event pair on the current
    stream around every call. Neighbouring calls share the card's clock: at
    its power limit an H200's clock follows the kernel it runs (4-5 % apart
    between the plain and ALiBi kernels, bench/diag/clock_probe.py), so fns
    timed each in its own batches are compared at two clocks. Taken cycle by
    cycle (median_ratio), an A/A ratio holds within 0.1 % where batches in
    turn spread by up to 1.2 % (bench/diag/alibi_public_gap.py). The host
    stays ahead of the GPU within a chunk of cycles; the first cycle of each
    chunk (started from an idle GPU) is left out. Returns per-fn lists, one
    entry a cycle, in cycle order."""
    count = len(fns)
    for _ in range(warmup):
        for f in fns:
            f()
    events = [
        [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in fns]
        for _ in range(chunk + 1)
    ]
    times = [[] for _ in fns]
    done = 0
    while done < cycles:
        todo = min(chunk, cycles - done)
        for c in range(todo + 1):
            for j in range(count):
                i = (j + done + c) % count
                start, end = events[c][i]
                start.record()
                fns[i]()
                end.record()
        torch.cuda.synchronize()
        for c in range(1, todo + 1):
            for i in range(count):
                start, end = events[c][i]
                times[i].append(start.elapsed_time(end) * 1e-3)
        done += todo
    return times


def _host_time(torch, fn, args, calls=HOST_CALLS):
    """Host seconds per call, back to back (the GPU queue absorbs the kernels)."""
    for _ in range(20):
        fn(*args)
    torch.cuda.synchronize()
    samples = []
    for _ in range(HOST_SAMPLES):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        samples.append((time.perf_counter() - t0) / calls)
        torch.cuda.synchronize()
    return summarize(samples)


def _sdpa(torch, backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    f = torch.nn.functional.scaled_dot_product_attention
    be = getattr(SDPBackend, backend)

    def run(q, k, v, causal=False):
        with sdpa_kernel([be]):
            return f(q, k, v, is_causal=causal, enable_gqa=q.shape[1] != k.shape[1])

    return run


def _flash_rows(torch, ap, quick):
    cases = [(128, 1024, 16, 16, False), (128, 8192, 2, 16, False), (128, 8192, 2, 16, True)]
    if not quick:
        cases += [(64, 8192, 2, 32, False), (64, 1024, 16, 32, False)]
    rows = []
    for d, n, b, h, causal in cases:
        sets = [
            tuple(torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            for _ in range(2)
        ]
        flops = 4 * b * h * n * n * d / (2 if causal else 1)
        public = _gpu_time(
            torch, lambda q, k, v, c=causal: ap.flash_attention(q, k, v, causal=c), sets
        )
        # The kernel the public call runs (flash.prepare dispatches as it does).
        preps = [flash.prepare(q, k, v, causal=causal) for q, k, v in sets]
        kernel = _gpu_time(torch, lambda p: p.launch(), [(p,) for p in preps])
        row = dict(
            d=d,
            n=n,
            batch=b,
            heads=h,
            causal=causal,
            public_us=public.median_s * 1e6,
            public_tflops=flops / public.median_s / 1e12,
            public_cv=public.cv,
            kernel_us=kernel.median_s * 1e6,
            kernel_tflops=flops / kernel.median_s / 1e12,
            kernel_cv=kernel.cv,
            public_over_kernel=kernel.median_s / public.median_s,
            kernel=preps[0].reason,
        )
        for name in ("CUDNN_ATTENTION", "FLASH_ATTENTION"):
            peer = _sdpa(torch, name)
            try:
                t = _gpu_time(torch, lambda q, k, v, f=peer, c=causal: f(q, k, v, c), sets)
                key = "sdpa_" + name.split("_")[0].lower()
                row[key + "_tflops"] = flops / t.median_s / 1e12
                row[key + "_cv"] = t.cv
                row["x_" + key] = t.median_s / public.median_s
            except RuntimeError as e:
                row["sdpa_error"] = str(e)[:80]
        rows.append(row)
        del sets, preps
    return rows


def _paged_sets(torch, b, h, kvh, ctx, page_size, count):
    """`count` independent decode problems: contiguous K/V for SDPA and the same
    K/V as scattered pages with a table."""
    out = []
    for i in range(count):
        q = torch.randn(b, h, 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, kvh, ctx, 128, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        per = ctx // page_size
        perm = torch.randperm(b * per, generator=torch.Generator().manual_seed(i)).cuda()

        def pages(x, per=per, perm=perm):
            p = x.view(b, kvh, per, page_size, 128).permute(0, 2, 1, 3, 4)
            p = p.reshape(b * per, kvh, page_size, 128)
            out = torch.empty(p.shape, dtype=p.dtype, device=p.device)  # contiguous
            out[perm] = p
            return out

        table = perm.view(b, per).to(torch.int32)
        lens = torch.full((b,), ctx, dtype=torch.int32, device="cuda")
        out.append(dict(q=q, k=k, v=v, kp=pages(k), vp=pages(v), table=table, lens=lens))
    return out


def _paged_row(torch, ap, b, h, kvh, ctx, page_size, l2_bytes, peers):
    kv_bytes = 2 * b * kvh * ctx * 128 * 2
    count = max(2, -(-3 * l2_bytes // kv_bytes)) if kv_bytes < 3 * l2_bytes else 1
    sets = _paged_sets(torch, b, h, kvh, ctx, page_size, min(count, 16))
    ours_args = [(s["q"], s["kp"], s["vp"], s["table"], s["lens"]) for s in sets]
    public = _gpu_time(torch, ap.paged_attention, ours_args, batches=PAGED_BATCHES)
    preps = [paged.Prepared(*a) for a in ours_args]
    kernel = _gpu_time(torch, lambda p: p.launch(), [(p,) for p in preps], batches=PAGED_BATCHES)
    row = dict(
        heads=h,
        kv_heads=kvh,
        context=ctx,
        batch=b,
        page_size=page_size,
        partitions=preps[0].partitions,
        input_sets=len(sets),
        public_us=public.median_s * 1e6,
        public_tbps=kv_bytes / public.median_s / 1e12,
        public_cv=public.cv,
        kernel_us=kernel.median_s * 1e6,
        kernel_tbps=kv_bytes / kernel.median_s / 1e12,
    )
    best = None
    for name in peers:
        f = _sdpa(torch, name)
        sdpa_args = [(s["q"].view(b, h, 1, 128), s["k"], s["v"]) for s in sets]
        try:
            t = _gpu_time(torch, f, sdpa_args, batches=PAGED_BATCHES)
        except RuntimeError:
            continue
        key = "sdpa_" + name.split("_")[0].lower()
        row[key + "_us"] = t.median_s * 1e6
        row[key + "_cv"] = t.cv
        if best is None or t.median_s < best[1]:
            best = (key, t.median_s)
    if best:
        row["best_peer"] = best[0]
        row["best_peer_us"] = best[1] * 1e6
        row["best_peer_tbps"] = kv_bytes / best[1] / 1e12
        row["x_best_peer"] = best[1] / public.median_s
    if "sdpa_cudnn_us" in row:
        row["x_cudnn"] = row["sdpa_cudnn_us"] * 1e-6 / public.median_s
    del sets, preps
    return row


def _split_rows(torch, l2_bytes):
    """Kernel time against partition size where the default split is in doubt."""
    rows = []
    for b, kvh, ctx in ((16, 8, 16384), (64, 8, 4096), (4, 8, 65536)):
        s = _paged_sets(torch, b, 32, kvh, ctx, 16, 1)[0]
        args = (s["q"], s["kp"], s["vp"], s["table"], s["lens"])
        default = paged.Prepared(*args).partition_size
        kv_bytes = 2 * b * kvh * ctx * 128 * 2
        for part in sorted({256, 512, 1024, 2048, ctx, default}):
            prep = paged.Prepared(*args, partition_size=part)
            t = _gpu_time(torch, lambda p: p.launch(), [(prep,)], batches=20)
            rows.append(
                dict(
                    kv_heads=kvh,
                    context=ctx,
                    batch=b,
                    partition_size=part,
                    partitions=prep.partitions,
                    us=t.median_s * 1e6,
                    tbps=kv_bytes / t.median_s / 1e12,
                    cv=t.cv,
                    default=part == default,
                )
            )
        del s, args
    return rows


# An empty op registered like ours (Library.define + impl, Autograd falls
# through): the dispatcher's floor for our custom ops.
FLOOR_ROW = "empty op, Library path (torch floor)"


def _noop():
    return None


def _overhead_rows(torch, ap):
    """Host microseconds per call: our public calls, the prepared relaunch, the
    torch custom ops, torch's floor (an empty custom op) and SDPA."""
    from .. import torch_ops as ops  # registers attention_proto::*

    fs, ps = FLASH_HOST_SHAPE, PAGED_HOST_SHAPE
    shape = (fs["batch"], fs["heads"], fs["context"], fs["head_dim"])
    q, k, v = (torch.randn(*shape, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    s = _paged_sets(
        torch, ps["batch"], ps["heads"], ps["kv_heads"], ps["context"], ps["page_size"], 1
    )[0]
    pargs = (s["q"], s["kp"], s["vp"], s["table"], s["lens"])
    prep = flash.prepare(q, k, v)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    cases = {
        "flash public call": (lambda: ap.flash_attention(q, k, v)),
        "flash custom op": (lambda: ops.flash_attention(q, k, v)),
        "flash prepared relaunch": prep.launch,
        "paged public call": (lambda: ap.paged_attention(*pargs)),
        "paged custom op": (lambda: ops.paged_attention(*pargs)),
        FLOOR_ROW: (lambda: ops.noop(q)),
        "empty op, @custom_op decorator": (lambda: ops.noop_custom_op(q)),
        "torch.empty_like": (lambda: torch.empty_like(q)),
        "q.new_empty (our output allocation)": (lambda: q.new_empty(q.shape)),
        "torch current stream lookup": (lambda: torch._C._cuda_getCurrentRawStream(0)),
        "torch SDPA call": (lambda: sdpa(q, k, v)),
        # Hosts differ (SDPA's own call took 17.4 us on one H200 host, 29.5 on
        # another): a pure-Python call says how fast this one runs Python.
        "python no-op call (host calibration)": _noop,
    }
    rows = []
    for name, fn in cases.items():
        t = _host_time(torch, fn, ())
        rows.append(dict(call=name, host_us=t.median_s * 1e6, cv=t.cv))
    return rows


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED callpath benchmark: {skip_reason()}")
        return []
    import torch

    import attention_proto as ap

    quick = getattr(args, "quick", False)
    l2 = cuda.properties()["l2_bytes"]
    print("flash: public call vs kernel only vs SDPA ...", flush=True)
    flash_rows = _flash_rows(torch, ap, quick)
    print("paged: public call vs kernel only vs SDPA ...", flush=True)
    peers = ("CUDNN_ATTENTION", "FLASH_ATTENTION")
    paged_rows = [
        _paged_row(torch, ap, 64, 32, 32, 4096, 16, l2, peers),
        _paged_row(torch, ap, 16, 32, 8, 16384, 16, l2, peers),
        _paged_row(torch, ap, 64, 32, 8, 4096, 16, l2, peers),
    ]
    print("paged partition sizes (kernel only) ...", flush=True)
    split_rows = _split_rows(torch, l2)
    print("serving latency ...", flush=True)
    serving_peers = ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")
    serving_rows = [
        _paged_row(torch, ap, b, 32, kvh, 4096, 16, l2, serving_peers)
        for kvh in (8, 32)
        for b in (1, 8)
    ]
    print("host cost per call ...", flush=True)
    overhead_rows = _overhead_rows(torch, ap)
    iterations = {
        "flash": FLASH_BATCHES,
        "paged": PAGED_BATCHES,
        "serving": PAGED_BATCHES,
        "overhead": HOST_SAMPLES,
    }
    result = {
        "run": run_block("callpath", args, iterations),
        "env": env,
        "repeat": REPEAT,
        "host_calls_per_sample": HOST_CALLS,
        "overhead_shapes": {"flash": FLASH_HOST_SHAPE, "paged": PAGED_HOST_SHAPE},
        "glue_lines": _glue_lines(),
        "flash": flash_rows,
        "paged": paged_rows,
        "serving": serving_rows,
        "overhead": overhead_rows,
        "split": split_rows,
    }
    write_json(args, result)
    print(
        table(
            flash_rows,
            ["d", "n", "batch", "causal", "public_tflops", "kernel_tflops", "public_over_kernel"]
            + ["sdpa_cudnn_tflops", "sdpa_flash_tflops", "x_sdpa_cudnn", "public_cv"],
        )
    )
    cols = ["kv_heads", "context", "batch", "partitions", "public_us", "public_tbps"]
    cols += ["kernel_tbps", "best_peer", "best_peer_us", "x_best_peer", "x_cudnn", "public_cv"]
    print(table(paged_rows, cols))
    print("serving latency (ctx 4K, page 16):")
    print(table(serving_rows, cols))
    print(
        table(
            split_rows,
            ["kv_heads", "context", "batch", "partition_size", "partitions"]
            + ["us", "tbps", "cv", "default"],
        )
    )
    print(table(overhead_rows, ["call", "host_us", "cv"]))
    return flash_rows + paged_rows + serving_rows + overhead_rows


def _glue_lines() -> int:
    """Lines of Python (not blank, not comments) that register the custom ops."""
    from .. import torch_ops

    with open(torch_ops.__file__) as f:
        return sum(1 for line in f if line.strip() and not line.strip().startswith("#"))

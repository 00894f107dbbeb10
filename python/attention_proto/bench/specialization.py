"""Proto 4: what specialization constants cost to compile, and what the binary
archive saves.

- Cold compile of N = 1, 10, 50, 100, 500 distinct variants of the flash kernel,
  serial and in parallel over the machine's cores (no GPU needed).
- An archive of the 72-variant grid below: build time, size, per-kernel load
  (archive read + module load) against a fresh compile, and a fresh process's
  time to its first completed dispatch with an empty and with a warm archive.

Cold means cold: NVRTC 12.9+ reuses results from the driver's compute cache when
a driver is present, so the GPU script runs with CUDA_CACHE_DISABLE=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from .. import _core, cuda, runtime
from ..ops import flash
from ..timing import summarize
from .common import environment, load_all_from_archive, run_block, skip_reason, table, write_json
from .progress import counted

# The archive grid: HEAD_DIM x (BLOCK_M, WARPS) x BLOCK_N x VARIANT = 2 x 3 x 2 x 6 = 72.
# VARIANT bundles the flags a deployment would ship: (dtype, causal, stages).
HEAD_DIMS = (64, 128)
LAYOUTS = ((64, 4), (128, 8), (128, 4))
BLOCK_NS = (32, 64)
VARIANTS = (
    ("bfloat16", False, 2),
    ("bfloat16", True, 2),
    ("float16", False, 2),
    ("float16", True, 2),
    ("bfloat16", False, 1),
    ("bfloat16", True, 1),
)


def grid_specs() -> list:
    return [
        flash.spec(d, dt, causal, flash.FlashConfig(m, n, stages, w))
        for d in HEAD_DIMS
        for m, w in LAYOUTS
        for n in BLOCK_NS
        for dt, causal, stages in VARIANTS
    ]


def distinct_specs(count: int) -> list:
    """`count` variants with distinct keys: the 72-grid, then the grid again with
    a COPY constant the kernel never reads (same code, a new binary identity), so
    every compile is a real cold compile of a real tile."""
    base = grid_specs()
    out = []
    for i in range(count):
        s = base[i % len(base)]
        if i < len(base):
            out.append(s)
        else:
            consts = dict(_constants(s), COPY=i // len(base))
            out.append(runtime.kernel_spec(s.entry, s.source_name, consts))
    return out


def _constants(spec) -> dict:
    out = {}
    for item in spec.constants_description.split():
        name, value = item.split("=")
        out[name] = int(value)
    return out


def _compile_all(specs, arch, workers, label):
    """Every spec compiled cold on `workers` threads (each compile is a separate
    measurement: repeats across counts are the point, not waste)."""
    t0 = time.perf_counter()
    if workers == 1:
        results = [runtime.compile_for(s, arch) for s in counted(specs, label)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            done = pool.map(lambda s: runtime.compile_for(s, arch), specs)
            results = list(counted(done, label, total=len(specs)))
    return time.perf_counter() - t0, results


def _first_dispatch_seconds(archive_dir: str) -> float:
    """Wall time of a fresh interpreter from start to a completed flash dispatch."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import numpy as np, attention_proto as ap\n"
        "q = np.zeros((1, 1, 128, 128), np.float16)\n"
        "ap.flash_attention(q, q, q)\n"
        "print(time.perf_counter() - t0)\n"
    )
    env = dict(os.environ, ATTENTION_PROTO_ARCHIVE_DIR=archive_dir)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    total = time.perf_counter() - t0
    float(out.stdout.strip().splitlines()[-1])  # the child got there
    return total


def _serial_ms_per_variant(cold_rows) -> float:
    serial = [r for r in cold_rows if r["workers"] == 1]
    return max(serial, key=lambda r: r["variants"])["ms_per_variant"]


def run(args) -> dict:
    env = environment()
    arch = env.get("arch", runtime.CPU_ARCH)
    cores = os.cpu_count() or 1
    quick = getattr(args, "quick", False)
    counts = (1, 10, 50) if quick else (1, 10, 50, 100, 500)
    cold_rows = []
    for n in counts:
        for workers in (1, cores):
            if workers == 1 and n == 500 and cores > 1 and quick:
                continue
            secs, _ = _compile_all(distinct_specs(n), arch, workers, f"{n} on {workers}")
            cold_rows.append(
                {
                    "variants": n,
                    "workers": workers,
                    "total_s": secs,
                    "ms_per_variant": secs / n * 1e3,
                }
            )
            print(
                f"cold compile {n:4d} variants, {workers:2d} workers: {secs:7.2f} s "
                f"({secs / n * 1e3:.0f} ms/variant)",
                flush=True,
            )

    # The 72-variant archive.
    specs = grid_specs()
    root = tempfile.mkdtemp(prefix="ap-archive-72-")
    try:
        archive = _core.BinaryArchive(root)
        t0 = time.perf_counter()
        compile_s, results = _compile_all(specs, arch, cores, "archive grid")
        for r in results:
            archive.store(r.key, r.binary)
        build_s = time.perf_counter() - t0
        size = sum(os.path.getsize(p) for p in archive.entries())
        compile_ms = [r.compile_ms for r in results]
        out = {
            "run": run_block("specialization", args, {"cold": 1, "first_dispatch": 1}),
            "env": env,
            "cold": cold_rows,
            "archive": {
                "variants": len(specs),
                "build_s": build_s,
                "workers": cores,
                "bytes": size,
                "compile_ms": summarize(compile_ms).as_dict(),
            },
        }
        skipped = []
        if cuda.is_available():
            st = load_all_from_archive(root, specs)
            load_ms = (st["load_ms"] + st["archive_read_ms"]) / len(specs)
            cold_dir = tempfile.mkdtemp(prefix="ap-archive-empty-")
            first_cold = _first_dispatch_seconds(cold_dir)
            first_warm = _first_dispatch_seconds(cold_dir)  # the cold run filled it
            shutil.rmtree(cold_dir, ignore_errors=True)
            # Against a serial cold compile: the parallel build's per-compile times
            # include contention for the cores.
            serial_ms = _serial_ms_per_variant(cold_rows)
            out["archive"].update(
                load_ms_per_kernel=load_ms,
                serial_compile_ms=serial_ms,
                speedup=serial_ms / load_ms,
                first_dispatch_cold_s=first_cold,
                first_dispatch_warm_s=first_warm,
            )
        else:
            skipped.append(f"archive module load and first-dispatch times: {skip_reason()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["skipped"] = skipped
    write_json(args, out)
    print()
    print(f"on {env['cpu']} ({cores} cores), target {arch}")
    print(table(cold_rows, ["variants", "workers", "total_s", "ms_per_variant"]))
    a = out["archive"]
    print()
    print(
        table(
            [{k: v for k, v in a.items() if k != "compile_ms"}],
            list(k for k in a if k != "compile_ms"),
        )
    )
    for s in skipped:
        print(f"SKIPPED {s}")
    return out

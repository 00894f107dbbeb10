"""Foundation: cold NVRTC compile of every kernel the package ships, archive
read (and, on a GPU, module load) of each, load speedup over compile, and the
host overhead of one dispatch from Python.

Without a GPU it compiles (for sm_90a) and reads the archive back; module load,
speedup and dispatch overhead need a CUDA device and are reported as skipped."""

from __future__ import annotations

import shutil
import tempfile
import time

from .. import _core, catalog, cuda, probes, runtime
from ..timing import summarize
from .common import environment, load_all_from_archive, run_block, skip_reason, table, write_json
from .progress import counted

HOST_SAMPLES, LAUNCHES_PER_SAMPLE = 20, 200


def _compile(specs, arch):
    """Each spec compiled once: the rows time it, the archive stores its binary."""
    rows, binaries = [], []
    for spec in counted(specs, "compile"):
        r = runtime.compile_for(spec, arch)
        rows.append({"kernel": spec.name, "compile_ms": r.compile_ms, "cubin_bytes": len(r.binary)})
        binaries.append((r.key, r.binary))
    return rows, binaries


def _archive_and_dispatch(specs, binaries):
    """Read every binary back from a fresh archive; on a GPU also load each
    module and time dispatches of one of them."""
    root = tempfile.mkdtemp(prefix="ap-bench-archive-")
    try:
        archive = _core.BinaryArchive(root)
        for key, binary in binaries:
            archive.store(key, binary)
        read_ms = []
        for key, _ in binaries:
            t0 = time.perf_counter()
            assert archive.load(key) is not None
            read_ms.append((time.perf_counter() - t0) * 1e3)
        out = {"archive_read_ms": summarize(read_ms)}
        if cuda.is_available():
            # A second pass in this process: memory emptied, every kernel from the archive.
            s = load_all_from_archive(root, specs)
            out["module_load_ms_per_kernel"] = s["load_ms"] / len(specs)
            out["archive_read_ms_per_kernel"] = s["archive_read_ms"] / len(specs)
            out["archive_loads"] = s["archive_loads"]
            out["host_overhead"] = _host_overhead(root)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _host_overhead(root):
    """Wall time per dispatch of an empty kernel from Python, synchronizing every
    LAUNCHES_PER_SAMPLE launches so the launch queue never fills (which would time
    the GPU). The kernel comes from the run's archive: compiled once, above."""
    before = runtime.archive_root()
    runtime.set_archive(root)
    try:
        with runtime.compiles_forbidden():
            pipe = runtime.pipeline(probes.spec("noop"))
    finally:
        runtime.set_archive(before)
    args = b""
    for _ in range(100):
        pipe.launch([1, 1, 1], [32, 1, 1], 0, args)
    cuda.synchronize()
    per = []
    for _ in range(HOST_SAMPLES):
        t0 = time.perf_counter()
        for _ in range(LAUNCHES_PER_SAMPLE):
            pipe.launch([1, 1, 1], [32, 1, 1], 0, args)
        per.append((time.perf_counter() - t0) / LAUNCHES_PER_SAMPLE)
        cuda.synchronize()
    return summarize(per)


def run(args) -> list[dict]:
    env = environment()
    arch = env.get("arch", runtime.CPU_ARCH)
    specs = catalog.all_specs()
    print(f"{len(specs)} kernels for {arch}, each compiled once (cold), then read back", flush=True)
    compile_rows, binaries = _compile(specs, arch)
    compile_stats = summarize([r["compile_ms"] for r in compile_rows])
    archive = _archive_and_dispatch(specs, binaries)
    iterations = {"compile": 1, "archive_read": 1, "host_overhead": HOST_SAMPLES}
    result = {
        "run": run_block("foundation", args, iterations),
        "env": env,
        "compile": compile_rows,
        "archive_read_ms": archive["archive_read_ms"].as_dict(),
    }
    summary = [
        {
            "metric": "cold compile ms / variant (median)",
            "value": compile_stats.median_s,
            "cv": compile_stats.cv,
            "n": compile_stats.n,
        },
        {
            "metric": "archive read ms / variant (median)",
            "value": archive["archive_read_ms"].median_s,
            "cv": archive["archive_read_ms"].cv,
            "n": archive["archive_read_ms"].n,
        },
    ]
    skipped = []
    if cuda.is_available():
        load_ms = archive["module_load_ms_per_kernel"] + archive["archive_read_ms_per_kernel"]
        speedup = compile_stats.mean_s / load_ms
        overhead = archive["host_overhead"]
        result.update(
            host_launches_per_sample=LAUNCHES_PER_SAMPLE,
            module_load_ms=archive["module_load_ms_per_kernel"],
            archive_total_load_ms=load_ms,
            load_speedup=speedup,
            host_overhead=overhead.as_dict(),
        )
        summary += [
            {
                "metric": "archive read + module load ms / kernel (mean)",
                "value": load_ms,
                "cv": None,
                "n": len(specs),
            },
            {
                "metric": "load speedup over cold compile (x)",
                "value": speedup,
                "cv": None,
                "n": len(specs),
            },
            {
                "metric": "host overhead us / dispatch (median)",
                "value": overhead.median_s * 1e6,
                "cv": overhead.cv,
                "n": overhead.n,
            },
        ]
    else:
        skipped.append(f"module load, load speedup and host overhead: {skip_reason()}")
    result["summary"] = summary
    result["skipped"] = skipped
    write_json(args, result)
    print(table(compile_rows, ["kernel", "compile_ms", "cubin_bytes"]))
    print()
    print(table(summary, ["metric", "value", "cv", "n"]))
    for s in skipped:
        print(f"SKIPPED {s}")
    return summary

"""The foundation's numbers: cold compile ms per variant, archive read and module
load ms, load speedup over compile, and Python-to-launch host overhead."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time

from .. import _core, catalog, cuda, findings, probes, runtime
from ..timing import summarize
from .common import environment, evidence, load_all_from_archive, table, write_json

SOURCE = "python -m attention_proto.bench foundation"


def _compile_rows(specs, arch):
    rows = []
    for spec in specs:
        r = runtime.compile_for(spec, arch)
        rows.append({"kernel": spec.name, "compile_ms": r.compile_ms, "cubin_bytes": len(r.binary)})
    return rows


def _archive_rows(specs, arch):
    """Read every entry back from a fresh archive; on a GPU also load the module."""
    root = tempfile.mkdtemp(prefix="ap-bench-archive-")
    try:
        archive = _core.BinaryArchive(root)
        for spec in specs:
            r = runtime.compile_for(spec, arch)
            archive.store(r.key, r.binary)
        read_ms = []
        for spec in specs:
            key = _core.kernel_key(spec, arch)
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
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _host_overhead():
    """Wall time per dispatch of an empty kernel from Python, synchronizing every
    200 launches so the launch queue never fills (which would time the GPU)."""
    pipe = runtime.pipeline(probes.spec("noop"))
    args = b""
    for _ in range(100):
        pipe.launch([1, 1, 1], [32, 1, 1], 0, args)
    cuda.synchronize()
    per = []
    for _ in range(20):
        t0 = time.perf_counter()
        for _ in range(200):
            pipe.launch([1, 1, 1], [32, 1, 1], 0, args)
        per.append((time.perf_counter() - t0) / 200)
        cuda.synchronize()
    return summarize(per)


def run(args) -> list[dict]:
    env = environment()
    arch = env.get("arch", runtime.CPU_ARCH)
    specs = catalog.all_specs()
    compile_rows = _compile_rows(specs, arch)
    compile_stats = summarize([r["compile_ms"] for r in compile_rows])
    archive = _archive_rows(specs, arch)
    result = {
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
        overhead = _host_overhead()
        result.update(
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
        if args.findings:
            _emit(args.findings, env, compile_stats, load_ms, speedup, overhead, arch)
    else:
        skipped.append(
            f"module load, load speedup and host overhead: no CUDA device "
            f"({cuda.unavailable_reason().splitlines()[0]})"
        )
    result["summary"] = summary
    result["skipped"] = skipped
    write_json(args.out, "foundation", result)
    print(table(compile_rows, ["kernel", "compile_ms", "cubin_bytes"]))
    print()
    print(table(summary, ["metric", "value", "cv", "n"]))
    for s in skipped:
        print(f"SKIPPED {s}")
    return summary


def _emit(path, env, compile_stats, load_ms, speedup, overhead, arch):
    ev = functools.partial(evidence, env)

    findings.emit_finding(
        findings.Finding(
            "runtime",
            "Cold NVRTC compile per kernel variant",
            f"Median cold compile {compile_stats.median_s:.1f} ms per variant for {arch} on "
            f"{env['cpu']} ({env['cores']} cores).",
            ["nvrtc", "compile"],
            findings.confidence_for(compile_stats.cv, "medium"),
            SOURCE,
            ev(
                "compile_ms_median",
                compile_stats.median_s,
                "ms",
                compile_stats.cv,
                compile_stats.n,
                {"arch": arch},
            ),
        ),
        path,
    )
    findings.emit_finding(
        findings.Finding(
            "runtime",
            "Archive load vs compile",
            f"Loading a kernel from the binary archive (read + module load) takes "
            f"{load_ms:.3f} ms, "
            f"{speedup:.0f}x faster than a cold compile.",
            ["archive", "cubin"],
            "medium",
            SOURCE,
            ev("archive_load_speedup", speedup, "x", None, compile_stats.n, {"arch": arch}),
        ),
        path,
    )
    findings.emit_finding(
        findings.Finding(
            "runtime",
            "Python-to-launch host overhead",
            f"An empty kernel dispatched from Python costs "
            f"{overhead.median_s * 1e6:.2f} us of host "
            f"time per launch (packed args, one nanobind call, cuLaunchKernel).",
            ["dispatch", "overhead"],
            findings.confidence_for(overhead.cv),
            SOURCE,
            ev(
                "host_overhead_us",
                overhead.median_s * 1e6,
                "us",
                overhead.cv,
                overhead.n,
                {"kernel": "noop"},
            ),
        ),
        path,
    )

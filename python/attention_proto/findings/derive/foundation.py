"""Findings of `bench foundation`: cold compile, archive read and load, host
overhead per dispatch (Proto 4's runtime side)."""

from __future__ import annotations

from ...timing import summarize
from .base import Findings


def derive(run) -> list[dict]:
    f = Findings(run)
    d, env = run.data, run.env
    arch = env.get("arch", "sm_90a")
    host = f"{env.get('cpu', '?')} ({env.get('cores', '?')} cores)"
    compile_ms = summarize(r["compile_ms"] for r in d["compile"])
    f.add(
        "cold-compile-ms",
        "runtime",
        "Cold NVRTC compile per shipped kernel variant",
        f"Median cold compile {compile_ms.median_s:.0f} ms per variant over the "
        f"{compile_ms.n} variants the package ships (min {compile_ms.min_s:.0f} ms), for "
        f"{arch} on {host}. The CV is the spread across kernels, not noise.",
        ["nvrtc", "compile", "cold"],
        metric="compile_ms_median",
        value=compile_ms.median_s,
        unit="ms",
        cv=compile_ms.cv,
        n=compile_ms.n,
        config={"arch": arch, "variants": compile_ms.n},
        scope="cpu",
    )
    read = d["archive_read_ms"]  # a TimingStats dict whose *_s fields hold ms
    f.add(
        "archive-read-ms",
        "runtime",
        "Reading one kernel from the binary archive",
        f"Reading a cubin back from the archive (checksum checked, no module load) takes "
        f"{read['median_s']:.3f} ms median on {host}.",
        ["archive", "read"],
        metric="archive_read_ms_median",
        value=read["median_s"],
        unit="ms",
        cv=read["cv"],
        n=read["n"],
        config={"arch": arch},
        scope="cpu",
    )
    if "load_speedup" in d:
        f.add(
            "archive-load-vs-compile",
            "runtime",
            "Archive load vs cold compile, every shipped kernel",
            f"Archive read + module load takes {d['archive_total_load_ms']:.2f} ms per kernel "
            f"(mean over {compile_ms.n}), {d['load_speedup']:.0f}x less than the mean cold "
            f"compile of the same kernels ({compile_ms.mean_s:.0f} ms).",
            ["archive", "load", "cubin"],
            metric="archive_load_speedup",
            value=d["load_speedup"],
            unit="x",
            cv=None,  # a ratio of means; the run kept no per-kernel load times
            n=compile_ms.n,
            config={"arch": arch, "load_ms": d["archive_total_load_ms"]},
        )
    if "host_overhead" in d:
        h, launches = d["host_overhead"], run.get("host_launches_per_sample")
        f.add(
            "host-overhead-us",
            "runtime",
            "Python-to-launch host overhead of one dispatch",
            f"An empty kernel dispatched from Python costs {h['median_s'] * 1e6:.2f} us of host "
            f"time per launch (packed args, one nanobind call, cuLaunchKernel); median of "
            f"{h['n']} batches of {launches} launches.",
            ["dispatch", "overhead", "host"],
            metric="host_overhead_us",
            value=h["median_s"] * 1e6,
            unit="us",
            cv=h["cv"],
            n=h["n"],
            config={"kernel": "noop", "launches_per_sample": launches},
        )
    return f.records

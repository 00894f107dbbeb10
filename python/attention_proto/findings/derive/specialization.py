"""Findings of `bench specialization` (Proto 4): cold compile of flash variants,
serial and parallel; the 72-variant archive's build, size and load; when to
specialize at run time."""

from __future__ import annotations

from .base import Findings

STARTUP_BUDGET_MS = 1000.0  # the recommendation's yardstick: one second of startup


def derive(run) -> list[dict]:
    f = Findings(run)
    env, cold, a = run.env, run.data["cold"], run.data["archive"]
    host = f"{env.get('cpu', '?')}, {env.get('cores', '?')} cores"
    serial = max((r for r in cold if r["workers"] == 1), key=lambda r: r["variants"])
    f.add(
        "cold-compile-serial",
        "specialization",
        "Cold compile per flash variant, one at a time",
        f"NVRTC compiles one flash_attention variant in {serial['ms_per_variant']:.0f} ms "
        f"serially ({serial['variants']} distinct variants in {serial['total_s']:.1f} s, {host}).",
        ["nvrtc", "compile", "cold"],
        metric="cold_compile_ms_per_variant",
        value=serial["ms_per_variant"],
        unit="ms",
        cv=None,  # one wall time over the batch
        n=serial["variants"],
        config={"workers": 1, "variants": serial["variants"]},
        scope="cpu",
    )
    most = max(r["workers"] for r in cold)
    if most > 1:
        par = max((r for r in cold if r["workers"] == most), key=lambda r: r["variants"])
        f.add(
            "cold-compile-parallel",
            "specialization",
            "Cold compile per flash variant, all cores",
            f"With {most} compile threads, {par['variants']} variants take {par['total_s']:.1f} s: "
            f"{par['ms_per_variant']:.0f} ms per variant amortized ({host}).",
            ["nvrtc", "compile", "parallel"],
            metric="cold_compile_ms_per_variant_parallel",
            value=par["ms_per_variant"],
            unit="ms",
            cv=None,
            n=par["variants"],
            config={"workers": most, "variants": par["variants"]},
            scope="cpu",
        )
    f.add(
        "archive-build",
        "specialization",
        f"Building a {a['variants']}-variant archive",
        f"Compiling and storing the {a['variants']}-variant grid took {a['build_s']:.1f} s on "
        f"{a['workers']} threads ({host}); the archive holds {a['bytes'] / 1e6:.1f} MB.",
        ["archive", "build"],
        metric="archive_build_s",
        value=a["build_s"],
        unit="s",
        cv=None,
        n=a["variants"],
        config={"workers": a["workers"], "bytes": a["bytes"], "variants": a["variants"]},
        scope="cpu",
    )
    if "speedup" not in a:
        return f.records
    f.add(
        "archive-load-vs-serial-compile",
        "specialization",
        "Archive load vs serial cold compile, flash variants",
        f"Loading a flash variant from the archive (read + module load) takes "
        f"{a['load_ms_per_kernel']:.2f} ms, {a['speedup']:.0f}x less than a serial cold compile "
        f"({a['serial_compile_ms']:.0f} ms).",
        ["archive", "load", "compile"],
        metric="archive_load_speedup",
        value=a["speedup"],
        unit="x",
        cv=None,
        n=a["variants"],
        config={"load_ms": a["load_ms_per_kernel"], "serial_compile_ms": a["serial_compile_ms"]},
    )
    f.add(
        "first-dispatch",
        "specialization",
        "Fresh process to its first flash dispatch: warm vs empty archive",
        f"A new Python process reaches its first completed flash dispatch in "
        f"{a['first_dispatch_warm_s']:.2f} s with a warm archive and "
        f"{a['first_dispatch_cold_s']:.2f} s with an empty one (interpreter start included).",
        ["archive", "startup", "first-dispatch"],
        metric="first_dispatch_warm_s",
        value=a["first_dispatch_warm_s"],
        unit="s",
        cv=None,
        n=1,
        config={"first_dispatch_cold_s": a["first_dispatch_cold_s"]},
    )
    compile_ms, load_ms = a["serial_compile_ms"], a["load_ms_per_kernel"]
    threshold = int(STARTUP_BUDGET_MS // compile_ms)
    f.add(
        "runtime-vs-precompile",
        "specialization",
        "When to specialize at run time vs precompile",
        f"With {compile_ms:.0f} ms per cold compile, a 1 s startup budget covers {threshold} "
        f"run-time specializations, while {load_ms:.2f} ms archive loads cover "
        f"{int(STARTUP_BUDGET_MS // load_ms)}. Specialize at run time (the archive as a "
        f"persistent cache) when a process meets at most about {threshold} new variants; "
        f"precompile the archive for a known, larger variant set; forbid compiles while "
        f"measuring.",
        ["recommendation", "archive", "specialization"],
        metric="variants_per_second_of_compile",
        value=threshold,
        unit="variants",
        cv=None,
        n=a["variants"],
        config={"serial_compile_ms": compile_ms, "load_ms": load_ms},
    )
    return f.records

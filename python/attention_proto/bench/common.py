"""Shared benchmark plumbing: environment facts, tables, JSON results."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from .. import cuda, findings, runtime


def environment() -> dict:
    env = {
        "python": sys.version.split()[0],
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    env["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if cuda.is_available():
        p = cuda.properties()
        env.update(
            gpu=p["name"],
            arch=p["arch"],
            sm_count=p["sm_count"],
            driver=str(p["driver_version"]),
            l2_bytes=p["l2_bytes"],
        )
    else:
        env.update(gpu="none", driver="none")
    return env


def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
        for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def write_json(out_dir: str | None, name: str, payload: dict) -> Path | None:
    if not out_dir:
        return None
    p = Path(out_dir)
    p.mkdir(parents=True, exist_ok=True)
    path = p / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
    return path


def evidence(env: dict, metric: str, value, unit: str, cv, n: int, config: dict):
    """findings.Evidence for a number measured in this run on env's GPU."""
    return findings.Evidence(
        gpu=env["gpu"],
        driver=env["driver"],
        config=config,
        metric=metric,
        value=float(value),
        unit=unit,
        cv=cv,
        n=n,
    )


def load_all_from_archive(root: str, specs) -> dict:
    """Load every spec from the archive at `root` into an emptied pipeline cache,
    with compiles forbidden (so a miss fails instead of timing NVRTC); returns the
    cache's stats. The previous archive is restored and the cache emptied again."""
    cache = runtime.cache()
    before = cache.archive_root
    runtime.set_archive(root)
    cache.clear()
    cache.reset_stats()
    try:
        with runtime.compiles_forbidden():
            for spec in specs:
                runtime.pipeline(spec)
        return cache.stats()
    finally:
        runtime.set_archive(before)
        cache.clear()

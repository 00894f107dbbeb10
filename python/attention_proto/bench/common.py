"""Shared benchmark plumbing: the run's provenance (command, revision, time,
card, driver, clocks), tables, JSON results. Benchmarks measure and write
JSON; findings are derived from that JSON by attention_proto.findings."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from .. import cuda, runtime

PROG = "python -m attention_proto.bench"


def git_revision() -> str:
    """$ATTENTION_PROTO_GIT_REVISION (set where the tree travels without .git), else
    git in the source tree (an editable install) or in the working directory when
    it is this project's checkout (`pip install . && python -m attention_proto.bench`
    run from it), else 'unknown'."""
    if os.environ.get("ATTENTION_PROTO_GIT_REVISION"):
        return os.environ["ATTENTION_PROTO_GIT_REVISION"]
    for root in (Path(__file__).resolve().parents[3], Path.cwd()):
        if not (root / "python" / "attention_proto").is_dir():
            continue  # some other directory: its commit says nothing about this code
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return "unknown"


def _nvidia_smi(fields: str) -> list[str] | None:
    # nvidia-smi counts GPUs by its own index; CUDA_VISIBLE_DEVICES's first entry
    # is the card CUDA calls 0 when it is a plain index (the usual case).
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    index = first if first.isdigit() else "0"
    try:
        out = subprocess.run(
            ["nvidia-smi", "-i", index, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]


def driver_version() -> str:
    """The NVIDIA driver (580.159.04), not the CUDA API version cuDriverGetVersion
    gives (13000): the kernel module says it without any tool installed."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", text)
        if m:
            return m.group(1)
    except OSError:
        pass
    got = _nvidia_smi("driver_version")
    return got[0] if got else "unknown"


def clocks(props: dict) -> dict:
    """Max clocks from the driver; current and max SM/memory clocks where
    nvidia-smi answers (a throttled or locked card shows here)."""
    out = {
        "sm_max_mhz": props["clock_khz"] // 1000,
        "mem_max_mhz": props["memory_clock_khz"] // 1000,
    }
    fields = ("clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem", "power.limit")
    got = _nvidia_smi(",".join(fields))
    if got and len(got) == len(fields):
        out["nvidia_smi"] = dict(zip(fields, got, strict=True))
    return out


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
            driver=driver_version(),
            cuda_driver_api=str(p["driver_version"]),
            l2_bytes=p["l2_bytes"],
            memory_bytes=p["total_memory"],
            clocks=clocks(p),
        )
    else:
        env.update(gpu="none", driver="none")
    return env


def run_block(suite: str, args, iterations: dict | None = None) -> dict:
    """What findings need to cite a run: suite, command, revision, time, and the
    timed repetitions behind each table's numbers."""
    return {
        "suite": suite,
        "command": " ".join([PROG, *getattr(args, "argv", [suite])]),
        "revision": git_revision(),
        "time": getattr(args, "started", None) or now(),
        "quick": bool(getattr(args, "quick", False)),
        "iterations": iterations or {},
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def machine(env: dict) -> str:
    """Short hardware name for file names: h200, or cpu without a GPU."""
    if env.get("gpu", "none") == "none":
        return "cpu"
    name = re.sub(r"[^a-z0-9]+", "-", env["gpu"].lower()).strip("-")
    return name.removeprefix("nvidia-")


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


def write_diagnostic(name: str, gpu: str, rows: list, **fields) -> Path:
    """A diagnostic script's results (bench/diag, bench/ab_sweep.py): $OUT/<name>.json
    ($OUT: the device tool's output folder, else here) with the card's name,
    the revision (git_revision), `fields` and `rows`."""
    path = Path(os.environ.get("OUT", ".")) / f"{name}.json"
    with open(path, "w") as f:
        json.dump({"gpu": gpu, "revision": git_revision(), **fields, "rows": rows}, f, indent=1)
    return path


def write_json(args, payload: dict) -> Path | None:
    """<args.out>/<date>-<machine>-<suite>[-quick].json: the name bench/results
    uses, so a run's file can be committed as it is. Noted in args.written."""
    if not getattr(args, "out", None):
        return None
    run, env = payload["run"], payload["env"]
    name = f"{run['time'][:10]}-{machine(env)}-{run['suite']}" + ("-quick" if run["quick"] else "")
    p = Path(args.out)
    p.mkdir(parents=True, exist_ok=True)
    path = p / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
    if isinstance(getattr(args, "written", None), list):
        args.written.append(path)
    return path


def skip_reason() -> str:
    """Why GPU parts are skipped, whole (the loader's list of paths tried is
    what a user needs to fix it)."""
    return f"no CUDA device: {cuda.unavailable_reason()}"


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

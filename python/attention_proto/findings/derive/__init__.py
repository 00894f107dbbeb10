"""Findings from results files: one module per bench suite, each `derive(run)`
returning the findings that run answers. Deterministic: the same files give
the same records (times are the runs' own, ids are stable, order is by id)."""

from __future__ import annotations

from pathlib import Path

from ..sources import Run, load_runs
from . import (
    callpath,
    dsl,
    flash,
    foundation,
    hopper,
    linear,
    paged,
    specialization,
    stitching,
    variants,
)

SUITES = {
    "foundation": foundation.derive,
    "flash": flash.derive,
    "specialization": specialization.derive,
    "stitching": stitching.derive,
    "paged": paged.derive,
    "callpath": callpath.derive,
    "linear": linear.derive,
    "dsl": dsl.derive,
    "variants": variants.derive,
    "hopper": hopper.derive,
}


def derive_run(run: Run) -> list[dict]:
    if run.suite not in SUITES:
        raise ValueError(
            f"[findings] {run.path}: no derivation for suite {run.suite!r}; known: "
            f"{', '.join(SUITES)}"
        )
    try:
        return SUITES[run.suite](run)
    except (KeyError, StopIteration) as e:
        raise ValueError(f"[findings] {run.path}: results lack {e!s} ({run.suite})") from e


def derive_runs(runs: list[Run]) -> list[dict]:
    """Every question's latest answer: runs in time order, a later run's finding
    replacing an earlier one with the same id (the earlier file is listed in
    `supersedes`). Sorted by id."""
    latest: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: (r.time, r.path)):
        for record in derive_run(run):
            old = latest.get(record["id"])
            if old is not None:
                history = old["supersedes"] + [old["evidence"]["results"]]
                record["supersedes"] = sorted(set(history) - {record["evidence"]["results"]})
            latest[record["id"]] = record
    return [latest[k] for k in sorted(latest)]


def derive_repo(repo: Path) -> list[dict]:
    return derive_runs(load_runs(repo))

"""Recorded runs: bench/results/*.json and what is known about each.

A results file written by today's benchmarks carries a `run` block (suite,
command, revision, time, iteration counts) and its `env` the card, driver and
clocks. Files from earlier runs lack some of it; bench/results/provenance.json
supplies it per file from docs/gpu-notes.md, which named the command and commit
of every run. Provenance overrides the file (it also corrects what a file got
wrong, such as the callpath run's revision), so no results file is edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path("bench") / "results"
PROVENANCE = RESULTS_DIR / "provenance.json"
_NEEDED = ("suite", "command", "time")


@dataclass
class Run:
    path: str  # relative to the repository, as findings cite it
    data: dict
    meta: dict  # the file's run block, with provenance laid over it

    @property
    def env(self) -> dict:
        return self.data.get("env", {})

    @property
    def suite(self) -> str:
        return self.meta["suite"]

    @property
    def time(self) -> str:
        return self.meta["time"]

    @property
    def revision(self) -> str:
        return self.meta.get("revision") or "unknown"

    @property
    def driver(self) -> str:
        return self.meta.get("driver") or self.env.get("driver") or "unknown"

    def get(self, key: str, default=None):
        """A value of the results, else one provenance filled in for an old file."""
        if key in self.data:
            return self.data[key]
        return self.meta.get("fill", {}).get(key, default)

    def iterations(self, table: str) -> int:
        """Timed repetitions behind each number of `table` (rows, sweep, ...)."""
        counts = self.meta.get("iterations", {})
        if table not in counts:
            raise ValueError(
                f"[findings] {self.path}: no iteration count for '{table}'; record it in "
                f"the run block or in {PROVENANCE}"
            )
        return int(counts[table])


def find_repo(start: str | Path | None = None) -> Path:
    """The repository holding bench/results: `start` or the working directory or
    one above it, else the source tree this package was installed from."""
    here = Path(start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[3]]
    for c in candidates:
        if (c / RESULTS_DIR).is_dir():
            return c
    raise FileNotFoundError(
        f"[findings] no {RESULTS_DIR}/ in {here} or above; run from the repository root "
        f"or pass --repo"
    )


def load_provenance(repo: Path) -> dict:
    p = repo / PROVENANCE
    return json.loads(p.read_text()) if p.exists() else {}


def load_run(path: Path, repo: Path, provenance: dict | None = None) -> Run:
    data = json.loads(path.read_text())
    try:
        rel = path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        rel = path.as_posix()  # a run outside the repository (the main job's out/)
    prov = (provenance if provenance is not None else load_provenance(repo)).get(path.name, {})
    meta = dict(data.get("run", {}))
    meta.update(prov)
    missing = [k for k in _NEEDED if not meta.get(k)]
    if missing:
        raise ValueError(
            f"[findings] {rel}: no {', '.join(missing)} in its run block or in {PROVENANCE}"
        )
    return Run(rel, data, meta)


def load_runs(repo: Path) -> list[Run]:
    """Every committed results file, oldest run first (so newer runs supersede)."""
    provenance = load_provenance(repo)
    paths = sorted(p for p in (repo / RESULTS_DIR).glob("*.json") if p.name != PROVENANCE.name)
    runs = [load_run(p, repo, provenance) for p in paths]
    return sorted(runs, key=lambda r: (r.time, r.path))

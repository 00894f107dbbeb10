"""The seed's rules for the findings as a whole, each reported pass or fail with
what broke it. Rules report; they never repair (a missing prototype stays
missing until a run measures it)."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import CV_LOW_CONFIDENCE, dumps, validate
from .prototypes import PROTOTYPES, label
from .sources import RESULTS_DIR

MIN_FINDINGS = 40
MIN_PER_PROTOTYPE = 2


@dataclass
class Outcome:
    rule: str
    passed: bool
    summary: str
    problems: list[str] = field(default_factory=list)


def _count(records) -> Outcome:
    n = len(records)
    return Outcome(
        "count",
        n >= MIN_FINDINGS,
        f"{n} findings (at least {MIN_FINDINGS})",
        [] if n >= MIN_FINDINGS else [f"{MIN_FINDINGS - n} short"],
    )


def _per_prototype(records) -> Outcome:
    counts = Counter(r.get("prototype") for r in records)
    problems = []
    for p in PROTOTYPES:
        got = counts.get(label(p.number), 0)
        if got < MIN_PER_PROTOTYPE:
            why = "not built yet" if not p.built else f"measured by bench {p.suite}"
            problems.append(
                f"{label(p.number)} ({p.name}: {why}) has {got}, needs {MIN_PER_PROTOTYPE}"
            )
    summary = ", ".join(f"{label(p.number)} {counts.get(label(p.number), 0)}" for p in PROTOTYPES)
    return Outcome("per-prototype", not problems, summary, problems)


def _schema(records) -> Outcome:
    problems = []
    for r in records:
        try:
            validate(r)
        except ValueError as e:
            problems.append(f"{r.get('id', '?')}: {e}")
    return Outcome(
        "fields", not problems, "required fields and types, prototype = domain's", problems
    )


def _confidence(records) -> Outcome:
    problems = [
        f"{r['id']}: high with CV {r['evidence'].get('cv')!r}"
        for r in records
        if r.get("confidence") == "high"
        and (r["evidence"].get("cv") is None or r["evidence"]["cv"] >= CV_LOW_CONFIDENCE)
    ]
    return Outcome("confidence", not problems, "high only where CV < 5 %", problems)


def _unique(records) -> Outcome:
    dup = [k for k, c in Counter(r.get("id") for r in records).items() if c > 1]
    return Outcome(
        "one-per-question",
        not dup,
        "no two findings share an id",
        [f"{k} appears more than once" for k in sorted(dup)],
    )


def _committed(repo: Path, paths: set[str]) -> tuple[set[str] | None, str]:
    """The paths git tracks, or None where the tree is not a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "--", *sorted(paths)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"git unavailable ({e}): checked existence only"
    if out.returncode != 0:
        return None, "not a git work tree: checked existence only"
    return set(out.stdout.split()), "committed results files"


def _traceable(records, repo: Path) -> Outcome:
    cited = {r["evidence"].get("results", "") for r in records}
    tracked, how = _committed(repo, cited)
    problems = []
    for r in records:
        ev = r["evidence"]
        path = ev.get("results", "")
        if not path.startswith(RESULTS_DIR.as_posix() + "/") or not (repo / path).is_file():
            problems.append(f"{r['id']}: results file {path!r} not under {RESULTS_DIR}/")
        elif tracked is not None and path not in tracked:
            problems.append(f"{r['id']}: {path} is not committed")
        if ev.get("git_revision") in (None, "", "unknown"):
            problems.append(f"{r['id']}: no git revision for {path}")
    return Outcome("traceable", not problems, f"evidence cites {how} and a revision", problems)


def _generated(text: str | None, derived: list[dict] | None) -> Outcome:
    if derived is None or text is None:
        return Outcome("generated", True, "not checked (no derivation given)")
    same = text == dumps(derived)
    return Outcome(
        "generated",
        same,
        "the file equals the derivation from committed results",
        [] if same else ["run `python -m attention_proto.findings derive` and commit"],
    )


def check(records: list[dict], repo: Path, *, text=None, derived=None) -> list[Outcome]:
    """Every rule over `records` (the file's findings); `text` and `derived` (the
    file's bytes and a fresh derivation) enable the never-edited-by-hand rule."""
    return [
        _count(records),
        _per_prototype(records),
        _schema(records),
        _confidence(records),
        _unique(records),
        _traceable(records, repo),
        _generated(text, derived),
    ]

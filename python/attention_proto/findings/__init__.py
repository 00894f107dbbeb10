"""Findings: measured facts, each derived by code from a recorded results file.

Nobody writes a finding by hand and no benchmark writes one: the code under
`findings/derive/` reads bench/results/*.json and produces them, so regenerating
findings/findings.jsonl from the committed results is one command
(`python -m attention_proto.findings derive`) and gives the same bytes.

Each finding answers one question, named by its `id` (`<domain>.<question>@
<hardware>`): a newer run of the same question on the same hardware supersedes
the older one instead of sitting beside it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .prototypes import DOMAINS, for_domain, label

CONFIDENCES = ("high", "medium", "low")
CV_LOW_CONFIDENCE = 0.05  # the seed's rule: "high" only where CV < 5 %
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.+-]*@[a-z0-9][a-z0-9-]*$")


@dataclass
class Evidence:
    gpu: str
    driver: str
    config: dict
    metric: str
    value: float
    unit: str
    cv: float | None
    n: int
    time: str  # when the run measured it (never when the finding was derived)
    git_revision: str
    results: str  # the results file it came from, relative to the repository


@dataclass
class Finding:
    id: str
    domain: str
    title: str
    content: str
    tags: list[str]
    confidence: str
    source: str  # the command of the run
    evidence: Evidence
    prototype: str = ""
    supersedes: list[str] = field(default_factory=list)  # older results files, same question

    def __post_init__(self):
        self.prototype = self.prototype or label(for_domain(self.domain).number)
        validate(self.to_dict())

    def to_dict(self) -> dict:
        return asdict(self)


def confidence_for(cv: float | None) -> str:
    """high below 5 % CV, low at or above; medium where no CV could be measured."""
    if cv is None:
        return "medium"
    return "high" if cv < CV_LOW_CONFIDENCE else "low"


_REQUIRED = {
    "id": str,
    "prototype": str,
    "domain": str,
    "title": str,
    "content": str,
    "tags": list,
    "confidence": str,
    "source": str,
    "evidence": dict,
    "supersedes": list,
}
_EVIDENCE = {
    "gpu": str,
    "driver": str,
    "config": dict,
    "metric": str,
    "value": (int, float),
    "unit": str,
    "n": int,
    "time": str,
    "git_revision": str,
    "results": str,
}


def validate(record: dict) -> None:
    """Raise ValueError naming the first field that breaks the schema."""
    for key, typ in _REQUIRED.items():
        if not isinstance(record.get(key), typ):
            raise ValueError(
                f"[findings] field '{key}' must be {typ.__name__}, got {record.get(key)!r}"
            )
    if not ID_PATTERN.match(record["id"]):
        raise ValueError(
            f"[findings] id must look like 'domain.question@hardware', got {record['id']!r}"
        )
    if record["domain"] not in DOMAINS:
        raise ValueError(f"[findings] domain must be one of {DOMAINS}, got {record['domain']!r}")
    want = label(for_domain(record["domain"]).number)
    if record["prototype"] != want:
        raise ValueError(
            f"[findings] domain {record['domain']!r} is {want}, got prototype "
            f"{record['prototype']!r}"
        )
    if record["confidence"] not in CONFIDENCES:
        raise ValueError(
            f"[findings] confidence must be one of {CONFIDENCES}, got {record['confidence']!r}"
        )
    ev = record["evidence"]
    for key, typ in _EVIDENCE.items():
        if not isinstance(ev.get(key), typ) or isinstance(ev.get(key), bool):
            raise ValueError(
                f"[findings] evidence field '{key}' has the wrong type: {ev.get(key)!r}"
            )
    cv = ev.get("cv")
    if cv is not None and (not isinstance(cv, (int, float)) or isinstance(cv, bool)):
        raise ValueError(f"[findings] evidence field 'cv' must be a number or null, got {cv!r}")
    if record["confidence"] == "high" and (cv is None or cv >= CV_LOW_CONFIDENCE):
        raise ValueError(
            f"[findings] {record['id']}: high confidence needs a CV below 5 %, got {cv!r}"
        )


def default_path() -> Path:
    return Path(os.environ.get("ATTENTION_PROTO_FINDINGS", "findings/findings.jsonl"))


def dumps(records: list[dict]) -> str:
    """One JSON line per finding, sorted by id, keys sorted: the same records
    always give the same bytes."""
    ordered = sorted(records, key=lambda r: r["id"])
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered)


def write_findings(records: list[dict], path: str | os.PathLike) -> Path:
    """Replace the file whole (temp file + rename: a reader never sees half)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(dumps(records))
    os.replace(tmp, p)
    return p


def read_findings(path: str | os.PathLike | None = None) -> list[dict]:
    """Every finding in the file, each validated; raises naming the bad line."""
    p = Path(path) if path else default_path()
    out = []
    with open(p, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                validate(record)
            except (json.JSONDecodeError, ValueError) as e:
                raise ValueError(f"[findings] {p}:{number}: {e}") from e
            out.append(record)
    return out

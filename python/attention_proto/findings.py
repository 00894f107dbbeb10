"""Findings: each a measured fact (GPU, config, metric, CV), one JSON line each.

A finding is only ever written by the code that measured it; `source` names the
command, and `evidence` carries the numbers and where they came from.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

DOMAINS = (
    "runtime",
    "flash",
    "specialization",
    "stitching",
    "paged",
    "linear",
    "variants",
    "dsl",
    "integration",
)
CONFIDENCES = ("high", "medium", "low")
CV_LOW_CONFIDENCE = 0.05  # a finding whose CV reaches 5 % is downgraded


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
    time: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    git_revision: str = field(default_factory=lambda: git_revision())


@dataclass
class Finding:
    domain: str
    title: str
    content: str
    tags: list[str]
    confidence: str
    source: str  # the command that produced it
    evidence: Evidence

    def __post_init__(self):
        validate(self.to_dict())

    def to_dict(self) -> dict:
        return asdict(self)


def git_revision() -> str:
    """$ATTENTION_PROTO_GIT_REVISION (set where the tree travels without .git), else git."""
    if os.environ.get("ATTENTION_PROTO_GIT_REVISION"):
        return os.environ["ATTENTION_PROTO_GIT_REVISION"]
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def confidence_for(cv: float | None, default: str = "high") -> str:
    """High unless the measurement is noisy (CV >= 5 % gives 'low')."""
    if cv is not None and cv >= CV_LOW_CONFIDENCE:
        return "low"
    return default


_REQUIRED = {
    "domain": str,
    "title": str,
    "content": str,
    "tags": list,
    "confidence": str,
    "source": str,
    "evidence": dict,
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
}


def validate(record: dict) -> None:
    """Raise ValueError naming the first field that breaks the schema."""
    for key, typ in _REQUIRED.items():
        if not isinstance(record.get(key), typ):
            raise ValueError(
                f"[findings] field '{key}' must be {typ.__name__}, got {record.get(key)!r}"
            )
    if record["domain"] not in DOMAINS:
        raise ValueError(f"[findings] domain must be one of {DOMAINS}, got {record['domain']!r}")
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
    if ev.get("cv") is not None and not isinstance(ev["cv"], (int, float)):
        raise ValueError(
            f"[findings] evidence field 'cv' must be a number or null, got {ev['cv']!r}"
        )
    if ev["cv"] is not None and ev["cv"] >= CV_LOW_CONFIDENCE and record["confidence"] == "high":
        raise ValueError("[findings] a finding with CV >= 5 % cannot have high confidence")


def default_path() -> Path:
    return Path(os.environ.get("ATTENTION_PROTO_FINDINGS", "findings/findings.jsonl"))


def emit_finding(finding: Finding, path: str | os.PathLike | None = None) -> Path:
    """Append one JSON line under an exclusive lock (safe with concurrent writers)."""
    p = Path(path) if path else default_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(finding.to_dict(), sort_keys=True) + "\n"
    with open(p, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
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

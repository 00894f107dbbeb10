"""What every suite's derivation shares: a finding built from one run, its id
scoped to the hardware that measured it, its CV and n from the data."""

from __future__ import annotations

import math
import re

from .. import Evidence, Finding, confidence_for
from ..sources import Run


def slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def gpu_scope(env: dict) -> str:
    return slug(env.get("gpu", "none"))


def cpu_scope(env: dict) -> str:
    """Compiles run on the host CPU: its model and core count name the hardware."""
    return f"{slug(env.get('cpu', 'unknown'))}-{env.get('cores', 0)}c"


def ratio_cv(*cvs: float | None) -> float | None:
    """CV of a ratio of independent measurements (relative errors add in
    quadrature); None when any input has none."""
    if any(c is None for c in cvs):
        return None
    return math.sqrt(sum(c * c for c in cvs))


class Findings:
    """Collects the findings one run gives."""

    def __init__(self, run: Run):
        self.run = run
        self.records: list[dict] = []

    def add(
        self,
        key: str,
        domain: str,
        title: str,
        content: str,
        tags: list[str],
        *,
        metric: str,
        value: float,
        unit: str,
        cv: float | None,
        n: int,
        config: dict,
        scope: str = "gpu",
        ceiling: str = "high",
    ) -> None:
        """`key` names the question within its domain; `scope` 'gpu' or 'cpu' says
        which hardware the answer belongs to; `ceiling` caps the confidence
        (e.g. 'medium' for a measurement no longer at the shipped configuration)."""
        env = self.run.env
        where = gpu_scope(env) if scope == "gpu" else cpu_scope(env)
        confidence = confidence_for(cv)
        order = ("high", "medium", "low")
        confidence = order[max(order.index(confidence), order.index(ceiling))]
        finding = Finding(
            id=f"{domain}.{key}@{where}",
            domain=domain,
            title=title,
            content=content,
            tags=sorted(tags),
            confidence=confidence,
            source=self.run.meta["command"],
            evidence=Evidence(
                gpu=env.get("gpu", "none"),
                driver=self.run.driver,
                config=config,
                metric=metric,
                value=float(value),
                unit=unit,
                cv=None if cv is None else float(cv),
                n=int(n),
                time=self.run.time,
                git_revision=self.run.revision,
                results=self.run.path,
            ),
        )
        self.records.append(finding.to_dict())

"""The report's Markdown: findings looked up by id, each cited as a link to its
row in the appendix, numbers formatted one way. A finding that is missing is
written as such ("not measured"), never guessed."""

from __future__ import annotations

import re
from collections import Counter


def anchor(ident: str) -> str:
    return "f-" + re.sub(r"[^a-z0-9]+", "-", ident.lower()).strip("-")


def num(v: float, digits: int = 3) -> str:
    """Significant digits without scientific notation for the sizes we report."""
    if v == 0 or abs(v) >= 10 ** (digits - 1):
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


class Doc:
    def __init__(self, records: list[dict]):
        self.by_id = {r["id"]: r for r in records}
        self.cited: list[str] = []
        self.lines: list[str] = []
        scopes = Counter(
            i.split("@")[1] for i, r in self.by_id.items() if r["evidence"]["gpu"] != "none"
        )
        # The GPU most findings were measured on; the sections speak of it.
        self.gpu = scopes.most_common(1)[0][0] if scopes else "none"
        self.gpu_name = next(
            (r["evidence"]["gpu"] for i, r in self.by_id.items() if i.endswith("@" + self.gpu)),
            "no GPU",
        )

    def get(self, key: str, scope: str | None = None) -> dict | None:
        return self.by_id.get(f"{key}@{scope or self.gpu}")

    def find(self, prefix: str) -> list[dict]:
        """Findings whose id starts with `prefix`, by id."""
        return [self.by_id[i] for i in sorted(self.by_id) if i.startswith(prefix)]

    def cite(self, record: dict | None) -> str:
        if record is None:
            return "(not measured)"
        if record["id"] not in self.cited:
            self.cited.append(record["id"])
        return f"[{record['id']}](#{anchor(record['id'])})"

    def value(self, record: dict | None, digits: int = 3) -> str:
        if record is None:
            return "not measured"
        ev = record["evidence"]
        v, unit = ev["value"], ev["unit"]
        if unit == "%":  # signed, to a tenth where that means something
            return f"{v:+.2f}%" if abs(v) < 1 else f"{v:+.{1 if abs(v) < 100 else 0}f}%"
        return num(v, digits) + unit if unit == "x" else f"{num(v, digits)} {unit}"

    def span(self, records: list[dict], digits: int = 3) -> str:
        """'0.97x-1.02x': the range of a family of findings."""
        vals = sorted(r["evidence"]["value"] for r in records)
        unit = records[0]["evidence"]["unit"]
        lo, hi = num(vals[0], digits), num(vals[-1], digits)
        return f"{lo}{unit}-{hi}{unit}" if unit == "x" else f"{lo}-{hi} {unit}"

    def cite_all(self, records: list[dict]) -> str:
        return ", ".join(self.cite(r) for r in records)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(r) + " |" for r in rows))
        self.add("")

    def appendix(self) -> None:
        self.add("## Findings cited", "")
        self.add(
            "Each row is one finding of `findings/findings.jsonl` (`python -m attention_proto.kb "
            "show ID` prints it whole).",
            "",
        )
        rows = []
        for i in sorted(self.cited):
            r = self.by_id[i]
            ev = r["evidence"]
            cv = "-" if ev["cv"] is None else f"{ev['cv'] * 100:.1f} %"
            rows.append(
                [
                    f'<a id="{anchor(i)}"></a>`{i}`',
                    self.value(r, 4),
                    str(ev["n"]),
                    cv,
                    r["confidence"],
                    f"[{ev['results'].rsplit('/', 1)[-1]}]({ev['results']}) @ {ev['git_revision']}",
                ]
            )
        self.table(["id", "value", "n", "CV", "confidence", "results @ revision"], rows)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"

"""python -m attention_proto.findings derive|validate [--repo DIR]

derive    regenerate findings/findings.jsonl from bench/results/*.json
          (--check: exit 1 if the committed file differs instead of writing)
validate  the seed's rules, each printed PASS or FAIL; exit 1 if any fails
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import read_findings, write_findings
from .derive import derive_repo
from .rules import check
from .sources import find_repo

FINDINGS = Path("findings") / "findings.jsonl"


def _derive(repo: Path, args) -> int:
    records = derive_repo(repo)
    path = Path(args.file) if args.file else repo / FINDINGS
    if args.check:
        outcome = check(records, repo, text=_read(path), derived=records)[-1]
        print(f"{'PASS' if outcome.passed else 'FAIL'} {path}: {outcome.summary}")
        for p in outcome.problems:
            print(f"  - {p}")
        return 0 if outcome.passed else 1
    write_findings(records, path)
    print(f"wrote {len(records)} findings to {path}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _validate(repo: Path, args) -> int:
    path = Path(args.file) if args.file else repo / FINDINGS
    text = _read(path)
    if text is None:
        print(f"[findings] no findings file at {path}", file=sys.stderr)
        return 1
    records = read_findings(path) if text.strip() else []
    outcomes = check(records, repo, text=text, derived=derive_repo(repo))
    for o in outcomes:
        print(f"{'PASS' if o.passed else 'FAIL'} {o.rule}: {o.summary}")
        for p in o.problems:
            print(f"  - {p}")
    failed = [o.rule for o in outcomes if not o.passed]
    print(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} rules pass"
        + (f"; failing: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attention_proto.findings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("derive", "validate"))
    parser.add_argument("--repo", help="repository root (default: found from the working dir)")
    parser.add_argument("--file", help=f"findings file (default: <repo>/{FINDINGS})")
    parser.add_argument("--check", action="store_true", help="derive: compare, do not write")
    args = parser.parse_args(argv)
    try:
        repo = find_repo(args.repo)
        return (_derive if args.command == "derive" else _validate)(repo, args)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m attention_proto.report [--repo DIR] [--out FILE] [--plots DIR]

Writes SYNTHESIS.md (the seed's six questions answered from the findings) and
its plots under docs/synthesis/ (PNG; needs matplotlib: pip install ".[report]").
Run `python -m attention_proto.findings derive` first after adding results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..findings.sources import find_repo
from . import render


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attention_proto.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo", help="repository root (default: found from the working dir)")
    parser.add_argument("--out", help="the Markdown file (default: <repo>/SYNTHESIS.md)")
    parser.add_argument("--plots", help="directory for the PNGs (default: <repo>/docs/synthesis)")
    args = parser.parse_args(argv)
    try:
        repo = find_repo(args.repo)
        report = render(
            repo,
            Path(args.out) if args.out else None,
            Path(args.plots) if args.plots else None,
        )
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"wrote {args.out or repo / 'SYNTHESIS.md'}")
    for p in report.plots:
        print(f"plot  {p}")
    if report.skipped_plots:
        print(f"no plots: {report.skipped_plots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

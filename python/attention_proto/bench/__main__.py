"""python -m attention_proto.bench [suite ...] [--out DIR] [--findings PATH]

Suites: foundation (default), flash, specialization, stitching, paged, callpath.
On a machine without a GPU, each suite runs what needs no GPU (compiles, archive
reads) and says what it skipped and why.
"""

from __future__ import annotations

import argparse
import importlib

SUITES = {
    "foundation": ".foundation",
    "flash": ".flash",
    "specialization": ".specialization",
    "stitching": ".stitching",
    "paged": ".paged",
    "callpath": ".callpath",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_proto.bench")
    parser.add_argument("suites", nargs="*", help=f"any of {', '.join(SUITES)}")
    parser.add_argument("--out", help="directory for JSON results")
    parser.add_argument("--findings", help="append findings (JSON lines) to this file")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions")
    args = parser.parse_args(argv)
    for name in args.suites or ["foundation"]:
        if name not in SUITES:
            parser.error(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
        print(f"== {name}")
        importlib.import_module(SUITES[name], __package__).run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m attention_proto.bench [SUITE ...] [--out DIR] [--findings PATH] [--quick]

Runs each suite (default: foundation), writes its results JSON to DIR (default
./out) as <date>-<machine>-<suite>.json, then the findings derived from those
files to PATH (default DIR/findings.jsonl), and says where on exit. On a machine
without a GPU each suite runs what needs none (compiles, archive reads) and
prints what it skipped and why. `python -m attention_proto.bench SUITE --help`
describes one suite.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from .common import PROG, now

# name -> (module, one line, what it needs beyond the package)
SUITES = {
    "foundation": (
        ".foundation",
        "cold compile of every shipped kernel, archive read/load, dispatch overhead",
        "nothing; a CUDA GPU adds module load and dispatch overhead",
    ),
    "flash": (
        ".flash",
        "Proto 1: flash tile sweep and TFLOP/s against SDPA backends and Flex",
        "a CUDA GPU and torch",
    ),
    "specialization": (
        ".specialization",
        "Proto 4: cold compile of 1-500 variants, the 72-variant archive",
        "nothing; a CUDA GPU adds archive loads and first-dispatch times",
    ),
    "stitching": (
        ".stitching",
        "Proto 2: monolithic vs inline vs function-table loop bodies",
        "nothing for the SASS facts; a CUDA GPU and torch for timing",
    ),
    "paged": (
        ".paged",
        "Proto 3: paged decode bandwidth, paging cost, split, peers",
        "a CUDA GPU and torch",
    ),
    "linear": (
        ".linear",
        "Proto 6: chunked linear attention per chunk size vs causal softmax: crossover T",
        "a CUDA GPU and torch; fla (optional) adds its chunk kernel",
    ),
    "callpath": (
        ".callpath",
        "Proto 8 and the public call: call vs kernel vs SDPA, host cost, custom ops",
        "a CUDA GPU and torch",
    ),
    "variants": (
        ".variants",
        "Proto 7: RoPE standalone, ALiBi fused, GQA group sizes: cost against plain attention",
        "a CUDA GPU and torch",
    ),
    "hopper": (
        ".hopper",
        "Proto 1, Hopper: the wgmma kernel's ablation steps and tiles vs cuDNN, FA2, Flex",
        "an sm_90a GPU and torch",
    ),
    "dsl": (
        ".dsl",
        "Proto 5: the Triton twin vs the hand-written kernel vs cuDNN; code-quality table",
        'triton (pip install ".[triton]") for the SASS table; a CUDA GPU and torch for timing',
    ),
}
DEFAULT_OUT = "out"


def _module(name):
    return importlib.import_module(SUITES[name][0], __package__)


def _summary(name) -> str:
    return SUITES[name][1]


def _options(parser) -> None:
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help="results JSON go here (%(default)s)"
    )
    parser.add_argument(
        "--findings", metavar="PATH", help="findings derived from this run (DIR/findings.jsonl)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions")


def _suite_help(name) -> str:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {name}",
        description=(_module(name).__doc__ or "").strip(),
        epilog=f"Needs: {SUITES[name][2]}. Writes DIR/<date>-<machine>-{name}.json and the "
        f"findings derived from it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(parser)
    return parser.format_help()


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {n:<15} {_summary(n)}" for n in SUITES)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n", 1)[1],
        epilog="suites:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="default: foundation")
    _options(parser)
    return parser


def _derive(args) -> int:
    """Findings from the files this run wrote (never appended: derived whole)."""
    from ..findings import write_findings
    from ..findings.derive import derive_runs
    from ..findings.sources import load_run

    if not args.written:
        print("no results written (every suite skipped): no findings derived")
        return 0
    try:
        runs = [load_run(p, Path.cwd(), {}) for p in args.written]
        records = derive_runs(runs)
    except ValueError as e:
        print(f"[bench] could not derive findings: {e}", file=sys.stderr)
        return 1
    path = write_findings(records, args.findings or Path(args.out) / "findings.jsonl")
    print(f"findings: {len(records)} in {path.resolve()}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    named = [a for a in argv if a in SUITES]
    if {"-h", "--help"} & set(argv) and len(named) == 1:
        print(_suite_help(named[0]))
        return 0
    parser = _parser()
    args = parser.parse_args(argv)
    for name in args.suites:
        if name not in SUITES:
            parser.error(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    args.argv, args.written = argv, []
    suites = args.suites or ["foundation"]
    for i, name in enumerate(suites, 1):
        print(f"== [{i}/{len(suites)}] {name}: {_summary(name)}", flush=True)
        args.started = now()
        t0 = time.perf_counter()
        _module(name).run(args)
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    for p in args.written:
        print(f"results: {p.resolve()}")
    status = _derive(args)
    if args.written:
        print(
            "To add a run to the project's knowledge: commit its JSON under bench/results/, "
            "then `python -m attention_proto.findings derive`."
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m attention_proto.kb ingest [FILE] | query TEXT [filters] | show ID

ingest  load findings (default: the repository's findings/findings.jsonl);
        repeating it adds nothing
query   ranked full-text search over title, content and tags, e.g.
        query "tile size D=128" --prototype 1 --gpu h200 --since 2026-11-28
show    one finding in full (an id, or the start of one)

The database is $ATTENTION_PROTO_KB, else ~/.cache/attention_proto/kb.sqlite
(--db to choose).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import findings
from ..findings.sources import find_repo
from . import connect, count, default_path, ingest, query, show


def _value(r: dict) -> str:
    ev = r["evidence"]
    cv = "" if ev["cv"] is None else f", CV {ev['cv'] * 100:.1f}%"
    return f"{ev['value']:.4g} {ev['unit']} (n={ev['n']}{cv}, {r['confidence']})"


def _ingest(conn, args) -> int:
    path = Path(args.file) if args.file else find_repo() / "findings" / "findings.jsonl"
    report = ingest(conn, findings.read_findings(path))
    print(
        f"{path}: {report.added} added, {report.replaced} replaced by a newer run, "
        f"{report.unchanged} unchanged, {report.older} older than held; {count(conn)} in "
        f"{args.db or default_path()}"
    )
    return 0


def _query(conn, args) -> int:
    if count(conn) == 0:
        print("[kb] the knowledge base is empty: run `python -m attention_proto.kb ingest`")
        return 1
    hits = query(
        conn,
        " ".join(args.text),
        prototype=args.prototype,
        gpu=args.gpu,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    for i, r in enumerate(hits, 1):
        print(f"{i:2d}. {r['id']}  [{r['prototype']}]")
        print(f"    {r['title']}: {_value(r)}")
    if not hits:
        print("no findings match")
    return 0 if hits else 1


def _show(conn, args) -> int:
    r = show(conn, args.id)
    ev = r["evidence"]
    print(f"{r['title']}\n{r['id']}  [{r['prototype']}, {r['domain']}]")
    print(f"\n{r['content']}\n")
    print(f"value     {_value(r)}")
    print(f"metric    {ev['metric']}  config {ev['config']}")
    print(
        f"measured  {ev['time']} on {ev['gpu']} (driver {ev['driver']}), rev {ev['git_revision']}"
    )
    print(f"results   {ev['results']}")
    print(f"command   {r['source']}")
    print(f"tags      {', '.join(r['tags'])}")
    if r["supersedes"]:
        print(f"replaces  {', '.join(r['supersedes'])}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attention_proto.kb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", help="database file (default: see above)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest", help="load a findings file")
    p.add_argument("file", nargs="?")
    p = sub.add_parser("query", help="ranked full-text search")
    p.add_argument("text", nargs="*", help="words to look for (none: list by id)")
    p.add_argument("--prototype", help="1-8 or proto1-proto8")
    p.add_argument("--gpu", help="substring of the GPU or hardware, e.g. h200, epyc")
    p.add_argument("--since", help="measured on or after (ISO date/time prefix)")
    p.add_argument("--until", help="measured on or before (ISO date/time prefix)")
    p.add_argument("--limit", type=int, default=10)
    p = sub.add_parser("show", help="one finding in full")
    p.add_argument("id")
    args = parser.parse_args(argv)
    try:
        with connect(args.db) as conn:
            return {"ingest": _ingest, "query": _query, "show": _show}[args.command](conn, args)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(e.args[0] if isinstance(e, KeyError) else e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The knowledge base: findings in an embedded SQLite database with FTS5, for
ranked full-text search over title, content and tags, filtered by prototype,
GPU and date. Derived data: ingest reads a findings file and can be repeated.

Ingest is idempotent and follows supersession: a finding already held with the
same content is left alone, one with the same id from a run at least as new
replaces it, an older one is ignored. Nothing is ever duplicated.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .. import findings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
  id TEXT PRIMARY KEY,
  prototype TEXT NOT NULL,
  domain TEXT NOT NULL,
  gpu TEXT NOT NULL,
  time TEXT NOT NULL,
  title TEXT NOT NULL,
  confidence TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS findings_text USING fts5(
  id UNINDEXED, title, content, tags, tokenize = 'porter unicode61'
);
"""
# bm25 column weights (id, title, content, tags): a word in the title or the
# tags says more about what a finding answers than one in its prose.
_WEIGHTS = (0.0, 8.0, 1.0, 4.0)


def default_path() -> Path:
    env = os.environ.get("ATTENTION_PROTO_KB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "attention_proto" / "kb.sqlite"


def connect(path: str | os.PathLike | None = None) -> sqlite3.Connection:
    p = Path(path) if path else default_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(p)
    conn.row_factory = sqlite3.Row
    try:
        conn.executescript(_SCHEMA)
    except sqlite3.OperationalError as e:
        raise RuntimeError(f"[kb] this Python's SQLite lacks FTS5 ({e})") from e
    return conn


@dataclass
class IngestReport:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    older: int = 0  # held a newer run's answer to the same question


def ingest(conn: sqlite3.Connection, records: list[dict]) -> IngestReport:
    report = IngestReport()
    with conn:
        for r in records:
            findings.validate(r)
            text = json.dumps(r, sort_keys=True)
            held = conn.execute("SELECT time, record FROM findings WHERE id = ?", (r["id"],))
            row = held.fetchone()
            if row is not None and row["record"] == text:
                report.unchanged += 1
                continue
            if row is not None and row["time"] > r["evidence"]["time"]:
                report.older += 1
                continue
            conn.execute("DELETE FROM findings WHERE id = ?", (r["id"],))
            conn.execute("DELETE FROM findings_text WHERE id = ?", (r["id"],))
            ev = r["evidence"]
            conn.execute(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r["id"],
                    r["prototype"],
                    r["domain"],
                    ev["gpu"],
                    ev["time"],
                    r["title"],
                    r["confidence"],
                    text,
                ),
            )
            conn.execute(
                "INSERT INTO findings_text VALUES (?, ?, ?, ?)",
                # The metric's words (archive_load_speedup) index as tags do.
                (
                    r["id"],
                    r["title"],
                    r["content"],
                    " ".join([*r["tags"], r["prototype"], ev["metric"]]),
                ),
            )
            if row is None:
                report.added += 1
            else:
                report.replaced += 1
    return report


def _match(text: str) -> str:
    """Words of the query, each quoted (so 'D=128' is the words d and 128, not
    FTS5 syntax), joined by OR: bm25 ranks findings with more of them first.
    A name=number pair also gives the joined word the findings' tags and ids
    use ('D=128' adds d128, 'N = 8192' n8192)."""
    lower = text.lower()
    words = re.findall(r"\w+", lower)
    words += [a + b for a, b in re.findall(r"\b([a-z]+)\s*=\s*(\d+)\b", lower)]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def query(
    conn: sqlite3.Connection,
    text: str = "",
    *,
    prototype: str | int | None = None,
    gpu: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 10,
) -> list[dict]:
    """Findings ranked by relevance to `text` (all of them, by id, without text);
    `prototype` 3 or 'proto3', `gpu` a substring of the GPU or of the hardware
    the id names ('h200', 'epyc'), dates as ISO prefixes
    ('2026-11-28'), `until` inclusive."""
    where, params = [], []
    if prototype is not None:
        p = str(prototype)
        where.append("f.prototype = ?")
        params.append(p if p.startswith("proto") else f"proto{p}")
    if gpu:
        # The GPU's name, or the hardware an id is scoped to (CPU-only runs: 'epyc').
        where.append("(lower(f.gpu) LIKE ? OR substr(f.id, instr(f.id, '@')) LIKE ?)")
        params += [f"%{gpu.lower()}%"] * 2
    if since:
        where.append("f.time >= ?")
        params.append(since)
    if until:
        where.append("substr(f.time, 1, ?) <= ?")
        params += [len(until), until]
    match = _match(text)
    if match:
        sql = (
            "SELECT f.record, bm25(findings_text, ?, ?, ?, ?) AS score FROM findings_text "
            "JOIN findings f ON f.id = findings_text.id WHERE findings_text MATCH ?"
        )
        params = [*_WEIGHTS, match, *params]
        order = "score, f.id"
    else:
        sql = "SELECT f.record, 0.0 AS score FROM findings f WHERE 1"
        order = "f.id"
    sql += "".join(f" AND {w}" for w in where) + f" ORDER BY {order} LIMIT ?"
    rows = conn.execute(sql, [*params, limit]).fetchall()
    return [dict(json.loads(r["record"]), _score=-r["score"]) for r in rows]


def show(conn: sqlite3.Connection, ident: str) -> dict:
    """The finding with this id, or the only one whose id starts with it."""
    rows = conn.execute(
        "SELECT record FROM findings WHERE substr(id, 1, ?) = ? ORDER BY id", (len(ident), ident)
    ).fetchall()
    exact = [r for r in rows if json.loads(r["record"])["id"] == ident]
    rows = exact or rows
    if len(rows) != 1:
        found = "nothing" if not rows else f"{len(rows)} findings"
        raise KeyError(f"[kb] {ident!r} names {found}; use a full id (kb query lists them)")
    return json.loads(rows[0]["record"])


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM findings").fetchone()[0]

"""The knowledge base: ingest, idempotence, supersession, ranked queries,
filters and show, on the committed findings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from attention_proto import findings, kb
from attention_proto.kb import __main__ as cli

COMMITTED = Path(__file__).resolve().parents[1] / "findings" / "findings.jsonl"


@pytest.fixture(scope="module")
def records():
    if not COMMITTED.exists():
        pytest.skip(f"no findings at {COMMITTED}")
    return findings.read_findings(COMMITTED)


@pytest.fixture
def conn(tmp_path, records):
    c = kb.connect(tmp_path / "kb.sqlite")
    kb.ingest(c, records)
    yield c
    c.close()


def _text_rows(conn):
    return conn.execute("SELECT count(*) FROM findings_text").fetchone()[0]


def test_ingest_is_idempotent(conn, records):
    assert kb.count(conn) == len(records) == _text_rows(conn)
    again = kb.ingest(conn, records)
    assert (again.added, again.replaced, again.unchanged) == (0, 0, len(records))
    assert kb.count(conn) == len(records) == _text_rows(conn)


def test_a_newer_run_replaces_an_older_one_is_ignored(conn, records):
    newer = copy.deepcopy(records[0])
    newer["evidence"]["time"] = "2099-01-01T00:00:00+00:00"
    newer["evidence"]["value"] = 1.0
    assert kb.ingest(conn, [newer]).replaced == 1
    older = copy.deepcopy(records[0])
    older["evidence"]["time"] = "2000-01-01T00:00:00+00:00"
    assert kb.ingest(conn, [older]).older == 1
    assert kb.show(conn, newer["id"])["evidence"]["value"] == 1.0
    assert kb.count(conn) == len(records) == _text_rows(conn)


def test_query_ranks_the_finding_that_answers_first(conn):
    top = kb.query(conn, "tile size D=128")[0]
    assert top["id"].startswith("flash.best-tile.d128")
    top = kb.query(conn, "archive speedup")[0]
    assert "archive-load" in top["id"]
    top = kb.query(conn, "custom op overhead")[0]
    assert top["id"].startswith("integration.custom-op-overhead")
    scores = [r["_score"] for r in kb.query(conn, "paged decode bandwidth")]
    assert scores == sorted(scores, reverse=True)


def test_filters_by_prototype_gpu_and_date(conn):
    paged = kb.query(conn, "overhead", prototype=3, limit=100)
    assert paged and all(r["prototype"] == "proto3" for r in paged)
    assert kb.query(conn, "overhead", prototype="proto3", limit=100) == paged
    cpu = kb.query(conn, gpu="epyc", limit=100)
    assert cpu and all(r["id"].endswith("@amd-epyc-2c") for r in cpu)
    day2 = kb.query(conn, since="2026-11-29", limit=100)
    assert day2 and all(r["evidence"]["time"] >= "2026-11-29" for r in day2)
    day1 = kb.query(conn, until="2026-11-28", limit=100)
    assert day1 and not {r["id"] for r in day1} & {r["id"] for r in day2}


def test_query_text_is_never_fts_syntax(conn):
    for text in ('"', "D=128 AND (", "NEAR(tile", "*", "-", "col:value"):
        kb.query(conn, text)


def test_show_takes_an_id_or_a_unique_start(conn):
    r = kb.show(conn, "paged.gqa-mma-vs-lanes@nvidia-h200")
    assert r["evidence"]["value"] > 1.5
    assert kb.show(conn, "paged.gqa-mma")["id"] == r["id"]
    with pytest.raises(KeyError, match="findings"):
        kb.show(conn, "flash.")


def test_command_line(tmp_path, capsys):
    db = str(tmp_path / "cli.sqlite")
    assert cli.main(["--db", db, "query", "tile"]) == 1  # empty: says to ingest
    assert cli.main(["--db", db, "ingest", str(COMMITTED)]) == 0
    assert cli.main(["--db", db, "ingest", str(COMMITTED)]) == 0
    out = capsys.readouterr().out
    assert "0 added, 0 replaced" in out.splitlines()[-1]
    assert cli.main(["--db", db, "query", "tile size D=128", "--limit", "2"]) == 0
    assert "flash.best-tile.d128" in capsys.readouterr().out.splitlines()[0]
    assert cli.main(["--db", db, "show", "flash.best-tile.d128.n8192@nvidia-h200"]) == 0
    assert "bench/results/2026-11-28-h200-flash-v2.json" in capsys.readouterr().out


def test_name_number_pairs_also_match_the_joined_tag():
    # Findings tag head dims and lengths as d128 / n8192 and write D=128 in prose.
    assert kb._match("tile size D=128, N = 8192") == (
        '"tile" OR "size" OR "d" OR "128" OR "n" OR "8192" OR "d128" OR "n8192"'
    )

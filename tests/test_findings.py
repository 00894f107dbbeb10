"""Findings: schema, confidence rule, concurrent appends."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from attention_proto import findings


def _finding(cv=0.01, confidence="high", value=1.0):
    ev = findings.Evidence(
        gpu="TEST GPU", driver="0", config={"n": 1}, metric="m", value=value, unit="ms", cv=cv, n=10
    )
    return findings.Finding(
        domain="runtime",
        title="t",
        content="c",
        tags=["x"],
        confidence=confidence,
        source="pytest",
        evidence=ev,
    )


def test_emit_and_read_round_trip(tmp_path):
    path = tmp_path / "f.jsonl"
    findings.emit_finding(_finding(value=2.5), path)
    findings.emit_finding(_finding(value=3.5), path)
    got = findings.read_findings(path)
    assert [g["evidence"]["value"] for g in got] == [2.5, 3.5]
    assert got[0]["evidence"]["gpu"] == "TEST GPU"


def test_noisy_finding_cannot_claim_high_confidence():
    with pytest.raises(ValueError, match="CV >= 5"):
        _finding(cv=0.08, confidence="high")
    assert findings.confidence_for(0.08) == "low"
    assert findings.confidence_for(0.01) == "high"
    _finding(cv=0.08, confidence="low")


def test_reader_rejects_schema_violations(tmp_path):
    path = tmp_path / "bad.jsonl"
    record = _finding().to_dict()
    record["domain"] = "astrology"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*domain"):
        findings.read_findings(path)
    record = _finding().to_dict()
    del record["evidence"]["unit"]
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="unit"):
        findings.read_findings(path)


def _writer(path, k):
    for i in range(50):
        findings.emit_finding(_finding(value=float(k * 1000 + i)), path)


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    values = sorted(r["evidence"]["value"] for r in findings.read_findings(path))
    assert values == sorted(float(k * 1000 + i) for k in range(4) for i in range(50))

"""Findings: the schema, the confidence rule, whole-file writes."""

from __future__ import annotations

import json

import pytest

from attention_proto import findings


def _finding(cv=0.01, confidence="high", value=1.0, domain="runtime", key="q"):
    ev = findings.Evidence(
        gpu="TEST GPU",
        driver="0",
        config={"n": 1},
        metric="m",
        value=value,
        unit="ms",
        cv=cv,
        n=10,
        time="2026-01-01T00:00:00+00:00",
        git_revision="abc1234",
        results="bench/results/x.json",
    )
    return findings.Finding(
        id=f"{domain}.{key}@test-gpu",
        domain=domain,
        title="t",
        content="c",
        tags=["x"],
        confidence=confidence,
        source="pytest",
        evidence=ev,
    )


def test_prototype_follows_the_domain():
    assert _finding(domain="paged").prototype == "proto3"
    assert _finding(domain="runtime").prototype == "proto4"
    assert _finding(domain="integration").prototype == "proto8"
    record = _finding(domain="paged").to_dict()
    record["prototype"] = "proto1"
    with pytest.raises(ValueError, match="proto3"):
        findings.validate(record)


def test_write_sorts_by_id_and_reads_back(tmp_path):
    path = tmp_path / "f.jsonl"
    records = [_finding(value=2.5, key="b").to_dict(), _finding(value=3.5, key="a").to_dict()]
    findings.write_findings(records, path)
    got = findings.read_findings(path)
    assert [g["id"] for g in got] == ["runtime.a@test-gpu", "runtime.b@test-gpu"]
    assert path.read_text() == findings.dumps(list(reversed(records)))  # order-independent


def test_high_confidence_needs_a_cv_below_five_percent():
    with pytest.raises(ValueError, match="CV below 5"):
        _finding(cv=0.08, confidence="high")
    with pytest.raises(ValueError, match="CV below 5"):
        _finding(cv=None, confidence="high")
    assert findings.confidence_for(0.08) == "low"
    assert findings.confidence_for(0.01) == "high"
    assert findings.confidence_for(None) == "medium"
    _finding(cv=0.08, confidence="low")


def test_reader_rejects_schema_violations(tmp_path):
    path = tmp_path / "bad.jsonl"
    record = _finding().to_dict()
    record["domain"] = "astrology"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*domain"):
        findings.read_findings(path)
    record = _finding().to_dict()
    del record["evidence"]["results"]
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="results"):
        findings.read_findings(path)
    record = _finding().to_dict()
    record["id"] = "no hardware scope"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="id must look like"):
        findings.read_findings(path)

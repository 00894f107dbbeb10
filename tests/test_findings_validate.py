"""The validator: what passes on the committed findings today, what it reports
missing (Prototypes 5-7 have no runs), and what it catches."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from attention_proto import findings
from attention_proto.findings import __main__ as cli
from attention_proto.findings.rules import check

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "findings" / "findings.jsonl"


@pytest.fixture(scope="module")
def records():
    if not COMMITTED.exists():
        pytest.skip(f"no findings at {COMMITTED}")
    return findings.read_findings(COMMITTED)


def _by_rule(outcomes):
    return {o.rule: o for o in outcomes}


def test_committed_findings_pass_every_rule_but_the_missing_prototypes(records):
    from attention_proto.findings.derive import derive_repo

    got = _by_rule(check(records, REPO, text=COMMITTED.read_text(), derived=derive_repo(REPO)))
    for rule in ("count", "fields", "confidence", "one-per-question", "traceable", "generated"):
        assert got[rule].passed, (rule, got[rule].problems)
    missing = got["per-prototype"]
    assert not missing.passed
    assert [p.split()[0] for p in missing.problems] == ["proto7"]
    assert all("measured by bench variants" in p for p in missing.problems)


def test_validate_command_prints_each_rule_and_fails(records, capsys):
    assert cli.main(["validate", "--repo", str(REPO)]) == 1
    out = capsys.readouterr().out
    assert "PASS count:" in out and "PASS traceable:" in out
    assert "FAIL per-prototype:" in out and "proto7 (variants: measured by bench variants)" in out


def test_rules_catch_duplicates_noisy_high_and_untraceable(records):
    bad = copy.deepcopy(records[:2]) + copy.deepcopy(records[:1])
    bad[1]["confidence"] = "high"
    bad[1]["evidence"]["cv"] = 0.2
    bad[0]["evidence"]["results"] = "bench/results/never-run.json"
    got = _by_rule(check(bad, REPO))
    assert not got["one-per-question"].passed
    assert not got["confidence"].passed and not got["fields"].passed
    assert any("never-run.json" in p for p in got["traceable"].problems)
    assert not got["count"].passed


def test_a_hand_edited_file_is_caught(records):
    edited = copy.deepcopy(records)
    edited[0]["evidence"]["value"] = 497.0
    got = _by_rule(check(edited, REPO, text=findings.dumps(edited), derived=records))
    assert not got["generated"].passed

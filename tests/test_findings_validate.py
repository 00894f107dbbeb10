"""The validator: every rule passes on the committed findings (all eight
prototypes measured), and what each rule catches."""

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


def test_committed_findings_pass_every_rule(records):
    from attention_proto.findings.derive import derive_repo

    got = _by_rule(check(records, REPO, text=COMMITTED.read_text(), derived=derive_repo(REPO)))
    for rule, outcome in got.items():
        assert outcome.passed, (rule, outcome.problems)
    assert set(got) >= {"count", "per-prototype", "fields", "confidence", "traceable"}


def test_validate_command_prints_each_rule_and_passes(records, capsys):
    assert cli.main(["validate", "--repo", str(REPO)]) == 0
    out = capsys.readouterr().out
    assert "PASS count:" in out and "PASS traceable:" in out and "PASS per-prototype:" in out
    assert "FAIL" not in out


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

"""SYNTHESIS.md rendered on a CPU from the committed findings and results: the
six questions, links that resolve, plots drawn, and the committed file current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attention_proto import findings, report
from attention_proto.report import plots
from attention_proto.report.doc import anchor

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records():
    path = REPO / "findings" / "findings.jsonl"
    if not path.exists():
        pytest.skip(f"no findings at {path}")
    return findings.read_findings(path)


def test_report_answers_the_six_questions_with_findings(tmp_path, records):
    got = report.render(REPO, tmp_path / "SYNTHESIS.md", tmp_path / "plots")
    md = (tmp_path / "SYNTHESIS.md").read_text()
    assert md == got.markdown
    for n in range(1, 7):
        assert f"\n## {n}. " in md
    ids = {r["id"] for r in records}
    cited = set(re.findall(r"\]\(#(f-[a-z0-9-]+)\)", md))
    anchors = set(re.findall(r'<a id="(f-[a-z0-9-]+)"></a>', md))
    assert cited and cited == anchors  # every link lands on a row, every row is linked
    assert anchors <= {anchor(i) for i in ids}
    assert "## 4. Linear-attention crossover (Proto 6)" in md and "beats cuDNN from" in md
    assert "**DSL (Proto 5)**: the Triton twin" in md
    assert "Every prototype has at least 2 findings" in md
    assert "RoPE fused into flash_attention: its cost" in md  # Proto 7 measured
    assert "**Fused RoPE's goal** [variants.rope-goal@" in md  # since session 24's run
    assert "344 TFLOP/s" in md  # the D=128 best tile, from its finding
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert image.startswith("plots/")


@pytest.mark.skipif(not plots.available(), reason="matplotlib not installed")
def test_report_draws_every_plot(tmp_path):
    got = report.render(REPO, tmp_path / "SYNTHESIS.md", tmp_path / "plots")
    linked = set(re.findall(r"\]\(plots/([^)]+\.png)\)", got.markdown))
    assert {p.name for p in got.plots} == linked and len(linked) == 6
    for p in got.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_the_markdown_is_still_written(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    got = report.render(REPO, tmp_path / "S.md", tmp_path / "p")
    assert got.plots == [] and "matplotlib" in got.skipped_plots
    assert (tmp_path / "S.md").exists() and not (tmp_path / "p").exists()


def test_committed_synthesis_is_current(records):
    committed = (REPO / "SYNTHESIS.md").read_text(encoding="utf-8")
    assert committed == report.markdown(records, "docs/synthesis"), (
        "SYNTHESIS.md is stale: run `python -m attention_proto.report` and commit"
    )


def test_the_hopper_sentence_adds_the_call_by_call_ratios_only_when_every_case_has_one():
    from attention_proto.report.questions import _call_by_call

    def rec(value, cbc=None):
        config = {"head_dim": 128} | ({} if cbc is None else {"call_by_call_over_cudnn": cbc})
        return {"evidence": {"value": value, "unit": "x", "config": config}}

    both = _call_by_call([rec(1.01, 1.103), rec(1.009, 0.979)])
    assert "call by call" in both and "0.979x-1.1x" in both
    assert _call_by_call([rec(1.01, 1.103), rec(1.009)]) == ""  # an older run: batches only

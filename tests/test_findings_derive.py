"""Findings derived from the committed results (bench/results/): regeneration
is byte-identical, newer runs supersede older ones, n and CV come from the data
and provenance fills what old files lack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attention_proto import findings
from attention_proto.findings.derive import derive_repo, derive_runs
from attention_proto.findings.sources import load_run, load_runs

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "findings" / "findings.jsonl"


@pytest.fixture(scope="module")
def derived():
    if not (REPO / "bench" / "results").is_dir():
        pytest.skip(f"no recorded results under {REPO}")
    return {r["id"]: r for r in derive_repo(REPO)}


def test_regenerating_gives_the_committed_file_byte_for_byte(derived):
    assert findings.dumps(list(derived.values())) == COMMITTED.read_text(encoding="utf-8"), (
        "findings/findings.jsonl is stale or edited by hand: run "
        "`python -m attention_proto.findings derive` and commit"
    )
    assert findings.dumps(derive_repo(REPO)) == findings.dumps(list(derived.values()))


def test_every_derived_finding_passes_the_schema(derived):
    for record in derived.values():
        findings.validate(record)


def test_newer_run_supersedes_the_older(derived):
    # Three flash runs are committed (11-28, 11-28 v2, 11-29 at 9b731d4): the
    # newest answers, naming the two it replaces, and the older ones are not cited.
    best = derived["flash.best-tile.d128.n8192@nvidia-h200"]
    assert best["evidence"]["results"].endswith("2026-11-29-h200-flash-9b731d4.json")
    assert best["evidence"]["config"]["config"] == "m128n64s2w4"
    assert best["supersedes"] == [
        "bench/results/2026-11-28-h200-flash-v2.json",
        "bench/results/2026-11-28-h200-flash.json",
    ]
    gqa = derived["paged.best-page-size.gqa-32-8@nvidia-h200"]
    assert gqa["evidence"]["results"].endswith("paged-9b731d4.json")
    assert "bench/results/2026-11-28-h200-paged-v3.json" in gqa["supersedes"]
    cited = {r["evidence"]["results"] for r in derived.values()}
    assert not cited & {
        "bench/results/2026-11-28-h200-flash.json",
        "bench/results/2026-11-28-h200-flash-v2.json",
        "bench/results/2026-11-28-h200-paged-v3.json",
    }


def test_n_and_provenance_come_from_the_runs(derived):
    stitch = derived["stitching.inline-overhead@nvidia-h200"]
    assert stitch["evidence"]["n"] == 100  # the stitching bench's repetitions
    compile_ms = derived["runtime.cold-compile-ms@intel-xeon-processor-16c"]
    # Kernels compiled in the newest foundation run (2026-11-29, 140 variants).
    assert compile_ms["evidence"]["n"] == 140
    host = derived["integration.host-cost.flash@nvidia-h200"]
    # The newest call-path run carries its own run block and revision; an older
    # file's wrong revision (edfbfd4) is overridden by provenance.json.
    cited = json.loads((REPO / host["evidence"]["results"]).read_text())
    assert host["evidence"]["git_revision"] == cited["run"]["revision"] != "edfbfd4"
    assert host["evidence"]["driver"] == "580.159.04"  # env.driver holds the CUDA API (13000)
    assert all(r["evidence"]["git_revision"] != "unknown" for r in derived.values())


def test_answers_at_an_old_tile_say_so(tmp_path):
    # The first stitching run (2026-11-28) measured at a tile that is no longer
    # the tuned one: derived alone, its answers say so.
    src = REPO / "bench" / "results" / "2026-11-28-h200-stitching.json"
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    shutil.copy(src, results / src.name)
    shutil.copy(src.parent / "provenance.json", results / "provenance.json")
    got = {r["id"]: r for r in derive_repo(tmp_path)}
    for key in ("inline-overhead", "function-table-overhead", "recommendation"):
        r = got[f"stitching.{key}@nvidia-h200"]
        assert "stale-config" in r["tags"] and r["confidence"] != "high"
        assert "no longer the tuned" in r["content"]


def test_current_stitching_answers_are_at_the_tuned_tile(derived):
    # Session 6 re-ran the suite at the tuned tile (58038fe): that run supersedes.
    for key in ("inline-overhead", "function-table-overhead", "recommendation"):
        r = derived[f"stitching.{key}@nvidia-h200"]
        assert "stale-config" not in r["tags"]
        cfg = r["evidence"]["config"]
        assert cfg["config"] == cfg["tuned_config"]
        assert r["evidence"]["results"].endswith("stitching-58038fe.json")


def test_a_run_with_its_own_run_block_needs_no_provenance(tmp_path):
    src = REPO / "bench" / "results" / "2026-11-28-h200-stitching.json"
    data = json.loads(src.read_text())
    data["run"] = {
        "suite": "stitching",
        "command": "python -m attention_proto.bench stitching",
        "revision": "1234567",
        "time": "2027-01-01T00:00:00+00:00",
        "iterations": {"rows": 7},
    }
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "2027-01-01-h200-stitching.json").write_text(json.dumps(data))
    shutil.copy(src, results / src.name)
    (results / "provenance.json").write_text(
        json.dumps({src.name: json.loads((src.parent / "provenance.json").read_text())[src.name]})
    )
    got = {r["id"]: r for r in derive_repo(tmp_path)}
    r = got["stitching.inline-overhead@nvidia-h200"]
    assert r["evidence"]["n"] == 7 and r["evidence"]["git_revision"] == "1234567"
    assert r["supersedes"] == [f"bench/results/{src.name}"]
    assert len(load_runs(tmp_path)) == 2


def test_a_run_missing_its_provenance_is_named(tmp_path):
    src = REPO / "bench" / "results" / "2026-11-28-h200-stitching.json"
    with pytest.raises(ValueError, match=r"stitching.json: no suite, command, time"):
        derive_runs([load_run(src, REPO, provenance={})])


def test_flash_and_paged_findings_say_what_was_timed():
    # Runs since the suites timed the public call say so; older runs say they
    # timed the kernel alone (the prepared relaunch / the sweep's best tile).
    from attention_proto.findings.derive import flash as derive_flash
    from attention_proto.findings.derive import paged as derive_paged

    old = {"best": "m128n64s2w4", "ours": 330.0}
    new = dict(old, public=320.0, public_tile="m128n64s2w4")
    assert "kernel only: 330" in derive_flash._ours(old)
    assert derive_flash._ours(new).startswith("public call, tuned config m128n64s2w4: 320")
    assert derive_paged._what([{"us": 1.0}]) == "the prepared relaunch (kernel only)"
    assert derive_paged._what([{"us": 1.0, "kernel_us": 0.9}]).startswith("the public call")

"""The benchmarks' findings code, replayed on results recorded on the GPU
(bench/results/), so it is exercised on machines without one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attention_proto import findings
from attention_proto.bench import flash, paged, specialization, stitching

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def _load(name):
    path = RESULTS / name
    if not path.exists():
        pytest.skip(f"no recorded results at {path}")
    return json.loads(path.read_text())


def _read(path, domain):
    got = findings.read_findings(path)
    assert got and all(f["domain"] == domain for f in got)
    assert all(f["evidence"]["gpu"] == "NVIDIA H200" for f in got)
    return got


def test_flash_findings_from_recorded_sweep(tmp_path):
    r = _load("2026-11-28-h200-flash-v2.json")
    flash._emit(tmp_path / "f.jsonl", r["env"], r["gemm_tflops"], r["rows"], r["sweep"])
    got = _read(tmp_path / "f.jsonl", "flash")
    assert len(got) >= 5
    best = [f for f in got if f["title"].startswith("Best tile D=128 causal=False")][0]
    assert best["evidence"]["config"]["config"] == "m128n64s2w4"
    fa2 = [f for f in got if f["title"] == "Ratio to sdpa_flash D=128 causal=True N=8192"][0]
    assert fa2["evidence"]["value"] > 1.0


def test_paged_findings_from_recorded_run(tmp_path):
    r = _load("2026-11-28-h200-paged-v3.json")
    paged._emit(
        tmp_path / "p.jsonl",
        r["env"],
        r["copy_ceiling_tbps"],
        r["rows"],
        r["smem"],
        r["split"],
        r["score_paths"],
    )
    got = _read(tmp_path / "p.jsonl", "paged")
    assert len(got) >= 5
    mma = [f for f in got if f["title"].startswith("GQA decode: tensor-core scores")][0]
    assert mma["evidence"]["value"] > 1.5  # the tensor-core path is 1.58x+ faster


def test_stitching_findings_from_recorded_run(tmp_path):
    r = _load("2026-11-28-h200-stitching.json")
    stitching._emit(tmp_path / "s.jsonl", r["env"], r["rows"])
    got = _read(tmp_path / "s.jsonl", "stitching")
    assert len(got) == 3
    assert got[1]["evidence"]["value"] > 100  # the function table costs over 100 %


def test_specialization_findings_from_recorded_run(tmp_path):
    r = _load("2026-11-28-h200-specialization-quick.json")
    specialization._emit(tmp_path / "sp.jsonl", r["env"], r, r["env"]["cores"])
    got = _read(tmp_path / "sp.jsonl", "specialization")
    assert len(got) == 4
    assert "385x" in got[2]["content"]

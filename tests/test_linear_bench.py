"""bench linear without a GPU: it skips with the reason and writes nothing; its
findings derivation turns a (synthetic) results file into valid records."""

from __future__ import annotations

import json

from attention_proto import cuda, findings
from attention_proto.bench import linear as bench_linear
from attention_proto.bench.__main__ import main
from attention_proto.findings.derive import derive_runs
from attention_proto.findings.sources import load_run


def _row(d, t, best_ms, flash_ms, cudnn_ms):
    return {
        "d": d,
        "t": t,
        "b": max(1, 32768 // t),
        "h": 16,
        "best_chunk": 64 if t < 8192 else 128,
        "best_ms": best_ms,
        "best_cv": 0.01,
        "best_tflops": 100.0,
        "flash_ms": flash_ms,
        "flash_cv": 0.01,
        "sdpa_cudnn_ms": cudnn_ms,
        "sdpa_cudnn_cv": 0.02,
        "fla_ms": best_ms * (1.5 if t < 16384 else 0.8),
        "fla_cv": 0.03,
        "best_kernel_ms": best_ms * 0.99,
        "best_copy_fraction": 0.5,
    }


def test_crossover_is_the_first_length_that_stays_faster():
    rows = [_row(64, 1024, 1.0, 0.5, 0.4), _row(64, 2048, 1.0, 1.2, 0.9)]
    rows += [_row(64, 4096, 1.0, 2.0, 1.5), _row(64, 8192, 1.0, 4.0, 3.0)]
    assert bench_linear.crossover(rows, "flash") == 2048
    assert bench_linear.crossover(rows, "sdpa_cudnn") == 4096
    rows[-1]["sdpa_cudnn_ms"] = 0.5  # slower again at the longest T: no crossover
    assert bench_linear.crossover(rows, "sdpa_cudnn") is None


def test_flop_and_byte_counts():
    # Per token 4 D^2 + 4 C D FLOPs; bytes: q, k, v, o and the states twice.
    assert bench_linear.flops(1, 1, 128, 64, 64) == 128 * (4 * 64 * 64 + 4 * 64 * 64)
    assert bench_linear.bytes_moved(1, 1, 128, 64, 64) == 2 * (4 * 128 * 64 + 2 * 2 * 64 * 64)


def test_derivation_of_a_results_file(tmp_path):
    rows = [_row(d, t, 1.0, t / 2048, t / 3000) for d in (64, 128) for t in (1024, 4096, 16384)]
    data = {
        "run": {
            "suite": "linear",
            "command": "python -m attention_proto.bench linear",
            "revision": "abc1234",
            "time": "2026-11-29T10:00:00+00:00",
            "quick": False,
            "iterations": {"rows": 30, "sweep": 30, "copy": 20},
        },
        "env": {"gpu": "NVIDIA H200", "driver": "test"},
        "rows": rows,
        "sweep": [
            {
                "d": r["d"],
                "t": r["t"],
                "chunk": r["best_chunk"],
                "chunk_h_ms": 0.6,
                "chunk_o_ms": 0.4,
            }
            for r in rows
        ],
        "crossover": {
            str(d): {
                "flash": bench_linear.crossover([r for r in rows if r["d"] == d], "flash"),
                "sdpa_cudnn": bench_linear.crossover(
                    [r for r in rows if r["d"] == d], "sdpa_cudnn"
                ),
            }
            for d in (64, 128)
        },
    }
    path = tmp_path / "2026-11-29-h200-linear.json"
    path.write_text(json.dumps(data))
    records = derive_runs([load_run(path, tmp_path, {})])
    ids = {r["id"] for r in records}
    assert "linear.best-chunk.d64@nvidia-h200" in ids
    assert "linear.crossover.flash.d128@nvidia-h200" in ids
    assert {"linear.rates.d64@nvidia-h200", "linear.recommendation@nvidia-h200"} <= ids
    behind = next(r for r in records if r["id"] == "linear.vs-fla-from-4k.d128@nvidia-h200")
    assert behind["evidence"]["value"] == 0.8 and "T=16384: 0.80x" in behind["content"]
    assert "our public call" in behind["content"]
    rec = next(r for r in records if r["id"] == "linear.recommendation@nvidia-h200")
    assert "fla is faster at T = 16384" in rec["content"] and "takes 60%" in rec["content"]
    for r in records:
        findings.validate(r)
        assert r["domain"] == "linear"


def test_without_a_gpu_the_suite_skips_and_writes_nothing(tmp_path, capsys):
    if cuda.is_available():
        return
    assert main(["linear", "--out", str(tmp_path)]) == 0
    assert "SKIPPED linear benchmark" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())

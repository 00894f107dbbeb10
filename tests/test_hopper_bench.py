"""bench hopper without a GPU: it skips with the reason and writes nothing; its
findings derivation turns a (synthetic) results file into valid records that
say what the numbers say."""

from __future__ import annotations

import json

import pytest

from attention_proto import cuda, findings
from attention_proto.bench import hopper
from attention_proto.bench.__main__ import main
from attention_proto.findings.derive import derive_runs
from attention_proto.findings.sources import load_run


def _results():
    rows = []
    for d in (64, 128):
        for causal in (False, True):
            for n in hopper.LENGTHS:
                r = {"head_dim": d, "causal": causal, "seqlen": n, "batch": 16384 // n}
                r.update(heads=hopper.HEADS[d], gemm_tflops=800.0)
                r.update(public_tflops=500.0, public_cv=0.01, public_kernel_tflops=505.0)
                r.update(public_kernel_cv=0.01, public_kernel="wgmma", public_config="m128n128")
                r.update(sdpa_cudnn_tflops=550.0, sdpa_cudnn_cv=0.01, sdpa_flash_tflops=340.0)
                r.update(sdpa_flash_cv=0.01, mma_sync_cv=0.01)
                # mma.sync wins at N=512 only; step (e) on 128 x 128 is the best.
                r["mma_sync_tflops"] = 500.0 if n == 512 else 300.0
                for i, v in enumerate(hopper.VARIANTS):
                    key = hopper.variant_key(*v)
                    # The five steps on 128 x 128 rise; every other variant 350.
                    r[f"{key}_tflops"] = 300.0 + 40 * i if i < 5 else 350.0
                    r[f"{key}_cv"] = 0.01
                if n == hopper.FLEX_LENGTH:
                    r.update(flex_tflops=420.0, flex_cv=0.02)
                rows.append(r)
    resources = [
        {
            "head_dim": d,
            "variant": hopper.variant_key(*v),
            "threads": 384 if v[0] >= 4 else 256,
            "entry_registers": 168,
            "sass_registers": 184,
            "spill_bytes": 0,
            "shared_bytes": 164864,
        }
        for d in (64, 128)
        for v in hopper.VARIANTS
    ]
    return {
        "run": {
            "suite": "hopper",
            "command": "python -m attention_proto.bench hopper",
            "revision": "abc1234",
            "time": "2026-11-29T10:00:00+00:00",
            "quick": False,
            "iterations": {"rows": {"batches": 30, "repeat": 10}},
        },
        "env": {"gpu": "NVIDIA H200", "driver": "test", "cpu": "x", "cores": 16},
        "gemm_tflops": 800.0,
        "gemm_cv": 0.01,
        "rows": rows,
        "resources": resources,
    }


@pytest.fixture
def derived(tmp_path):
    path = tmp_path / "2026-11-29-h200-hopper.json"
    path.write_text(json.dumps(_results()))
    return {r["id"]: r for r in derive_runs([load_run(path, tmp_path)])}


def test_without_a_gpu_the_suite_skips_and_writes_nothing(tmp_path, capsys):
    if cuda.is_available():
        pytest.skip("a GPU is present: the suite runs (test_gpu_* and the device run cover it)")
    assert main(["hopper", "--out", str(tmp_path)]) == 0
    assert "SKIPPED hopper benchmark" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.json"))


def test_the_run_gives_the_issue_11_findings(derived):
    ids = {i.split("@")[0] for i in derived}
    for d in (64, 128):
        for tag in ("full", "causal"):
            assert f"hopper.ablation.d{d}.{tag}" in ids
            assert f"hopper.vs-cudnn.d{d}.{tag}" in ids
    assert {"hopper.best-variant", "hopper.mma-sync-wins"} <= ids
    assert any(i.startswith("hopper.resources@") for i in derived)
    for record in derived.values():
        findings.validate(record)


def test_findings_state_the_measured_numbers(derived):
    by = {i.split("@")[0]: r for i, r in derived.items()}
    vs = by["hopper.vs-cudnn.d128.full"]
    assert vs["evidence"]["value"] == pytest.approx(500 / 550)
    assert "0.909x cuDNN" in vs["content"] and "Flex 1.19x" in vs["content"]
    assert "timed one after another" in vs["content"]
    ablation = by["hopper.ablation.d128.causal"]
    # Step (e) on 128 x 128 (the fifth variant) over step (a): 460 / 300.
    assert ablation["evidence"]["value"] == pytest.approx(460 / 300)
    assert "step (e) is the fastest" in ablation["content"]
    assert "57% of the GEMM" in ablation["content"]  # 460 / 800: 0.57499... as a float
    assert by["hopper.best-variant"]["evidence"]["config"]["d64"] == "step_e_m128n128"
    wins = by["hopper.mma-sync-wins"]
    assert wins["evidence"]["value"] == 4  # N=512 at each (D, mask)
    assert "D=64 N=512 (1.09x)" in wins["content"]


def test_in_turn_ratios_are_what_the_finding_states(tmp_path):
    # A run that timed the headline in turn carries per-round median ratios;
    # the finding states those, not the ratio of the TFLOP/s medians.
    results = _results()
    for r in results["rows"]:
        r.update(public_over_cudnn=1.0123, public_over_cudnn_cv=0.004)
        r.update(public_kernel_over_cudnn=1.0051)
    path = tmp_path / "2026-11-30-h200-hopper.json"
    path.write_text(json.dumps(results))
    by = {r["id"].split("@")[0]: r for r in derive_runs([load_run(path, tmp_path)])}
    vs = by["hopper.vs-cudnn.d128.causal"]
    assert vs["evidence"]["value"] == pytest.approx(1.0123)
    assert vs["evidence"]["cv"] == pytest.approx(0.004)
    assert "1.012x cuDNN" in vs["content"] and "kernel only 1.005x" in vs["content"]
    assert "timed in turn" in vs["content"] and "call by call" not in vs["content"]
    findings.validate(vs)
    # Since session 21 the headline lengths are also timed call by call.
    for r in results["rows"]:
        if r["seqlen"] in hopper.TARGET_LENGTHS:
            r.update(
                public_over_cudnn_interleaved=1.1051, public_kernel_over_cudnn_interleaved=1.109
            )
    path.write_text(json.dumps(results))
    by = {r["id"].split("@")[0]: r for r in derive_runs([load_run(path, tmp_path)])}
    vs = by["hopper.vs-cudnn.d128.causal"]
    assert vs["evidence"]["value"] == pytest.approx(1.0123)  # the headline stays the batches'
    assert "Timed call by call in turn instead" in vs["content"]
    assert "1.105x (kernel only 1.109x)" in vs["content"]
    assert vs["evidence"]["config"]["call_by_call_over_cudnn"] == pytest.approx(1.1051)


def test_the_headline_ratio_is_the_median_of_round_ratios(monkeypatch):
    from attention_proto.bench import callpath

    # Three rounds: ours 1.0, 2.0, 1.0 s; cuDNN 1.1, 1.0, 1.2 s. Per-round
    # ratios 1.1, 0.5, 1.2 -> median 1.1; the medians' ratio would be 1.1 / 1.0.
    per_round = [[1.0, 2.0, 1.0], [1.0, 1.0, 1.0], [1.1, 1.0, 1.2]]

    def fake_in_turn(torch, fns, rounds, batches, rotate):
        assert (rounds, batches) == (3, hopper.HEADLINE_BATCHES)
        assert len(fns) == 3 and rotate and rounds % 3 == 0  # each fn in each place alike
        return None, per_round

    monkeypatch.setattr(callpath, "_in_turn", fake_in_turn)
    fns = {"public": None, "public_kernel": None, "sdpa_cudnn": None}
    out = hopper._headline(None, fns, 2e12, rounds=3)
    assert out["public_over_cudnn"] == pytest.approx(1.1)
    assert out["public_kernel_over_cudnn"] == pytest.approx(1.1)
    assert out["public_tflops"] == pytest.approx(2.0)  # 2e12 FLOP / median 1.0 s
    assert out["sdpa_cudnn_tflops"] == pytest.approx(2e12 / 1.1 / 1e12)
    assert out["public_cv"] > 0


def test_the_headline_lengths_add_call_by_call_ratios(monkeypatch):
    from attention_proto.bench import callpath

    per_round = [[1.0, 1.0, 1.0]] * 3

    def fake_in_turn(torch, fns, rounds, batches, rotate):
        return None, per_round

    # Cycles: ours 1.0, 1.0, 1.0; relaunch 0.9 each; cuDNN 1.2, 1.0, 1.1 s.
    calls = [[1.0, 1.0, 1.0], [0.9, 0.9, 0.9], [1.2, 1.0, 1.1]]
    seen = {}

    def fake_interleaved(torch, fns, cycles):
        seen["cycles"], seen["fns"] = cycles, len(fns)
        return calls

    monkeypatch.setattr(callpath, "_in_turn", fake_in_turn)
    monkeypatch.setattr(callpath, "interleaved", fake_interleaved)
    fns = {"public": None, "public_kernel": None, "sdpa_cudnn": None}
    out = hopper._headline(None, fns, 2e12, rounds=3, cycles=7)
    assert seen == {"cycles": 7, "fns": 3}
    assert out["public_over_cudnn_interleaved"] == pytest.approx(1.1)
    assert out["public_kernel_over_cudnn_interleaved"] == pytest.approx(1.1 / 0.9)
    assert "public_over_cudnn_interleaved" not in hopper._headline(None, fns, 2e12, rounds=3)


def test_issue_11_lengths_take_more_rounds_each_a_multiple_of_the_three():
    assert hopper.headline_rounds(8192) == hopper.headline_rounds(16384) == 12
    assert hopper.headline_rounds(1024) == hopper.HEADLINE_ROUNDS == 6
    for n in hopper.LENGTHS:
        assert hopper.headline_rounds(n) % 3 == 0  # public, relaunch, cuDNN: each place alike


def test_in_turn_rotation_gives_each_fn_each_place(monkeypatch):
    from attention_proto.bench import callpath

    order = []

    def fake_gpu_time(torch, fn, sets, batches):
        order.append(fn())
        return callpath.summarize([1.0])

    monkeypatch.setattr(callpath, "_gpu_time", fake_gpu_time)
    fns = [lambda i=i: i for i in range(3)]
    _, per_round = callpath._in_turn(None, fns, 6, batches=1, rotate=True)
    rounds = [order[3 * r : 3 * r + 3] for r in range(6)]
    assert rounds[:3] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    for fn in range(3):  # each fn first, second and third twice
        assert sorted(r.index(fn) for r in rounds) == [0, 0, 1, 1, 2, 2]
    assert [len(t) for t in per_round] == [6, 6, 6]
    order.clear()
    callpath._in_turn(None, fns, 2, batches=1)
    assert order == [0, 1, 2, 0, 1, 2]  # the fixed order without rotate


def test_variant_keys_name_step_and_tile():
    assert hopper.variant_key(5, 128, 64) == "step_e_m128n64"
    assert len({hopper.variant_key(*v) for v in hopper.VARIANTS}) == len(hopper.VARIANTS)


def test_the_rows_kernels_are_compiled_before_any_timing():
    # run() prebuilds what _row launches (the public call's plan at each
    # length, every variant, the mma.sync kernel) so no compile lands in a
    # timed loop and the compiles run at once.
    from attention_proto.ops import flash, flash_hopper
    from attention_proto.ops.tuning import best_config

    names = {s.name for s in hopper._row_specs(hopper.LENGTHS, quick=False)}
    for d in (64, 128):
        for causal in (False, True):
            mma = best_config(d, "bfloat16", causal)
            assert flash.spec(d, "bfloat16", causal, mma).name in names
            for n in hopper.LENGTHS:
                cfg = flash.hopper_config(d, causal, n)
                assert flash_hopper.spec(d, "bfloat16", causal, cfg).name in names
            for v in hopper._variants(False, d):
                cfg = hopper.variant_config(*v)
                assert flash_hopper.spec(d, "bfloat16", causal, cfg).name in names
    # 192 query rows at D=64 only (three consumer warpgroups).
    assert any(v[1] == 192 for v in hopper._variants(False, 64))
    assert not any(v[1] == 192 for v in hopper._variants(False, 128))
    quick = hopper._row_specs((1024, 8192), quick=True)
    assert len(quick) < len(names)


def test_diagnostics_write_their_rows_under_out(tmp_path, monkeypatch):
    # bench/diag and bench/ab_sweep.py write $OUT/<name>.json through one helper,
    # with the revision the tree was sent at.
    from attention_proto.bench.common import write_diagnostic

    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setenv("ATTENTION_PROTO_GIT_REVISION", "abc1234")
    path = write_diagnostic("ab_sweep", "NVIDIA H200", [{"n": 8192}], option="o_tma")
    assert path == tmp_path / "ab_sweep.json"
    assert json.loads(path.read_text()) == {
        "gpu": "NVIDIA H200",
        "revision": "abc1234",
        "option": "o_tma",
        "rows": [{"n": 8192}],
    }


def test_diagnostic_scripts_compile_and_write_through_the_helper():
    # bench/diag scripts run only on the card; here each at least compiles, and
    # those that write results do it through write_diagnostic (no json.dump of
    # their own).
    from pathlib import Path

    scripts = sorted((Path(__file__).parent.parent / "bench" / "diag").glob("*.py"))
    assert scripts
    for path in scripts:
        text = path.read_text()
        compile(text, str(path), "exec")
        assert "json.dump(" not in text, path.name

"""bench variants without a GPU: it skips with the reason and writes nothing; its
findings derivation turns a (synthetic) results file into valid records."""

from __future__ import annotations

import json

import pytest

from attention_proto import cuda, findings
from attention_proto.bench.__main__ import main
from attention_proto.findings.derive import derive_runs
from attention_proto.findings.sources import load_run


def _results():
    rows, gqa = [], []
    for n in (2048, 8192):
        for causal in (False, True):
            r = {"n": n, "batch": 16384 // n, "heads": 32, "head_dim": 128, "causal": causal}
            r.update(base_ms=1.0, base_cv=0.01, alibi_ms=1.004, alibi_cv=0.01, alibi_pct=0.4)
            r.update(rope_fused_ms=1.05, rope_fused_cv=0.01, rope_fused_pct=5.0)
            if n == 8192:  # since session 21: what the public rope= call ran
                r["rope_path"] = "q and k by the standalone pass, then the plain plan"
            # Since session 8: the same variants on the mma.sync kernel beside the
            # public calls (at N=8192 only here: older files lack them).
            if n == 8192:
                r.update(base_mma_sync_ms=1.6, alibi_mma_sync_ms=1.62, alibi_mma_sync_pct=1.25)
                r.update(base_kernel="D=128, N=8192 on sm_90a: the wgmma kernel, step 5")
            r.update(sdpa_ms=0.8, sdpa_cv=0.01, sdpa_bias_ms=2.0, sdpa_bias_cv=0.02)
            r.update(sdpa_bias_pct=150.0)
            if n == 2048:
                r.update(flex_ms=1.1, flex_cv=0.01, flex_alibi_pct=3.0)
            else:  # as the suite writes it: Flex only at the first N
                r.update(flex_skipped="Flex measured at N=2048 only (compile time)")
            if not causal:
                r.update(rope_ms=0.03, rope_cv=0.02, rope_pct=3.0, torch_rope_ms=0.2)
            rows.append(r)
            for g in (1, 2, 4, 8, 32):
                gqa.append(
                    {
                        "n": n,
                        "causal": causal,
                        "group": g,
                        "kv_heads": 32 // g,
                        "gqa_ms": 1.0 - 0.01 * g,
                        "gqa_cv": 0.01,
                        "expanded_ms": 1.0,
                        "expanded_cv": 0.01,
                        "gqa_pct": -1.0 * g,
                    }
                )
    return {
        "run": {
            "suite": "variants",
            "command": "python -m attention_proto.bench variants",
            "revision": "abc1234",
            "time": "2026-11-29T10:00:00+00:00",
            "quick": False,
            "iterations": {"rows": 30, "gqa": 30},
        },
        "env": {"gpu": "NVIDIA H200", "driver": "test"},
        "variant_counts": {
            "flash_defaults": 8,
            "flash_alibi": 8,
            "flash_rope": 16,
            "rope_standalone": 8,
            "gqa": 0,
        },
        "rows": rows,
        "gqa": gqa,
    }


def test_derivation_of_a_results_file(tmp_path):
    path = tmp_path / "2026-11-29-h200-variants.json"
    path.write_text(json.dumps(_results()))
    records = {r["id"]: r for r in derive_runs([load_run(path, tmp_path, {})])}
    for r in records.values():
        findings.validate(r)
        assert r["domain"] == "variants" and r["prototype"] == "proto7"
    rope = records["variants.rope-standalone@nvidia-h200"]
    assert rope["evidence"]["value"] == 3.0
    fused = records["variants.rope-fused.causal@nvidia-h200"]
    assert fused["evidence"]["value"] == 5.0 and "standalone q+k" not in fused["content"]
    full_rope = records["variants.rope-fused.full@nvidia-h200"]["content"]
    assert "+5.0% (1.000 -> 1.050 ms), q and k by the standalone pass, then the plain" in full_rope
    assert (
        "fused RoPE the constant ROPE (NeoX or GPT-J): 16 more"
        in (records["variants.constants@nvidia-h200"]["content"])
    )
    alibi = records["variants.alibi-fused.causal@nvidia-h200"]
    assert "SDPA with a bias tensor +150.0%" in alibi["content"]
    assert (
        "Flex score_mod +3.0%" in alibi["content"]
        and "Flex: Flex measured at N=2048" in (alibi["content"])
    )
    full = records["variants.alibi-fused.full@nvidia-h200"]["content"]
    assert "N=8192: ours +0.4% (1.000 -> 1.004 ms); both on the mma.sync kernel +1.2%" in full
    assert "the plain call: D=128, N=8192 on sm_90a" not in full  # the first row's kernel only
    assert records["variants.gqa.g32@nvidia-h200"]["title"].startswith("MQA")
    assert records["variants.gqa.g8@nvidia-h200"]["evidence"]["value"] == -8.0
    assert records["variants.constants@nvidia-h200"]["evidence"]["value"] == 8
    assert len(records) == 1 + 2 + 2 + 5 + 1


def test_without_a_gpu_the_suite_skips_and_writes_nothing(tmp_path, capsys):
    if cuda.is_available():
        return
    assert main(["variants", "--out", str(tmp_path)]) == 0
    assert "SKIPPED variants benchmark" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


class _FakeCuda:
    """torch.cuda's events and synchronize on a fake GPU clock: each fn call
    advances it by the call's duration, each event reads it when recorded."""

    def __init__(self):
        self.clock, self.syncs = 0.0, 0
        outer = self

        class Event:
            def __init__(self, enable_timing=False):
                self.at = None

            def record(self):
                self.at = outer.clock

            def synchronize(self):
                pass

            def elapsed_time(self, end):
                return end.at - self.at  # ms

        self.Event = Event

    def synchronize(self):
        self.syncs += 1


def test_interleaved_pairs_fns_call_by_call_and_ratios_cycle_by_cycle(monkeypatch):
    # The fns called in turn back to back, each cycle starting one place
    # further along; an event pair around every call; the first cycle of each
    # chunk (after an idle GPU) left out; the variants' % the median of the
    # per-cycle ratios to the base (variants._paired), not the medians' ratio.
    import statistics
    import sys
    from types import SimpleNamespace

    from attention_proto.bench import callpath, variants

    cuda = _FakeCuda()
    torch = SimpleNamespace(cuda=cuda)
    calls = []  # (name, ms) in call order
    # The card slows call by call; "b" costs 1.5x in its first 12 calls, 1.1x after.
    cost = {"a": 1.0, "b": 1.5, "c": 0.9}

    def call(name):
        seen = sum(1 for n, _ in calls if n == name)
        ms = (1.0 + 0.01 * len(calls)) * (1.1 if name == "b" and seen >= 12 else cost[name])
        calls.append((name, ms))
        cuda.clock += ms

    fns = [lambda n=n: call(n) for n in cost]
    times = callpath.interleaved(torch, fns, cycles=20, chunk=10, warmup=1)
    assert [n for n, _ in calls[:3]] == ["a", "b", "c"]  # warm-up: each once
    timed = calls[3:]
    cycles = [timed[i : i + 3] for i in range(0, len(timed), 3)]
    assert len(cycles) == 2 * 11  # two chunks of 10 cycles, each after a dropped one
    names = list(cost)
    for i, cycle in enumerate(cycles):
        start = (i % 11) + 10 * (i // 11)  # rotation: chunk offset + cycle in chunk
        assert [n for n, _ in cycle] == [names[(k + start) % 3] for k in range(3)], i
    kept = [c for i, c in enumerate(cycles) if i % 11]  # the first of each chunk left out
    for j, name in enumerate(names):
        expected = [ms * 1e-3 for c in kept for n, ms in c if n == name]
        assert times[j] == pytest.approx(expected)
    assert cuda.syncs == 2
    ratios = [b / a for a, b in zip(times[0], times[1], strict=True)]
    assert callpath.median_ratio(times[1], times[0]) == pytest.approx(statistics.median(ratios))
    # _paired: medians per call (ms) and the per-cycle ratios' median, in %.
    calls.clear()
    monkeypatch.setitem(sys.modules, "torch", torch)
    stats, pcts = variants._paired(fns, 20)
    assert pcts[0] is None and len(stats) == 3
    assert pcts[2] == pytest.approx(-10.0, abs=1.0)  # c: 0.9x, the drift cancels
    # ms per call: the base's 1.0 ms on a card slowed 1.0-1.7x over those calls.
    assert 1.0 < stats[0][0] < 1.7 and stats[0][1] > 0


def test_the_alibi_finding_names_the_alibi_calls_kernel(tmp_path):
    # Since session 22 the rows carry what the ALiBi call ran (its window, say).
    results = _results()
    for r in results["rows"]:
        r["alibi_kernel"] = "D=128, N=2048 on sm_90a: the wgmma kernel, ALiBi's window of key tiles"
    path = tmp_path / "2026-11-29-h200-variants.json"
    path.write_text(json.dumps(results))
    records = {r["id"].split("@")[0]: r for r in derive_runs([load_run(path, tmp_path, {})])}
    for tag in ("full", "causal"):
        content = records[f"variants.alibi-fused.{tag}"]["content"]
        assert "(the ALiBi call: D=128, N=2048 on sm_90a" in content
        assert "window of key tiles" in content and "depends on the data" in content
    assert "ALiBi call" not in records["variants.rope-fused.full"]["content"]


def test_counts_include_the_wgmma_plans_alibi_kernels_and_their_norms_kernels(tmp_path):
    from attention_proto.bench import variants
    from attention_proto.ops import flash_hopper

    counts = variants._counts()
    alibi = variants.hopper_plan_specs(alibi=True)
    plain = variants.hopper_plan_specs(alibi=False)
    assert counts["hopper_alibi"] == len(alibi) and counts["hopper_defaults"] == len(plain)
    norms = {n for n in alibi if n.startswith(flash_hopper.NORMS_ENTRY + "_")}
    # One norms kernel per windowed ALiBi kernel; the plain plan has none.
    assert norms and len(norms) == sum("ALIBI_WINDOW" in n for n in alibi - norms)
    assert not plain & alibi
    results = _results()
    results["variant_counts"] |= {"hopper_defaults": 14, "hopper_alibi": 26}
    path = tmp_path / "2026-11-29-h200-variants.json"
    path.write_text(json.dumps(results))
    records = {r["id"].split("@")[0]: r for r in derive_runs([load_run(path, tmp_path, {})])}
    content = records["variants.constants"]["content"]
    assert "on the wgmma plan ALiBi adds 26 kernels beside its 14" in content


def test_the_rope_goal_finding_says_where_the_k_pass_alone_misses_it(tmp_path):
    # Since session 24 the rows time rope(k) alone against the plain call.
    results = _results()
    fused = {(2048, False): 10.0, (2048, True): 14.0, (8192, False): 2.5, (8192, True): 4.0}
    k_pass = {(2048, False): 7.0, (2048, True): 9.5, (8192, False): 1.9, (8192, True): 2.9}
    for r in results["rows"]:
        key = (r["n"], r["causal"])
        r.update(rope_fused_pct=fused[key], rope_k_pct=k_pass[key], rope_k_cv=0.02)
        r.update(rope_k_ms=k_pass[key] / 100, rope_in_kernel_pct=3.5, base_kernel_ms=0.9)
        r.update(rope_kernel_ms=0.93, base_kernel_cv=0.01, rope_kernel_cv=0.01)
    path = tmp_path / "2026-11-29-h200-variants.json"
    path.write_text(json.dumps(results))
    records = {r["id"].split("@")[0]: r for r in derive_runs([load_run(path, tmp_path, {})])}
    goal = records["variants.rope-goal"]
    findings.validate(goal)
    assert goal["evidence"]["value"] == 1.9  # the k pass's smallest share
    text = goal["content"]
    assert "N=2048 full: fused +10.0%, rope(k) alone 7.0% of the call (70 us)" in text
    assert "is met at N=8192 full and missed at N=2048 full, N=2048 causal, N=8192 causal" in text
    # 8K causal misses the goal, but its k pass alone (2.9 %) does not reach it.
    assert "At N=2048 full, N=2048 causal the pass over k alone costs at least the goal" in text
    # Files without rope(k) alone derive no goal finding.
    path.write_text(json.dumps(_results()))
    records = {r["id"].split("@")[0] for r in derive_runs([load_run(path, tmp_path, {})])}
    assert "variants.rope-goal" not in records

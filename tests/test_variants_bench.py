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
    assert fused["evidence"]["value"] == 5.0 and "standalone" not in fused["content"]
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


def test_paired_rounds_rotate_the_order_and_ratio_round_by_round(monkeypatch):
    # Each fn holds each place of a round equally often, every timing is warmed
    # by PAIRED_WARMUP calls (2 read the RoPE kernel's cost at 8K causal more
    # than twice too high, session 16), and each variant's % is the median of
    # its per-round ratios to the base, not the ratio of the medians.
    from types import SimpleNamespace

    from attention_proto.bench import variants

    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # the card drifting round by round
    ratio = {"a": [1.0] * 6, "b": [1.5, 1.5, 1.5, 1.1, 1.1, 1.1], "c": [0.9] * 6}
    order, warmups = [], []
    calls = dict.fromkeys(ratio, 0)

    def fake_batched(fn, iters, warmup):
        name = fn()
        r = calls[name]
        calls[name] += 1
        order.append(name)
        warmups.append(warmup)
        return SimpleNamespace(median_s=base[r] * ratio[name][r] * 1e-3, cv=0.01)

    monkeypatch.setattr(variants, "_batched", fake_batched)
    fns = [lambda n=n: n for n in ratio]
    assert variants.ROUNDS == 6
    (a, b, c), pcts = variants._paired(fns, iters=10)
    rounds = [order[i : i + 3] for i in range(0, len(order), 3)]
    assert len(rounds) == variants.ROUNDS
    for name in ratio:
        places = sorted(r.index(name) for r in rounds)
        assert places == [0, 0, 1, 1, 2, 2], (name, places)
    assert set(warmups) == {variants.PAIRED_WARMUP} and variants.PAIRED_WARMUP >= 15
    assert pcts[0] is None
    # Median of the ratios (1.5 x 3, 1.1 x 3): +30 %; the medians' ratio would
    # read 4.45 / 3.5, +27.1 %.
    assert pcts[1] == pytest.approx(30.0) and pcts[2] == pytest.approx(-10.0)
    assert a[0] == pytest.approx(3.5) and b[0] == pytest.approx(4.45)

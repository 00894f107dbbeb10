"""Which flash kernel a call gets (flash.dispatch), without a GPU: every reason
to stay on the mma.sync kernel that does not need the device. The GPU side
(the wgmma kernel chosen on sm_90a, its results) is in test_gpu_flash_dispatch.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from attention_proto import debug
from attention_proto.ops import flash, flash_hopper
from attention_proto.ops.tuning import best_config


def _q(n=2048, d=128):
    return np.zeros((1, 2, n, d), np.float16)


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"config": best_config(128, "bfloat16", False)}, "names an mma.sync kernel"),
        ({"stitch_mode": 1}, "names an mma.sync kernel"),
    ],
)
def test_variants_and_mma_sync_configs_stay_on_mma_sync(kwargs, reason):
    kernel, why = flash.dispatch(_q(), False, **kwargs)
    assert kernel == "mma_sync" and reason in why


@pytest.mark.parametrize("n,d", [(511, 128), (511, 64), (100, 128)])
def test_shapes_where_wgmma_was_not_faster_stay_on_mma_sync(n, d):
    kernel, why = flash.dispatch(_q(n, d), True)
    assert kernel == "mma_sync" and f"D={d}, N={n}" in why


def test_alibi_and_rope_dispatch_like_the_plain_call():
    # The wgmma kernel has both (constants ALIBI, ROPE): only the GPU check remains.
    plain = flash.dispatch(_q(), False)
    assert flash.dispatch(_q(), False, alibi_slopes="default") == plain
    assert flash.dispatch(_q(), False, rope=(None, None)) == plain


def test_the_switch_turns_dispatch_off(monkeypatch):
    monkeypatch.setattr(debug, "dispatch_hopper", False)
    assert flash.dispatch(_q(), False) == ("mma_sync", "debug.dispatch_hopper is off")


def test_without_an_sm_90a_gpu_the_mma_sync_kernel_runs():
    from attention_proto import cuda

    if cuda.is_available() and cuda.properties()["arch"] == "sm_90a":
        pytest.skip("this machine has an sm_90a GPU (test_gpu_flash_dispatch.py covers it)")
    assert flash.dispatch(_q(), False) == ("mma_sync", "the wgmma kernel needs an sm_90a GPU")


def test_the_plan_is_measured_ascending_and_compiled():
    # HOPPER_PLAN (sessions 10-11's tile sweeps): per (D, causal), tiles from a
    # key count on, ascending from 0 keys; every entry a valid tile (192 rows at
    # D=64 only) that fits in shared memory; the tile at 0 keys has 128 rows or
    # more (dispatch()'s causal grid check counts its query blocks).
    assert {d for d, _ in flash.HOPPER_PLAN} == set(flash.HOPPER_MIN_SEQLEN_Q)
    assert set(flash.HOPPER_MIN_SEQLEN_Q) <= set(flash.HEAD_DIMS)
    assert set(flash.HOPPER_FALLBACK_MIN_SEQLEN_Q) == {128}
    names = {s.name for s in flash_hopper.all_specs()}
    for (d, causal), entries in flash.HOPPER_PLAN.items():
        keys = [k for k, _ in entries]
        assert keys[0] == 0 and keys == sorted(set(keys))
        for k, (step, bm, bn, persistent, o_tma) in entries:
            for n in (k, k + 1, k + 4095):
                cfg = flash.hopper_config(d, causal, n)
                if n < ([x for x in keys if x > k] or [1 << 62])[0]:
                    assert (cfg.step, cfg.block_m, cfg.block_n) == (step, bm, bn)
                    assert cfg.persistent == persistent and not cfg.alibi_mma
                    assert cfg.o_tma == o_tma
            assert cfg.block_m in (128, 192) and cfg.shared_bytes(d) <= 227 * 1024
            assert flash_hopper.builds(cfg, d)
            # CI compiles each with its ALiBi and RoPE forms for sm_90a.
            cfg = flash.hopper_config(d, causal, k)
            assert flash_hopper.spec(d, "bfloat16", causal, cfg).name in names
            alibi_cfg = flash.hopper_config(d, causal, k, alibi=True)
            assert flash_hopper.spec(d, "bfloat16", causal, alibi_cfg, alibi=True).name in names
            rope_cfg = flash.hopper_config(d, causal, k, rope=True)
            assert flash_hopper.spec(d, "bfloat16", causal, rope_cfg, rope=1).name in names
            both = flash.hopper_config(d, causal, k, alibi=True, rope=True)
            # ALiBi with RoPE: one CTA per block (ptxas spilled on the
            # persistent grid, causal ALIBI=2 + ROPE).
            assert both.alibi_mma == (both.step >= 4) and not both.persistent
            assert not both.alibi_start
            for mode in (1, 2):
                spec = flash_hopper.spec(d, "float16", causal, both, alibi=True, rope=mode)
                assert spec.name in names


def test_alibi_and_rope_calls_adapt_the_plans_tile():
    # ALiBi at steps (d)/(e): causal, the key part as S's start on the plan's
    # tile, the diagonal's key tile first then ascending on 128 x 128; without
    # the mask, one turn from the diagonal, the start value where the plan has
    # 192 keys, else the key part on the tensor cores. RoPE: the plan's grid
    # where the rotation compiles without spills there (128 x 128), else one
    # CTA per block. ALiBi without RoPE at steps (d)/(e) adds its window of
    # key tiles (alibi_window).
    for (d, causal), entries in flash.HOPPER_PLAN.items():
        for k, _ in entries:
            plain = flash.hopper_config(d, causal, k)
            alibi_cfg = flash.hopper_config(d, causal, k, alibi=True)
            assert alibi_cfg.alibi_window == (plain.step >= 4)
            alibi_cfg = replace(alibi_cfg, alibi_window=False)
            if plain.step >= 4 and causal:
                order = 3 if (plain.block_m, plain.block_n) == (128, 128) else None
                assert alibi_cfg == replace(plain, alibi_start=True, key_order=order)
            elif plain.step >= 4 and plain.block_n == 192:
                assert alibi_cfg == replace(plain, alibi_start=True, key_order=2)
            elif plain.step >= 4:
                assert alibi_cfg == replace(plain, alibi_mma=True, key_order=2)
                assert flash_hopper.fits_alibi_mma(alibi_cfg, d)
            else:
                assert alibi_cfg == plain
            with_rope = flash.hopper_config(d, causal, k, alibi=True, rope=True)
            assert not with_rope.alibi_window
            if plain.step >= 4:  # ALiBi with RoPE: the tensor cores' key part
                assert with_rope.alibi_mma and not with_rope.alibi_start
                assert with_rope.key_order == (None if causal else 2)
                narrow = (d, plain.block_n) == (128, 192)
                assert with_rope.block_n == (176 if narrow else plain.block_n)
            rope_cfg = flash.hopper_config(d, causal, k, rope=True)
            # Q rotated ahead by the producer's warps where its second buffer
            # fits beside a 128-row plan tile (the plan's grid kept), else by
            # the consumers.
            takes_ahead = plain.block_m == 128 and plain.step >= 4
            if takes_ahead:
                takes_ahead = flash_hopper.builds(replace(plain, rope_ahead=True), d, rope=1)
            if not takes_ahead and plain.persistent and (d, causal) in flash.ROPE_AHEAD_TILES:
                # No room beside the plan tile: the tile rope_grid measured.
                block_m, block_n, o_tma = flash.ROPE_AHEAD_TILES[d, causal]
                assert rope_cfg.rope_ahead and rope_cfg.persistent
                assert (rope_cfg.block_m, rope_cfg.block_n, rope_cfg.o_tma) == (
                    block_m,
                    block_n,
                    o_tma,
                )
                assert flash_hopper.builds(rope_cfg, d, rope=1)
                continue
            assert rope_cfg.rope_ahead == takes_ahead
            fits = flash_hopper.rope_fits_persistent(plain) or takes_ahead
            assert rope_cfg.persistent == (plain.persistent and fits)
            assert rope_cfg.block_n == plain.block_n
    assert flash.hopper_config(128, False, 8192).persistent
    assert flash.hopper_config(128, True, 8192).persistent
    assert flash.hopper_config(64, False, 1024).block_m == 192
    assert flash.hopper_config(128, False, 2048, rope=True).persistent
    assert flash.hopper_config(128, True, 2048, rope=True).rope_ahead
    assert flash.hopper_config(128, True, 8192, rope=True).rope_ahead
    assert not flash.hopper_config(128, False, 8192, rope=True).rope_ahead
    assert not flash.hopper_config(128, True, 8192, alibi=True, rope=True).rope_ahead
    assert flash.hopper_config(128, True, 8192, alibi=True).alibi_start
    assert flash.hopper_config(128, False, 8192, alibi=True).alibi_start
    assert flash.hopper_config(128, False, 2048, alibi=True).alibi_mma
    assert flash.hopper_config(128, True, 2048, alibi=True).alibi_start
    assert flash.hopper_config(64, True, 8192, alibi=True).alibi_start
    assert flash.hopper_config(64, False, 8192, alibi=True).alibi_mma


def test_rope_passes_rule_follows_the_measured_table():
    # ROPE_PASSES_FROM_KEYS (bench/diag/rope_path_grid.py): q by the standalone
    # pass from these key counts on, and with ALiBi at every length.
    assert set(flash.ROPE_PASSES_FROM_KEYS) == set(flash.HOPPER_PLAN)
    for (d, causal), from_keys in flash.ROPE_PASSES_FROM_KEYS.items():
        for nk in (512, 1024, 2048, 4095, 4096, 8191, 8192, 16384):
            assert flash.rope_passes_rule(d, causal, nk) == (nk >= from_keys), (d, causal, nk)
            assert flash.rope_passes_rule(d, causal, nk, alibi=True)
    assert not flash.rope_passes_rule(128, False, 2048)
    assert flash.rope_passes_rule(128, False, 4096) and flash.rope_passes_rule(64, False, 512)
    assert not flash.rope_passes_rule(128, True, 4096) and flash.rope_passes_rule(128, True, 8192)
    assert not flash.rope_passes_rule(64, True, 2048) and flash.rope_passes_rule(64, True, 4096)


def test_rope_by_passes_only_where_the_wgmma_plan_is_dispatched(monkeypatch):
    k = np.zeros((1, 2, 8192, 128), np.float16)
    # Without an sm_90a GPU (or with the switch off) the mma.sync kernel rotates q.
    monkeypatch.setattr(debug, "dispatch_hopper", False)
    assert not flash.rope_by_passes(_q(8192), k, False)
    monkeypatch.setattr(flash, "dispatch", lambda q, causal, *a, **kw: ("wgmma", "test"))
    assert flash.rope_by_passes(_q(8192), k, False)
    assert flash.rope_by_passes(_q(8192), k, True)
    assert not flash.rope_by_passes(_q(2048), k[:, :, :2048], False)
    assert flash.rope_by_passes(_q(2048), k[:, :, :2048], False, alibi=True)
    # Keys, not queries, set the length (Nq < Nk: decode-like prefill chunks).
    assert flash.rope_by_passes(_q(600), k, False)
    # A config= names the kernel that rotates q; malformed k is left to the checks.
    assert not flash.rope_by_passes(_q(8192), k, False, config=flash.hopper_config(128, False))
    assert not flash.rope_by_passes(_q(8192), k[0], False)

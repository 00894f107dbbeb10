"""Which flash kernel a call gets (flash.dispatch), without a GPU: every reason
to stay on the mma.sync kernel that does not need the device. The GPU side
(the wgmma kernel chosen on sm_90a, its results) is in test_gpu_flash_dispatch.py."""

from __future__ import annotations

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


def test_wide_tiles_from_8k_keys_are_valid_configs():
    # HOPPER_WIDE_PLAN (session 9's tile sweep): step (e) 128 x 192 at D=128 and
    # D=64 non-causal, 128 x 176 at D=128 causal, from 8K keys; below, HOPPER_PLAN.
    n = flash.HOPPER_WIDE_MIN_SEQLEN_K
    assert n == 8192
    for (d, causal), (step, bm, bn) in flash.HOPPER_WIDE_PLAN.items():
        cfg = flash.hopper_config(d, causal, n)
        assert (cfg.step, cfg.block_m, cfg.block_n) == (step, bm, bn)
        assert cfg.block_m == 128 and cfg.shared_bytes(d) <= 227 * 1024
        assert flash.hopper_config(d, causal, n - 1) == flash.hopper_config(d)
    assert flash.hopper_config(64, True, 1 << 20) == flash.hopper_config(64)
    # CI compiles each (and its ALiBi/RoPE variants) for sm_90a.
    names = {s.name for s in flash_hopper.all_specs()}
    for (d, causal), (step, bm, bn) in flash.HOPPER_WIDE_PLAN.items():
        cfg = flash_hopper.HopperConfig(bm, bn, step)
        for variant in ({}, {"alibi": True}, {"rope": 1}):
            assert flash_hopper.spec(d, "bfloat16", causal, cfg, **variant).name in names


def test_the_dispatch_table_names_measured_head_dims_only():
    # D=128: step (e) on 128 x 128 tiles, D=64: step (c) on 128 x 64 (session
    # 8); step (b), the fallback where TMA cannot describe a layout, at D=128 only.
    assert set(flash.HOPPER_PLAN) == set(flash.HOPPER_MIN_SEQLEN_Q) <= set(flash.HEAD_DIMS)
    assert set(flash.HOPPER_FALLBACK_MIN_SEQLEN_Q) == {128}
    assert flash.HOPPER_PLAN[128][0] == 5 and flash.HOPPER_PLAN[64][0] == 3
    for d in flash.HOPPER_PLAN:
        cfg = flash.hopper_config(d)
        assert cfg.step == flash.HOPPER_PLAN[d][0]
        assert cfg.block_m == 128  # dispatch()'s causal grid check counts its rows
        assert cfg.shared_bytes(d) <= 227 * 1024

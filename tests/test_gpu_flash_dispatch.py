"""flash_attention's kernel choice on a GPU: on sm_90a, D=64 and 128 from
N = 512 take the Hopper wgmma kernel (flash.dispatch), through the torch fast path and
the NumPy path alike, with the same contract as the mma.sync kernel."""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import debug
from attention_proto.ops import flash, flash_hopper
from tolerance import assert_close_to_reference, attention_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("hopper_only")]


_inputs = attention_inputs


def test_d128_from_512_rows_takes_the_wgmma_kernel(rng):
    q, k, v = _inputs(rng, 1, 2, 1024, 1024, 128, "bfloat16")
    kernel, why = flash.dispatch(q, True)
    assert kernel == "wgmma" and why == "D=128, N=1024 on sm_90a: the wgmma kernel"
    prepared = flash.prepare(q, k, v, causal=True)
    assert isinstance(prepared, flash_hopper.Prepared)
    assert prepared.config == flash.hopper_config(128, True, 1024)
    assert prepared.reason == f"{why}, {flash.hopper_plan_words(prepared.config)}"
    assert flash.prepare(q[:, :, :500], k, v, causal=True).reason.startswith("D=128, N=500")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", flash.DTYPES)
def test_dispatched_calls_match_fp64_and_the_mma_sync_kernel(rng, causal, dtype, monkeypatch):
    # GQA 4/2, Nq != Nk, a partial last tile: the whole contract on the new path.
    q, k, v = _inputs(rng, 1, 4, 1100, 1300, 128, dtype, kvh=2)
    o, lse = ap.flash_attention(q, k, v, causal=causal, return_lse=True)
    assert_close_to_reference(o, q, k, v, dtype, causal=causal)
    monkeypatch.setattr(debug, "dispatch_hopper", False)
    o_mma, lse_mma = ap.flash_attention(q, k, v, causal=causal, return_lse=True)
    np.testing.assert_allclose(np.asarray(lse), np.asarray(lse_mma), rtol=1e-5, atol=1e-5)
    of, omf = (np.asarray(x).astype(np.float32) for x in (o, o_mma))
    np.testing.assert_allclose(of, omf, rtol=2**-6, atol=2**-8)


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("nq,nk", [(512, 512), (513, 127), (640, 1025)])
def test_each_head_dims_plan_from_512_rows_matches_fp64(rng, d, nq, nk):
    # The dispatch threshold and a partial last tile on each D's plan (step (e)
    # at D=128, step (c) on 128 x 64 tiles at D=64), both masks, Nq != Nk.
    q, k, v = _inputs(rng, 1, 4, nq, nk, d, "bfloat16", kvh=2)
    assert flash.prepare(q, k, v, allocate=False).config == flash.hopper_config(d)
    for causal in (False, True):
        o = ap.flash_attention(q, k, v, causal=causal)
        assert_close_to_reference(o, q, k, v, "bfloat16", causal=causal)


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("from_keys", [4096, 8192])
def test_each_plan_entry_from_its_key_count_matches_fp64(rng, d, causal, from_keys):
    # HOPPER_PLAN's tile from `from_keys` keys (a partial last tile, GQA);
    # ALiBi on its tile with the key part on the tensor cores or as S's start.
    nk = from_keys + 5
    q, k, v = _inputs(rng, 1, 2, 520, nk, d, "bfloat16", kvh=1)
    prepared = flash.prepare(q, k, v, causal=causal, allocate=False)
    assert prepared.config == flash.hopper_config(d, causal, nk)
    assert prepared.reason.endswith(flash.hopper_plan_words(prepared.config))
    below = flash.prepare(q, k[:, :, : from_keys - 1], v[:, :, : from_keys - 1], causal=causal)
    assert below.config == flash.hopper_config(d, causal, from_keys - 1)
    o = ap.flash_attention(q, k, v, causal=causal)
    assert_close_to_reference(o, q, k, v, "bfloat16", causal=causal)
    slopes = ap.reference.alibi_slopes(2).astype(np.float32)
    with_alibi = flash.prepare(q, k, v, causal=causal, alibi_slopes=slopes, allocate=False)
    assert with_alibi.config == flash.hopper_config(d, causal, nk, alibi=True)
    cfg = with_alibi.config
    assert (cfg.alibi_mma or cfg.alibi_start) == (cfg.step >= 4)
    o = ap.flash_attention(q, k, v, causal=causal, alibi_slopes=slopes)
    i = np.arange(520)[:, None] + nk - 520
    bias = -slopes[:, None, None] * np.abs(i - np.arange(nk)[None, :])
    assert_close_to_reference(o, q, k, v, "bfloat16", causal=causal, bias=bias[None])


@pytest.mark.parametrize("poison", [False, True])
def test_torch_fast_path_takes_the_wgmma_kernel(poison, monkeypatch):
    torch = pytest.importorskip("torch")
    # The common call (o like q, current stream) and the general path (lse,
    # poisoned outputs) both launch the wgmma plan's 5 pointer slots.
    monkeypatch.setattr(debug, "poison_outputs", poison)
    g = torch.Generator(device="cuda").manual_seed(7)
    q, k, v = (
        torch.randn(2, 2, 1024, 128, device="cuda", dtype=torch.bfloat16, generator=g)
        for _ in range(3)
    )
    # An empty plan cache: the other parameter's run made these plans already.
    monkeypatch.setattr(flash, "_PLANS", {})
    o = ap.flash_attention(q, k, v, causal=True)
    o2, lse = ap.flash_attention(q, k, v, causal=True, return_lse=True)
    new = list(flash._PLANS.values())
    assert len(new) == 2 and all(isinstance(p, flash_hopper.Prepared) for p in new)
    torch.cuda.synchronize()
    assert torch.equal(o, o2)  # one kernel, one arithmetic
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
    assert_close_to_reference(o.float().cpu().numpy(), qn, kn, vn, "bfloat16", causal=True)
    assert torch.isfinite(lse).all()


def test_a_hopper_config_picks_the_wgmma_kernel_at_any_length(rng):
    q, k, v = _inputs(rng, 1, 2, 97, 97, 64, "float16")
    cfg = flash_hopper.HopperConfig(block_m=64, block_n=64, step=2)
    assert flash.dispatch(q, False, config=cfg)[0] == "wgmma"
    o = ap.flash_attention(q, k, v, config=cfg)
    assert_close_to_reference(o, q, k, v, "float16")


def test_one_cached_plan_serves_new_buffers(rng, monkeypatch):
    torch = pytest.importorskip("torch")
    # Step (c)'s descriptors hold addresses: the cached plan encodes them from
    # each call's q, k, v, so new buffers of the same layout give their own
    # answers (a stale descriptor would read the first call's inputs).
    outs, inputs = [], []
    monkeypatch.setattr(flash, "_PLANS", {})
    for seed in (1, 2, 3):
        g = torch.Generator(device="cuda").manual_seed(seed)
        q, k, v = (
            torch.randn(1, 2, 1024, 128, device="cuda", dtype=torch.bfloat16, generator=g)
            for _ in range(3)
        )
        outs.append(ap.flash_attention(q, k, v))
        inputs.append((q, k, v))
    new = list(flash._PLANS.values())
    assert len(new) == 1 and isinstance(new[0], flash_hopper.Prepared)  # one plan, 3 calls
    assert new[0].config == flash.hopper_config(128)
    torch.cuda.synchronize()
    for o, (q, k, v) in zip(outs, inputs, strict=True):
        qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))
        assert_close_to_reference(o.float().cpu().numpy(), qn, kn, vn, "bfloat16")


def test_a_layout_tma_cannot_describe_falls_back_to_step_2():
    torch = pytest.importorskip("torch")
    # K/V broadcast over heads (stride 0): TMA needs a real stride.
    q = torch.randn(1, 4, 1024, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, 1, 1024, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    ke, ve = k.expand(1, 4, 1024, 128), v.expand(1, 4, 1024, 128)
    prepared = flash.prepare(q, ke, ve, allocate=False)
    assert prepared.config.step == 2 and "broadcast view" in prepared.reason
    o = ap.flash_attention(q, ke, ve)
    torch.cuda.synchronize()
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, ke, ve))
    assert_close_to_reference(o.float().cpu().numpy(), qn, kn, vn, "bfloat16")


def test_d64_broadcast_views_fall_back_to_mma_sync():
    torch = pytest.importorskip("torch")
    # D=64 from N=512 takes step (c); TMA refuses the broadcast K/V, and step
    # (b) was not faster at D=64: the mma.sync kernel, reason recorded.
    q = torch.randn(1, 2, 4096, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 1, 4096, 64, device="cuda", dtype=torch.bfloat16).expand(1, 2, 4096, 64)
    prepared = flash.prepare(q, k, k, allocate=False)
    assert isinstance(prepared, flash.Prepared) and "mma.sync kernel instead" in prepared.reason


def test_bad_input_on_the_wgmma_path_names_flash_attention():
    torch = pytest.importorskip("torch")
    q = torch.randn(1, 2, 1024, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 2, 1024, 128, device="cuda", dtype=torch.float16)
    assert flash.dispatch(q, False)[0] == "wgmma"
    with pytest.raises(TypeError, match=r"^\[flash_attention\] "):
        ap.flash_attention(q, k, k)

"""Proto 7 on a CPU: the RoPE and ALiBi kernels compile for sm_90a with the
SASS they are meant to have, and bad input is refused before any GPU work."""

from __future__ import annotations

import re

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import reference, runtime, sass
from attention_proto.ops import flash, rope, tuning

pytestmark = pytest.mark.skipif(not ap.cuda.compiler_available(), reason="NVRTC not found")


@pytest.mark.parametrize("spec", rope.all_specs(), ids=lambda s: s.name)
def test_rope_moves_16_bytes_per_access_without_spills(spec):
    result = runtime.compile_for(spec)
    res = sass.resources_from_log(result.log, "rope")
    assert not res.spills, res
    text = sass.disassemble(result.binary)
    # Two 16-byte chunks of x and two of each table in, two chunks out.
    assert len(re.findall(r"\bLDG\.E\.(?:CONSTANT\.)?128\b|\bLDG\.E\.128\.", text)) == 6
    assert len(re.findall(r"\bSTG\.E\.128\b", text)) == 2
    assert not re.search(r"\b(?:LDG|STG)\.E\.(?:U16|16)\b", text), "a 2-byte access survived"


@pytest.mark.parametrize("d", flash.HEAD_DIMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "variant,suffix",
    [({"alibi": True}, "__ALIBI_1")]
    + [({"rope": m}, f"__ROPE_{m}") for m in sorted(flash.ROPE_MODES.values())],
    ids=lambda v: str(v),
)
def test_fused_variant_keeps_the_mma_schedule(d, causal, variant, suffix):
    cfg = tuning.best_config(d, "bfloat16", causal)
    plain = runtime.compile_for(flash.spec(d, "bfloat16", causal, cfg))
    fused_spec = flash.spec(d, "bfloat16", causal, cfg, **variant)
    assert fused_spec.name.endswith(suffix)
    fused = runtime.compile_for(fused_spec)
    plain_sass, fused_sass = (sass.disassemble(r.binary) for r in (plain, fused))
    a, b = (sass.opcode_counts(t) for t in (plain_sass, fused_sass))
    assert a["HMMA"] == b["HMMA"] > 0 and a["LDSM"] == b["LDSM"]
    if "rope" in variant:
        # Q turns once, before the key loop, in a __noinline__ function: the
        # loop itself stays the plain kernel's. Inlined (at n == 0 inside the
        # loop, then before it), the loop grew by ~50 instructions and the
        # kernel ran 4-18 % slower on an H200 (session 6).
        plain_loop, fused_loop = (sass.mma_span(t) for t in (plain_sass, fused_sass))
        assert abs(fused_loop - plain_loop) <= plain_loop // 100, (plain_loop, fused_loop)
    res = sass.resources_from_log(fused.log, "flash_attention")
    assert res.spill_store_bytes <= flash.reported_spill_bytes(fused_spec), res


def test_alibi_off_keeps_the_kernel_name_and_source_constants():
    cfg = tuning.best_config(128, "bfloat16", False)
    assert "ALIBI" not in flash.spec(128, "bfloat16", False, cfg).name
    assert flash.spec(128, "bfloat16", False, cfg, alibi=True).name.endswith("__ALIBI_1")


def _x(shape=(1, 2, 5, 64), dtype=np.float16):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def test_rope_refuses_bad_input_by_name():
    x = _x()
    cos, sin = rope.rope_tables(8, 64)
    with pytest.raises(TypeError, match=r"\[rope\] x must be one of float16, bfloat16"):
        ap.rope(x.astype(np.float32), cos, sin)
    with pytest.raises(ValueError, match=r"\[rope\] head_dim must be a multiple of 16"):
        ap.rope(_x((1, 2, 5, 72)), *rope.rope_tables(8, 72))
    with pytest.raises(TypeError, match=r"\[rope\] cos must be float32"):
        ap.rope(x, cos.astype(np.float16), sin)
    with pytest.raises(ValueError, match=r"\[rope\] sin must be \[positions, head_dim / 2"):
        ap.rope(x, cos, sin[:, :16])
    with pytest.raises(ValueError, match=r"offset \+ N - 1 = 4 \.\. 8 must lie in the tables' 8"):
        ap.rope(x, cos, sin, offset=4)
    with pytest.raises(TypeError, match=r"\[rope\] offset must be an int"):
        ap.rope(x, cos, sin, offset=1.5)
    with pytest.raises(ValueError, match=r"\[rope\] x must have 4 dimensions"):
        ap.rope(x[0], cos, sin)


def test_rope_tables_match_the_reference():
    cos, sin = ap.rope_tables(40, 128, theta=500000.0)
    rc, rs = reference.rope_tables(np.arange(40), 128, theta=500000.0)
    np.testing.assert_array_equal(cos, rc.astype(np.float32))
    np.testing.assert_array_equal(sin, rs.astype(np.float32))


@pytest.mark.parametrize("interleaved", [False, True])
def test_reference_rope_conventions_pair_the_documented_elements(interleaved):
    # One pair set to (1, 0), rotated by a quarter turn, becomes (0, 1).
    d = 8
    x = np.zeros((1, 1, 1, d))
    first, second = (2, 3) if interleaved else (1, 1 + d // 2)
    x[..., first] = 1.0
    cos, sin = np.zeros((1, d // 2)), np.ones((1, d // 2))
    out = reference.rope(x, cos=cos, sin=sin, interleaved=interleaved)
    expect = np.zeros_like(x)
    expect[..., second] = 1.0
    np.testing.assert_allclose(out, expect, atol=1e-12)


def test_reference_rope_offset_is_a_position_shift():
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 16))
    np.testing.assert_allclose(
        reference.rope(x, offset=5), reference.rope(x, positions=np.arange(5, 8)), rtol=1e-6
    )


def test_flash_refuses_bad_alibi_slopes_by_name():
    r = np.random.default_rng(0)
    q = r.standard_normal((2, 4, 5, 64)).astype(np.float16)
    with pytest.raises(ValueError, match=r"alibi_slopes must be None, 'default'"):
        ap.flash_attention(q, q, q, alibi_slopes="geometric")
    with pytest.raises(TypeError, match=r"\[flash_attention\] alibi_slopes must be float32"):
        ap.flash_attention(q, q, q, alibi_slopes=np.ones(4))
    with pytest.raises(ValueError, match=r"alibi_slopes must have shape \[4\] or \[2, 4\]"):
        ap.flash_attention(q, q, q, alibi_slopes=np.ones(3, np.float32))


def test_standard_slopes_for_any_head_count():
    np.testing.assert_allclose(reference.alibi_slopes(8), 2.0 ** -np.arange(1, 9))
    twelve = reference.alibi_slopes(12)  # 8 of the 8-head sequence, 4 odd ones of 16
    np.testing.assert_allclose(twelve[:8], 2.0 ** -np.arange(1, 9))
    np.testing.assert_allclose(twelve[8:], 2.0 ** -(np.arange(4) + 0.5))


def test_symmetric_bias_equals_causal_form_where_causal_rows_look():
    causal = reference.alibi_bias(4, 3, 6)
    symmetric = reference.alibi_bias(4, 3, 6, symmetric=True)
    visible = reference.causal_mask(3, 6)
    np.testing.assert_array_equal(causal[:, visible], symmetric[:, visible])
    assert (symmetric <= 0).all()


@pytest.mark.parametrize("scores", ["lanes", "mma"])
def test_paged_alibi_variant_compiles_without_spills_and_keeps_its_schedule(scores):
    from attention_proto.ops import paged

    plain = paged.spec("paged_attention_partition", 128, 4, 16, "bfloat16", scores=scores)
    biased = paged.spec(
        "paged_attention_partition", 128, 4, 16, "bfloat16", scores=scores, alibi=True
    )
    assert "ALIBI" not in plain.name and biased.name.endswith("__ALIBI_1")
    assert (
        "ALIBI" not in paged.spec("paged_attention_reduce", 128, 4, 16, "bfloat16", alibi=True).name
    )
    a, b = (runtime.compile_for(s) for s in (plain, biased))
    assert not sass.resources_from_log(b.log, "paged_attention_partition").spills
    ca, cb = (sass.opcode_counts(sass.disassemble(r.binary)) for r in (a, b))
    assert ca.get("HMMA", 0) == cb.get("HMMA", 0) and ca.get("LDGSTS", 0) == cb.get("LDGSTS", 0)


def test_paged_refuses_bad_alibi_slopes_by_name():
    from attention_proto.ops import paged

    q = np.zeros((2, 4, 64), np.float16)
    kp = np.zeros((3, 2, 16, 64), np.float16)
    table = np.zeros((2, 1), np.int32)
    lens = np.array([3, 5], np.int32)
    with pytest.raises(TypeError, match=r"\[paged_attention\] alibi_slopes must be float32"):
        paged.paged_attention(q, kp, kp, table, lens, alibi_slopes=np.ones(4))
    with pytest.raises(ValueError, match=r"alibi_slopes must have shape \[4\] or \[2, 4\]"):
        paged.paged_attention(q, kp, kp, table, lens, alibi_slopes=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"alibi_slopes must be None, 'default'"):
        paged.paged_attention(q, kp, kp, table, lens, alibi_slopes="geometric")


def test_flash_refuses_bad_rope_tables_by_name():
    q = np.zeros((1, 2, 5, 64), np.float16)
    cos, sin = rope.rope_tables(8, 64)
    with pytest.raises(TypeError, match=r"\[flash_attention\] rope must be None or a \(cos, sin\)"):
        ap.flash_attention(q, q, q, rope=cos)
    with pytest.raises(ValueError, match=r"rope cos must be \[positions >= 5, head_dim / 2 = 32\]"):
        ap.flash_attention(q, q, q, rope=(cos[:4], sin[:4]))
    with pytest.raises(TypeError, match=r"rope sin must be float32"):
        ap.flash_attention(q, q, q, rope=(cos, sin.astype(np.float64)))
    with pytest.raises(ValueError, match=r"rope needs seqlen_q <= seqlen_k"):
        ap.flash_attention(np.zeros((1, 2, 6, 64), np.float16), q, q, rope=(cos, sin))


def test_rope_plan_key_reads_the_tables_layout_and_refuses_mixed_arrays():
    torch = pytest.importorskip("torch")
    cos, sin = (torch.from_numpy(x) for x in rope.rope_tables(8, 64))
    key = flash._rope_key((cos, sin), True)
    assert key[-1] is True and key[0][0] == (8, 32) and key[0] == key[1]
    with pytest.raises(TypeError, match=r"rope sin must be a torch tensor like q"):
        flash._rope_key((cos, sin.numpy()), False)

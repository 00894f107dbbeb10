"""Every shipped kernel compiles for sm_90a through NVRTC on this machine (no
GPU needed), and compile errors carry the log and the constants."""

from __future__ import annotations

import pytest

from attention_proto import CompileError, _core, catalog, runtime, sass
from attention_proto.ops import flash

SPECS = catalog.all_specs()


@pytest.fixture(scope="module")
def compiled():
    return {s.name: runtime.compile_for(s, "sm_90a") for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_variant_compiles_to_a_cubin_holding_its_entry(spec, compiled):
    result = compiled[spec.name]
    assert result.binary[:4] == b"\x7fELF"
    assert len(result.binary) > 1000
    assert spec.entry.encode() in result.binary
    text = sass.disassemble(result.binary)
    assert f".text.{spec.entry}" in text
    res = sass.resources_from_log(result.log, spec.entry)
    assert res.registers > 0
    allowed = flash.reported_spill_bytes(spec)
    assert res.spill_store_bytes <= allowed and res.spill_load_bytes <= allowed, (
        f"{spec.name} spills: {res} (allowed {allowed} B)"
    )
    if spec.entry == "flash_attention":
        counts = sass.opcode_counts(text)
        assert counts["HMMA"] > 0 and counts["LDSM"] > 0, counts
        if "STITCH_MODE=2" in spec.constants_description:
            # Proto 2 records this rather than forbidding it: calls through the
            # function table survive, with their arguments on a stack frame.
            assert counts["CALL"] > 0 and res.stack_frame_bytes > 0, (counts, res)
        elif allowed == 0:
            assert counts["LDL"] == counts["STL"] == 0, counts


def test_every_reported_spill_is_a_sweep_tile():
    for d, label in {**flash.REPORTED_SPILLS, **flash.REPORTED_SPILLS_ALIBI}:
        assert label in [cfg.label() for cfg in flash.sweep(d)], (d, label)


def test_compile_error_carries_log_and_constants():
    bad = runtime.kernel_spec("simple_attention", "simple_attention.cu", {"HEAD_DIM": 64})
    with pytest.raises(CompileError) as info:
        runtime.compile_for(bad)
    msg = str(info.value)
    assert "HEAD_DIM=64" in msg and "DTYPE" in msg and "sm_90a" in msg
    assert "DTYPE" in info.value.log


def test_unknown_source_and_bad_constants_are_rejected():
    with pytest.raises(ValueError, match="no embedded source named 'nope.cu'"):
        runtime.compile_for(runtime.kernel_spec("k", "nope.cu"))
    with pytest.raises(ValueError, match="constant name"):
        _core.kernel_key(_core.KernelSpec("k", "runtime_probes.cu", [("1x", "int", "1")]), "sm_90a")
    with pytest.raises(TypeError, match="constant X"):
        runtime.kernel_spec("k", "runtime_probes.cu", {"X": "text"})


def test_kernel_key_covers_constants_arch_and_is_readable():
    a = runtime.kernel_spec(
        "simple_attention",
        "simple_attention.cu",
        {"HEAD_DIM": 64, "DTYPE": 1, "ROWS_PER_BLOCK": 64},
    )
    b = runtime.kernel_spec(
        "simple_attention",
        "simple_attention.cu",
        {"HEAD_DIM": 128, "DTYPE": 1, "ROWS_PER_BLOCK": 64},
    )
    ka, kb = _core.kernel_key(a, "sm_90a"), _core.kernel_key(b, "sm_90a")
    assert ka.name == "simple_attention__HEAD_DIM_64__DTYPE_1__ROWS_PER_BLOCK_64"
    assert ka.digest != kb.digest
    assert _core.kernel_key(a, "sm_80").digest != ka.digest
    assert _core.kernel_key(a, "sm_90a").digest == ka.digest  # stable
    assert len(ka.digest) == 64


def test_float_constants_are_exact():
    s = runtime.kernel_spec("noop", "runtime_probes.cu", {"SCALE": 0.1})
    assert "0x1.999999999999ap-4" in s.constants_description


def test_monolithic_flash_body_keeps_the_algorithm_order():
    # clang-format once sorted these includes (accumulate before score): the
    # kernel still compiled and only GPU tests caught the wrong answers.
    src = _core.embedded_source("flash_attention.cu")
    body = src[src.index("#if STITCH_MODE == 0\n    //") :]
    assert body.index("flash_score.inc") < body.index("flash_softmax.inc")
    assert body.index("flash_softmax.inc") < body.index("flash_accumulate.inc")


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.entry.startswith("linear_attention")], ids=lambda s: s.name
)
def test_linear_attention_runs_on_tensor_cores_without_spills(spec, compiled):
    # Every chunk size x head dim x dtype of both kernels (Proto 6): mma.sync
    # (HMMA) fed by ldmatrix, tiles by cp.async, nothing in local memory.
    result = compiled[spec.name]
    counts = sass.opcode_counts(sass.disassemble(result.binary))
    assert counts["HMMA"] > 0 and counts["LDSM"] > 0 and counts["LDGSTS"] > 0, counts
    assert counts["LDL"] == counts["STL"] == 0, counts
    res = sass.resources_from_log(result.log, spec.entry)
    assert res.stack_frame_bytes == 0 and not res.spills, res

"""The Hopper wgmma kernel (Proto 1, ablation step (a)) without a GPU: every
variant compiles for sm_90a with HGMMA and no spills, and the operand layouts
(128-byte swizzle, matrix descriptor, accumulator/fragment layouts) agree with
a host model written from the PTX ISA. The GPU checks are in
test_gpu_flash_hopper.py."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from attention_proto import CompileError, runtime, sass
from attention_proto.ops import attention_front, flash_hopper, hopper_layout

SPECS = flash_hopper.all_specs()
# ptxas's note when it has to serialize wgmma (C7510 and kin): a correctness
# no-op but a large slowdown, so CI refuses it.
SERIALIZED = re.compile(r"wgmma\S* (instructions )?(are|is) serialized", re.I)


def _constants(s) -> dict:
    return {k: int(v) for k, v in (kv.split("=") for kv in s.constants_description.split())}


@pytest.fixture(scope="module")
def compiled():
    """Each variant compiled once for the tests of this module (NVRTC, ~0.4 s each)."""
    return {s.name: runtime.compile_for(s, "sm_90a") for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_variant_compiles_with_hgmma_and_no_spills(spec, compiled):
    result = compiled[spec.name]
    text = sass.disassemble(result.binary)
    assert f".text.{spec.entry}" in text
    res = sass.resources_from_log(result.log, spec.entry)
    assert not res.spills and res.stack_frame_bytes == 0, res
    assert not SERIALIZED.search(result.log), result.log
    counts = sass.opcode_counts(
        text, ("HGMMA", "HMMA", "LDL", "STL", "LDGSTS", "UTMALDG", "UTMASTG")
    )
    c = _constants(spec)
    # One unrolled key step: D / 16 wgmmas for S = Q K^T, BLOCK_N / 16 for O += P V;
    # step (b) issues the last step's P V after the loop: one more P V body.
    pv_bodies = 1 if c["HOPPER_STEP"] == 1 else 2
    # ALIBI=2 adds one k16 step to S: ALiBi's key part on the tensor cores.
    s_steps = c["HEAD_DIM"] // 16 + (1 if c.get("ALIBI") == 2 else 0)
    assert counts["HGMMA"] == s_steps + pv_bodies * c["BLOCK_N"] // 16, counts
    assert counts["HMMA"] == counts["LDL"] == counts["STL"] == 0, counts
    if c["HOPPER_STEP"] <= 2:  # steps (a), (b): cp.async loads, no TMA
        assert counts["LDGSTS"] > 0 and counts["UTMALDG"] == 0, counts
    else:  # steps (c), (d): every tile by TMA, no cp.async left
        assert counts["UTMALDG"] > 0 and counts["LDGSTS"] == 0, counts
    # O_TMA: the output leaves by TMA stores (one per 64-column block of a
    # warpgroup's rows); otherwise by each thread's stores.
    assert counts["UTMASTG"] == (c["HEAD_DIM"] // 64 if c.get("O_TMA") else 0), counts
    # Step (d): the producer gives registers back, the consumers take them
    # (ptxas drops setmaxnreg, with warning C7508, where it cannot use it).
    setmaxreg = re.findall(r"USETMAXREG\.(\w+)", text)
    if c["HOPPER_STEP"] >= 4:
        assert sorted(setmaxreg) == ["DEALLOC", "TRY_ALLOC"], setmaxreg
        assert "C7508" not in result.log, result.log
    else:
        assert not setmaxreg, setmaxreg
    # Step (e) with two consumer warpgroups: they pass turns on named barriers
    # of 256 threads (0x100; __syncthreads is BAR.SYNC 0x0 with no count).
    named = re.findall(r"\bBAR\.(?:SYNC|ARV)\S* ([^;]*), 0x100 ;", text)
    if c.get("O_TMA") == 2 and c["BLOCK_M"] == 128:
        # O_TMA 2's one sync of both consumer warpgroups before the output
        # goes through the last V stage: barrier 1 + 3 * 2.
        assert named.count("0x7") == 1, named
        named = [x for x in named if x != "0x7"]
    if c["HOPPER_STEP"] >= 5 and c["BLOCK_M"] >= 128:
        # The first turn, the loop's sync and arrive, the last (three
        # warpgroups, a ring, name their barrier by a register).
        assert len(named) >= 3, named
    else:
        assert not named, named


def test_three_consumer_warpgroups_only_where_built():
    # 192 query rows: three consumer warpgroups at 160 registers a thread, built
    # for D=64 at the warp-specialized steps; D=128's accumulators spill there.
    assert flash_hopper.HopperConfig(192, 128, step=5).threads == 512
    with pytest.raises(ValueError, match="block_m 192 needs step 4 or 5"):
        flash_hopper.HopperConfig(192, 128, step=3)
    with pytest.raises(ValueError, match="built for head_dim"):
        flash_hopper.spec(128, "bfloat16", False, flash_hopper.HopperConfig(192, 128, step=5))


def test_step_d_adds_the_producer_warpgroup():
    assert flash_hopper.HopperConfig(128, 128, step=4).threads == 384
    assert flash_hopper.HopperConfig(64, 128, step=4).threads == 256
    assert flash_hopper.HopperConfig(128, 128, step=3).threads == 256


def test_probe_compiles_with_its_static_checks():
    for dtype in flash_hopper.DTYPES:
        result = runtime.compile_for(flash_hopper.probe_spec(dtype), "sm_90a")
        counts = sass.opcode_counts(sass.disassemble(result.binary), ("HGMMA", "LDL", "STL"))
        assert counts == {"HGMMA": 12, "LDL": 0, "STL": 0}, counts


@pytest.mark.parametrize(
    "start,lbo,sbo", [(0x400, 16, 1024), (0x12340, 64 * 128, 1024), (0x3FFF0, 128 * 128, 1024)]
)
def test_cpp_descriptor_matches_the_host_model(start, lbo, sbo):
    desc = hopper_layout.wgmma_descriptor(start, lbo, sbo)
    checks = {"CHECK_START": start, "CHECK_LBO": lbo, "CHECK_SBO": sbo}
    ok = flash_hopper.probe_spec(**checks, EXPECT_LO=desc & 0xFFFFFFFF, EXPECT_HI=desc >> 32)
    runtime.compile_for(ok, "sm_90a")
    bad = flash_hopper.probe_spec(**checks, EXPECT_LO=(desc ^ 1) & 0xFFFFFFFF, EXPECT_HI=desc >> 32)
    with pytest.raises(CompileError, match="descriptor low word"):
        runtime.compile_for(bad, "sm_90a")


@pytest.mark.parametrize("rows,row,chunk", [(64, 0, 0), (64, 13, 5), (128, 77, 11), (64, 63, 15)])
def test_cpp_sw128_offset_matches_the_host_model(rows, row, chunk):
    expect = hopper_layout.sw128_offset(rows, row, chunk)
    checks = {"CHECK_ROWS": rows, "CHECK_ROW": row, "CHECK_CHUNK": chunk}
    runtime.compile_for(flash_hopper.probe_spec(**checks, EXPECT_OFFSET=expect), "sm_90a")
    with pytest.raises(CompileError, match="sw128 offset"):
        runtime.compile_for(flash_hopper.probe_spec(**checks, EXPECT_OFFSET=expect + 16), "sm_90a")


@pytest.mark.parametrize("cfg", flash_hopper.CONFIGS, ids=lambda c: c.label())
def test_shared_bytes_mirror_matches_the_kernel_header(cfg):
    for d in flash_hopper.HEAD_DIMS:
        checks = {"CHECK_D": d, "CHECK_M": cfg.block_m, "CHECK_N": cfg.block_n}
        spec = flash_hopper.probe_spec(**checks, EXPECT_SHARED=cfg.shared_bytes(d))
        runtime.compile_for(spec, "sm_90a")
        assert cfg.shared_bytes(d) <= 227 * 1024  # H100/H200 opt-in limit per block


def test_sw128_is_the_documented_pattern():
    # PTX ISA: within each 1024-byte atom (8 rows of 128 bytes), 16-byte chunk c
    # of row r lands at chunk c ^ r. Each tile is a permutation of its bytes'
    # 16-byte chunks, and every row keeps its 128 bytes.
    for rows in (64, 128):
        seen = set()
        for row in range(rows):
            for chunk in range(16):
                off = hopper_layout.sw128_offset(rows, row, chunk)
                assert off % 16 == 0
                assert off // 128 == (chunk // 8) * rows + row
                assert (off % 128) // 16 == (chunk % 8) ^ (row % 8)
                seen.add(off)
        assert seen == set(range(0, rows * 16 * 16, 16))
    assert hopper_layout.sw128_hardware(0x380 + 0x10) == 0x380 + (0x10 ^ 0x70)


def test_descriptor_fields_round_trip():
    desc = hopper_layout.wgmma_descriptor(0x12340, 8192, 1024)
    assert desc == 0x4000004002001234
    assert hopper_layout.decode_descriptor(desc) == {
        "start": 0x12340,
        "lbo": 8192,
        "sbo": 1024,
        "base_offset": 0,
        "swizzle": 1,
    }


def test_accumulator_layout_covers_the_tile_once():
    for n in (64, 128):
        cells = [
            hopper_layout.accumulator_position(t, j, e)
            for t in range(128)
            for j in range(n // 8)
            for e in range(4)
        ]
        assert sorted(cells) == [(r, c) for r in range(64) for c in range(n)]


def test_packed_scores_are_the_a_fragment():
    # The kernel packs s[2kk + r // 2][2 (r % 2) + {0, 1}] into A register r of
    # key step kk. The A fragment of m64k16 (PTX ISA) holds in register r row
    # 16 w + g + 8 (r % 2), columns 2 t + 8 (r // 2) + {0, 1}: the same cells.
    for t in range(128):
        w, g, q = t // 32, (t % 32) // 4, t % 4
        for kk in range(8):
            for r in range(4):
                for half in range(2):
                    j, e = 2 * kk + r // 2, 2 * (r % 2) + half
                    row, col = hopper_layout.accumulator_position(t, j, e)
                    assert (row, col - 16 * kk) == (
                        16 * w + g + 8 * (r % 2),
                        2 * q + 8 * (r // 2) + half,
                    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(address=8), "global address must be 16-byte aligned"),
        (dict(strides=[250, 2560, 5120]), "strides must be multiples of 16"),
        (dict(box=[64, 300, 1, 1]), "box sizes must be in 1..256"),
        (dict(box=[128, 64, 1, 1]), "inner extent must be at most 128 bytes"),
        (dict(dims=[128, 10, 2]), "one stride per dim after the first"),
    ],
)
def test_tensor_map_refuses_what_tma_cannot_describe(kwargs, message):
    from attention_proto import _core

    args = dict(address=1024, dims=[128, 10, 2, 2], strides=[256, 2560, 5120], box=[64, 64, 1, 1])
    args |= kwargs
    with pytest.raises(ValueError, match=r"\[tma\] .*" + re.escape(message)):
        _core.encode_tensor_map(1, args["address"], args["dims"], args["strides"], args["box"], 128)


def test_tensor_map_dims_innermost_first_and_size_one_strides(monkeypatch):
    calls = []
    monkeypatch.setattr(
        flash_hopper._core, "encode_tensor_map", lambda *a: calls.append(a) or bytes(128)
    )
    # Packed qkv [B=2, H=4, N=333, D=128] viewed from [B, N, 3, H, D]: strides
    # (333 * 3 * 4 * 128, 128, 3 * 4 * 128) elements.
    flash_hopper.tensor_map(4096, (2, 4, 333, 128), (511488, 128, 1536, 1), 1, 64)
    # B = 1, H = 1, N = 1 with stride 0 reported for each size-1 dimension.
    flash_hopper.tensor_map(4096, (1, 1, 1, 64), (0, 0, 0, 1), 0, 128)
    assert calls[0] == (1, 4096, [128, 333, 4, 2], [3072, 256, 1022976], [64, 64, 1, 1], 128)
    assert calls[1] == (0, 4096, [64, 1, 1, 1], [128, 128, 128], [64, 128, 1, 1], 128)
    with pytest.raises(ValueError, match=r"needs a real head stride, got a broadcast view"):
        flash_hopper.tensor_map(4096, (1, 8, 16, 64), (0, 0, 64, 1), 0, 64)


# The argument block attention_front packs: params (64 bytes), strides (96),
# then the five pointer slots q, k, v, o, lse.
PACKED_PREFIX = [(0, 64), (64, 96)] + [(160 + 8 * i, 8) for i in range(5)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_compiled_parameters_match_the_packed_block(spec, compiled):
    # The CPU reading of the cubin's parameter table (the driver's
    # cuFuncGetParamInfo answers the same on a GPU: test_gpu_flash_hopper.py):
    # the packed prefix sits where the compiler put it, and step (c)'s three
    # descriptors follow, 128 bytes each, at the offsets place_tensor_maps uses.
    layout = sass.parameter_layout(compiled[spec.name].binary, spec.entry)
    # With ALIBI or ROPE the slopes', cos' and sin's pointers follow lse.
    c = _constants(spec)
    variants = c.get("ALIBI") or c.get("ROPE")
    # ALIBI_WINDOW: the heads' norms after them (alibi_norms).
    extras = 4 if c.get("ALIBI_WINDOW") else 3 if variants else 0
    prefix = PACKED_PREFIX + [(200 + 8 * i, 8) for i in range(extras)]
    if c.get("KEY_SPLIT"):  # the parts' scratch pointer follows lse
        prefix = PACKED_PREFIX + [(200, 8)]
    assert layout[: len(prefix)] == prefix, layout
    maps = layout[len(prefix) :]
    if _constants(spec)["HOPPER_STEP"] < 3:
        assert maps == [], layout
        return
    # q, k, v and (O_TMA) the output.
    assert [size for _, size in maps] == [128] * (4 if c.get("O_TMA") else 3), layout
    # 64-byte aligned in the constant bank (its parameters start at 0x210 on
    # sm_90), so not at multiples of 64 within the block.
    assert all((0x210 + offset) % 64 == 0 for offset, _ in maps), layout
    descriptors = [bytes([i + 1]) * 128 for i in range(len(maps))]
    packed = prefix[-1][0] + 8
    block = flash_hopper.place_tensor_maps(bytes(packed), descriptors, layout)
    assert len(block) == maps[-1][0] + 128
    for data, (offset, _) in zip(descriptors, maps, strict=True):
        assert block[offset : offset + 128] == data
    assert block[:packed] == bytes(packed)


def test_place_tensor_maps_refuses_a_layout_without_descriptors():
    with pytest.raises(ValueError, match="128-byte TMA descriptors"):
        flash_hopper.place_tensor_maps(bytes(200), [bytes(128)] * 3, PACKED_PREFIX)
    overlapping = PACKED_PREFIX + [(192, 128), (320, 128), (448, 128)]
    with pytest.raises(ValueError, match="overlaps"):
        flash_hopper.place_tensor_maps(bytes(200), [bytes(128)] * 3, overlapping)


def test_step_d_consumers_use_registers_beyond_the_entry_count(compiled):
    # setmaxnreg.inc gives the consumer warpgroups more registers than the
    # 384-thread entry count ptxas reports (bench hopper records both).
    cfg = flash_hopper.HopperConfig(128, 128, step=4)
    spec = flash_hopper.spec(128, "bfloat16", False, cfg)
    result = compiled[spec.name]
    entry = sass.resources_from_log(result.log, spec.entry).registers
    assert sass.registers_named(sass.disassemble(result.binary)) > entry == 168


def test_persistent_grid_takes_rope_on_128_key_tiles():
    # ptxas spilled around the per-item rotation's call on wider key tiles;
    # before the rotation's barrier named its id in a register it serialized
    # the wgmmas (C7520; the variant tests check the log of the ones built).
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True)
    name = flash_hopper.spec(128, "bfloat16", False, cfg, rope=1).name
    assert "PERSISTENT" in name and "ROPE" in name
    wide = flash_hopper.HopperConfig(128, 192, 5, persistent=True)
    with pytest.raises(ValueError, match="takes rope on 128 x 128 tiles"):
        flash_hopper.spec(128, "bfloat16", False, wide, rope=1)
    assert "PERSISTENT" in flash_hopper.spec(128, "bfloat16", False, wide, alibi=True).name
    with pytest.raises(ValueError, match="persistent needs step 4 or 5"):
        flash_hopper.HopperConfig(128, 128, 3, persistent=True)
    # The dispatch: RoPE calls keep the plan's persistent grid on 128-key tiles.
    from attention_proto.ops import flash

    # rope_tables stays a switch: at 6ffa395 (H200, tile_sweep --heads 32) it
    # was not faster than the rotation from global tables.
    # (The plan's output by TMA store, its fifth field, comes along.)
    # Since rope_ahead, the producer's warps rotate Q there, a buffer ahead.
    assert flash.hopper_config(128, False, 2048, rope=True) == replace(
        cfg, o_tma=1, rope_ahead=True
    )
    assert not flash.hopper_config(128, False, 8192, rope=True).persistent
    assert flash.hopper_config(128, True, 8192, rope=True).rope_ahead


def test_rope_ahead_moves_the_rotation_to_the_producer_warps(compiled):
    # rope_ahead: the producer warpgroup keeps 72 registers a thread (its warps
    # 1-3 rotate, inlined) and the consumers take 216 and hold no rotation
    # call; without it the consumers call rope_q_rows between items.
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1, rope_ahead=True)
    spec = flash_hopper.spec(128, "bfloat16", True, cfg, rope=1)
    text = sass.disassemble(compiled[spec.name].binary)
    assert "rope_q_rows" not in text
    assert re.findall(r"USETMAXREG\.DEALLOC\.CTAPOOL (0x\w+)", text) == ["0x48"]
    assert re.findall(r"USETMAXREG\.TRY_ALLOC\.CTAPOOL \w+, (0x\w+)", text) == ["0xd8"]
    assert cfg.shared_bytes(128) == replace(cfg, rope_ahead=False).shared_bytes(128) + 128 * 256
    consumers = flash_hopper.spec(128, "bfloat16", True, replace(cfg, rope_ahead=False), rope=1)
    result = compiled.get(consumers.name) or runtime.compile_for(consumers, "sm_90a")
    assert "rope_q_rows" in sass.disassemble(result.binary)
    # Refused without RoPE, off two consumer warpgroups, and where the buffer
    # does not fit (D=128 on 128 x 192).
    assert flash_hopper.refusal(cfg, 128) and not flash_hopper.refusal(cfg, 128, rope=2)
    with pytest.raises(ValueError, match="rope_ahead needs"):
        flash_hopper.HopperConfig(192, 128, 5, rope_ahead=True)
    wide = flash_hopper.HopperConfig(128, 192, 5, persistent=True, rope_ahead=True)
    assert "does not fit" in flash_hopper.refusal(wide, 128, rope=1)
    assert flash_hopper.builds(wide, 64, rope=1)


@pytest.mark.parametrize("block_n", [128, 192])
def test_alibi_start_moves_the_key_part_before_the_scores_wgmma(compiled, block_n):
    # ALIBI=3: the per-score FFMA of ALIBI=1 is gone from the softmax (the
    # diagonal's tiles keep theirs), and in its place one multiply (or move)
    # a score writes S's start; same registers, no spills, no extra memory.
    base = flash_hopper.HopperConfig(128, block_n, 5, persistent=True)
    start = replace(base, alibi_start=True)
    assert start.label().endswith("pas")

    def sass_of(cfg, causal=False, alibi=True):
        spec = flash_hopper.spec(128, "bfloat16", causal, cfg, alibi=alibi)
        return sass.disassemble((compiled.get(spec.name) or runtime.compile_for(spec)).binary)

    assert "ALIBI_3" in flash_hopper.spec(128, "bfloat16", False, start, alibi=True).name
    assert "ALIBI_1" in flash_hopper.spec(128, "bfloat16", False, base, alibi=True).name
    texts = {"per_score": sass_of(base), "start": sass_of(start)}
    for text in texts.values():
        assert not re.findall(r"\b(LDL|STL)\b", text)
    scores = block_n * 64 // 128  # S values a consumer thread holds

    def count(op, name):
        return len(re.findall(rf"\b{op}\b", texts[name]))

    assert count("FFMA", "per_score") - count("FFMA", "start") == scores
    assert count("FMUL", "start") - count("FMUL", "per_score") >= scores // 2
    assert sass.registers_named(texts["start"]) == sass.registers_named(texts["per_score"])
    assert flash_hopper.launch_shared_bytes(start, 128, True) == flash_hopper.launch_shared_bytes(
        base, 128, False
    )
    # Under the causal mask every key tile is linear in the key (the keys past
    # a row's diagonal are masked): ALIBI=1 has its FFMA a score (and a few
    # per row) but no |.| path for the diagonal's tiles, which the full kernel
    # keeps (one more FFMA a score).
    texts["causal_per_score"] = sass_of(base, causal=True)
    for causal in (False, True):
        texts[f"plain_{causal}"] = sass_of(base, causal=causal, alibi=False)
    extra = {
        False: count("FFMA", "per_score") - count("FFMA", "plain_False"),
        True: count("FFMA", "causal_per_score") - count("FFMA", "plain_True"),
    }
    assert scores <= extra[True] < 2 * scores <= extra[True] + scores <= extra[False]
    with pytest.raises(ValueError, match="alibi_start needs"):
        flash_hopper.HopperConfig(128, 128, 3, alibi_start=True)
    with pytest.raises(ValueError, match="alibi_start needs"):
        flash_hopper.HopperConfig(128, 128, 5, alibi_mma=True, alibi_start=True)


def test_alibi_on_tensor_cores_takes_the_steps_and_memory_it_needs():
    cfg = flash_hopper.HopperConfig(128, 176, 5, alibi_mma=True)
    assert "ALIBI_2" in flash_hopper.spec(128, "bfloat16", True, cfg, alibi=True).name
    assert "ALIBI_1" in flash_hopper.spec(128, "bfloat16", True, cfg.__class__(), alibi=True).name
    assert flash_hopper.alibi_keys_bytes(cfg) == (176 + 8) * 16
    with pytest.raises(ValueError, match="alibi_mma needs step 4 or 5"):
        flash_hopper.HopperConfig(128, 128, 3, alibi_mma=True)


@pytest.mark.parametrize("merge", flash_hopper.merge_specs(), ids=lambda s: s.name)
def test_split_merge_takes_the_split_kernels_argument_block(merge):
    # The merge runs on the key-split kernel's packed block (one LaunchPlan
    # argument block for both steps), so its parameters sit where that
    # kernel's do, descriptors included; no spills.
    c = _constants(merge)
    cfg = next(x for x in flash_hopper.KEY_SPLIT_CONFIGS if x.block_m == c["BLOCK_M"])
    dtype = next(t for t in flash_hopper.DTYPES if attention_front.dtype_code(t) == c["DTYPE"])
    kernel = flash_hopper.spec(c["HEAD_DIM"], dtype, False, cfg)
    merged, split = (runtime.compile_for(s, "sm_90a") for s in (merge, kernel))
    res = sass.resources_from_log(merged.log, merge.entry)
    assert not res.spills and res.stack_frame_bytes == 0, res
    assert sass.parameter_layout(merged.binary, merge.entry) == sass.parameter_layout(
        split.binary, kernel.entry
    )


def test_key_split_is_built_only_where_it_runs():
    with pytest.raises(ValueError, match="persistent"):
        flash_hopper.HopperConfig(128, 128, 5, key_split=True)
    cfg = flash_hopper.KEY_SPLIT_CONFIGS[0]
    for kwargs in ({"causal": True}, {"alibi": True}, {"rope": 1}):
        with pytest.raises(ValueError, match="key_split is built without"):
            flash_hopper.spec(128, "bfloat16", **({"causal": False} | kwargs), config=cfg)
    assert "KEY_SPLIT=1" in flash_hopper.spec(128, "bfloat16", False, cfg).constants_description


def test_output_tma_store_is_built_where_its_tile_fits():
    # The output tile (block_m x head_dim, 2 bytes) beside Q and two K and V
    # stages: D=128 on 128 x 192 would need 256 KB of the 227 KB a block gets.
    cfg = flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=1)
    assert not flash_hopper.builds(cfg, 128) and flash_hopper.builds(cfg, 64)
    with pytest.raises(ValueError, match="o_tma's output tile does not fit"):
        flash_hopper.spec(128, "bfloat16", False, cfg)
    small = flash_hopper.HopperConfig(128, 128, 5, persistent=True, o_tma=1)
    plain = flash_hopper.HopperConfig(128, 128, 5, persistent=True)
    assert small.shared_bytes(128) == plain.shared_bytes(128) + 128 * 128 * 2
    assert small.tma_rows == (128, 128, 128, 64)
    for kwargs in ({"o_tma": True}, {"early_q": True}):
        with pytest.raises(ValueError, match="step 4 or 5"):
            flash_hopper.HopperConfig(128, 128, 3, **kwargs)
    with pytest.raises(ValueError, match="without key_split"):
        flash_hopper.HopperConfig(128, 128, 5, persistent=True, key_split=True, o_tma=1)
    constants = flash_hopper.spec(64, "bfloat16", True, cfg).constants_description
    assert "O_TMA=1" in constants and "EARLY_Q" not in constants
    # O_TMA 2: the output tile in the last V stage, no more shared memory.
    in_v = flash_hopper.HopperConfig(128, 192, 5, persistent=True, o_tma=2)
    assert flash_hopper.builds(in_v, 128) and in_v.label().endswith("ov")
    assert in_v.shared_bytes(128) == replace(in_v, o_tma=0).shared_bytes(128)
    assert "O_TMA=2" in flash_hopper.spec(128, "bfloat16", False, in_v).constants_description
    with pytest.raises(ValueError, match="block_n >= block_m"):
        flash_hopper.HopperConfig(192, 128, 5, o_tma=2)


def test_alibi_window_is_built_only_where_it_can_run():
    # Steps (d)/(e), a key order from the diagonal, and only on ALiBi calls:
    # without ALiBi the plain kernel (and its archive entry) is unchanged.
    with pytest.raises(ValueError, match="alibi_window needs step 4 or 5"):
        flash_hopper.HopperConfig(128, 64, 3, alibi_window=True)
    with pytest.raises(ValueError, match="key order from the diagonal"):
        flash_hopper.HopperConfig(128, 128, 5, key_order=0, alibi_window=True)
    cfg = flash_hopper.HopperConfig(128, 128, 5, persistent=True, alibi_window=True)
    assert cfg.label().endswith("aw")
    plain = flash_hopper.spec(128, "bfloat16", False, cfg)
    assert (
        plain.name
        == flash_hopper.spec(128, "bfloat16", False, replace(cfg, alibi_window=False)).name
    )
    assert "ALIBI_WINDOW" in _constants(flash_hopper.spec(128, "bfloat16", False, cfg, alibi=True))
    names = {s.name for s in SPECS}
    assert {s.name for s in flash_hopper.window_specs()} <= names


@pytest.mark.parametrize(
    "spec",
    [s for s in flash_hopper.window_specs() if s.entry == flash_hopper.NORMS_ENTRY],
    ids=lambda s: s.name,
)
def test_the_norms_kernel_takes_its_attention_kernels_parameters(spec, compiled):
    # One argument block serves both launches (Prepared checks it again): the
    # same parameters at the same offsets, the TMA descriptors included.
    binary = compiled[spec.name].binary
    layout = sass.parameter_layout(binary, flash_hopper.NORMS_ENTRY)
    assert layout == sass.parameter_layout(binary, flash_hopper.ENTRY)
    assert len(layout) == 2 + 5 + 4 + (4 if _constants(spec).get("O_TMA") else 3)

"""The Python mirrors of the kernels' argument structs match the C++ layout, and
shared-memory sizes come from the kernels' own header."""

import ctypes

from attention_proto import _core, params


def test_attention_params_mirror_matches_extension():
    native = _core.attention_params_layout()
    assert native.pop("__size__") == ctypes.sizeof(params.AttentionParams) == 64
    assert native.pop("__strides_size__") == ctypes.sizeof(params.AttentionStrides) == 96
    assert {k: tuple(v) for k, v in native.items()} == params.layout()


def test_paged_args_mirror_matches_extension():
    native = _core.paged_args_layout()
    assert native.pop("__size__") == ctypes.sizeof(params.PagedArgs)
    assert {k: tuple(v) for k, v in native.items()} == params.layout(params.PagedArgs)
    assert set(params.PAGED_POINTER_FIELDS) <= set(native)


def test_shared_memory_sizes_come_from_the_kernel_header():
    from attention_proto.ops import flash, paged

    # kernel_layouts.h: Q tile + STAGES K and V tiles of 16-bit rows; the kernels
    # static_assert their own layout against the same functions.
    cfg = flash.FlashConfig(128, 64, 2, 4)
    assert cfg.shared_bytes(128) == 2 * 128 * (128 + 2 * 2 * 64)
    assert paged.mma_shared_bytes(128) == 2 * 128 * (16 + paged.WARPS * paged.STAGES * 2 * 16)


def test_input_error_records_read_as_documented():
    # input_error_record.h: word 0 = code | seq << 8 | value << 32, word 1 = aux | limit << 32.
    def record(code, seq, value, aux, limit):
        return code | seq << 8 | (value & 0xFFFFFFFF) << 32, aux | limit << 32

    msg = _core.describe_input_error(*record(1, 3, 0, 0, 4096))
    assert msg.startswith("[paged_attention] context_lens[3] = 0 is outside 1..4096")
    msg = _core.describe_input_error(*record(2, 1, -7, 5, 10))
    assert msg.startswith("[paged_attention] page_table[1, 5] = -7 is outside the pool of 10")

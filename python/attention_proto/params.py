"""Python mirror of shaders/cuda/attention_params.h (checked against the
extension's offsets in tests/test_params.py)."""

from __future__ import annotations

import ctypes

FLAG_CAUSAL = 1
FLAG_RETURN_LSE = 8  # bits 2 and 4 (ALiBi, RoPE) became specialization constants

DTYPE_CODES = {"float16": 0, "bfloat16": 1, "float32": 2}


class AttentionParams(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int32),
        ("heads", ctypes.c_int32),
        ("kv_heads", ctypes.c_int32),
        ("seqlen_q", ctypes.c_int32),
        ("seqlen_k", ctypes.c_int32),
        ("head_dim", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("flags", ctypes.c_int32),
        ("page_size", ctypes.c_int32),
        ("max_pages", ctypes.c_int32),
        ("num_pages", ctypes.c_int32),
        ("chunk_size", ctypes.c_int32),
        ("partition_size", ctypes.c_int32),
        ("rope_table_row", ctypes.c_int32),
        ("alibi_stride", ctypes.c_int32),
        ("variant", ctypes.c_int32),
    ]


class AttentionStrides(ctypes.Structure):
    """Element strides of [batch, head, row] for q, k, v, o."""

    _fields_ = [
        ("q", ctypes.c_int64 * 3),
        ("k", ctypes.c_int64 * 3),
        ("v", ctypes.c_int64 * 3),
        ("o", ctypes.c_int64 * 3),
    ]


class PagedArgs(ctypes.Structure):
    """Mirror of shaders/cuda/kernel_layouts.h's PagedArgs (checked in a test)."""

    _fields_ = [
        ("q", ctypes.c_uint64),
        ("k", ctypes.c_uint64),
        ("v", ctypes.c_uint64),
        ("page_table", ctypes.c_uint64),
        ("context_lens", ctypes.c_uint64),
        ("out", ctypes.c_uint64),
        ("part_acc", ctypes.c_uint64),
        ("part_max", ctypes.c_uint64),
        ("part_sum", ctypes.c_uint64),
        ("errors", ctypes.c_uint64),
        ("kv_stride", ctypes.c_int64 * 3),
        ("q_stride", ctypes.c_int64 * 2),
        ("table_stride", ctypes.c_int64),
        ("lens_stride", ctypes.c_int64),
        ("partitions", ctypes.c_int32),
        ("alibi", ctypes.c_uint64),  # 8-aligned: at 144
    ]


# PagedArgs fields each call fills with a tensor's address, in slot order.
PAGED_POINTER_FIELDS = (
    "q",
    "k",
    "v",
    "page_table",
    "context_lens",
    "out",
    "part_acc",
    "part_max",
    "part_sum",
    "alibi",
)


def layout(struct=AttentionParams) -> dict[str, tuple[int, int]]:
    return {
        name: (getattr(struct, name).offset, getattr(struct, name).size)
        for name, _ in struct._fields_
    }

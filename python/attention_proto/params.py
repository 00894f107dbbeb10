"""Python mirror of shaders/cuda/attention_params.h (checked against the
extension's offsets in tests/test_params.py)."""

from __future__ import annotations

import ctypes

FLAG_CAUSAL = 1
FLAG_ALIBI = 2
FLAG_ROPE = 4
FLAG_RETURN_LSE = 8

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
        ("rope_theta", ctypes.c_float),
        ("alibi_base", ctypes.c_float),
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


def layout() -> dict[str, tuple[int, int]]:
    return {
        name: (getattr(AttentionParams, name).offset, getattr(AttentionParams, name).size)
        for name, _ in AttentionParams._fields_
    }

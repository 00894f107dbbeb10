"""The Python mirror of AttentionParams matches the C++ layout."""

import ctypes

from attention_proto import _core, params


def test_attention_params_mirror_matches_extension():
    native = _core.attention_params_layout()
    assert native.pop("__size__") == ctypes.sizeof(params.AttentionParams) == 64
    assert native.pop("__strides_size__") == ctypes.sizeof(params.AttentionStrides) == 96
    assert {k: tuple(v) for k, v in native.items()} == params.layout()

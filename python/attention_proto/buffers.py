"""Device and pinned host buffers, in the spirit of alloc_buffer / read_buffer."""

from __future__ import annotations

import numpy as np

from . import _core

# Bit patterns that read as NaN, for poisoning outputs before a launch.
NAN_PATTERNS = {2: 0x7E00, 4: 0x7FC00000}  # fp16 NaN (also a bf16 NaN), fp32 NaN
NAN_PATTERN_BF16 = 0x7FC0


def alloc_buffer(nbytes: int) -> _core.DeviceBuffer:
    return _core.DeviceBuffer(int(nbytes))


def alloc_buffer_with_data(array: np.ndarray) -> _core.DeviceBuffer:
    a = np.ascontiguousarray(array)
    buf = _core.DeviceBuffer(a.nbytes)
    buf.upload(a.view(np.uint8).reshape(-1) if a.nbytes else a)
    return buf


def read_buffer(buf: _core.DeviceBuffer, dtype, shape) -> np.ndarray:
    out = np.empty(shape, dtype=dtype)
    if out.nbytes:
        buf.download_into(out.view(np.uint8).reshape(-1))
    return out


def read_buffer_slice(buf: _core.DeviceBuffer, dtype, offset_elements: int, count: int):
    dtype = np.dtype(dtype)
    out = np.empty(count, dtype=dtype)
    if count:
        buf.download_into(out.view(np.uint8), offset_elements * dtype.itemsize)
    return out


def poison(buf: _core.DeviceBuffer, dtype_name: str, stream: int = 0) -> None:
    """Fill with NaN of `dtype_name` (on `stream`) so unwritten elements cannot
    pass a check."""
    if dtype_name == "bfloat16":
        buf.fill(NAN_PATTERN_BF16, 2, stream)
    elif dtype_name == "float16":
        buf.fill(NAN_PATTERNS[2], 2, stream)
    elif dtype_name == "float32":
        buf.fill(NAN_PATTERNS[4], 4, stream)
    else:
        buf.fill(0xFF, 1, stream)


def pinned_array(dtype, shape) -> np.ndarray:
    """A NumPy array in page-locked memory (no copy; the array keeps it alive)."""
    name = np.dtype(dtype).name
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return _core.PinnedBuffer(nbytes).numpy(name, list(shape))

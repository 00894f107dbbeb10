"""Which CUDA stream a call runs on, and where its outputs come from.

`stream=None` means torch's current stream for torch tensors (so a call inside
`torch.cuda.stream(s)` or a graph capture is ordered like any torch op), and
the legacy default stream for other arrays. A stream may also be given as a
raw handle (int) or as an object with `cuda_stream` (torch) or `ptr` (CuPy).

Outputs of torch calls come from torch's caching allocator, on the call's
stream, so nothing on the call path waits for the GPU: freeing them is
stream-ordered too. Other arrays get memory from the driver's stream-ordered
pool (tensors.empty).
"""

from __future__ import annotations

import contextlib
import sys

from .tensors import RUNTIME_DEVICE, is_torch

_raw_current_stream = None


def handle(stream) -> int:
    """A raw CUstream handle from an int or a stream object."""
    if stream is None:
        return 0
    if isinstance(stream, bool):
        raise TypeError(f"stream must be a stream object or handle, got {stream!r}")
    if isinstance(stream, int):
        return stream
    for attr in ("cuda_stream", "ptr"):
        h = getattr(stream, attr, None)
        if isinstance(h, int):
            return h
    raise TypeError(
        f"stream must be None, an int handle or a stream object (torch.cuda.Stream, "
        f"cupy.cuda.Stream), got {type(stream).__name__}"
    )


def torch_current_function():
    """f(device_index) -> torch's current stream there, as a raw handle: torch's
    own lookup where it has one (a cached torch plan calls it directly)."""
    global _raw_current_stream
    if _raw_current_stream is None:
        torch = sys.modules["torch"]
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        _raw_current_stream = raw or (lambda i: torch.cuda.current_stream(i).cuda_stream)
    return _raw_current_stream


def torch_current(device_index: int) -> int:
    """torch's current stream on a device, as a raw handle (fast path)."""
    return (_raw_current_stream or torch_current_function())(device_index)


def for_torch(stream, device_index: int = RUNTIME_DEVICE) -> tuple[int, bool]:
    """(handle, is torch's current stream) for a torch call; the common case
    (stream=None) costs one lookup."""
    current = torch_current(device_index)
    if stream is None:
        return current, True
    h = handle(stream)
    return h, h == current


def for_inputs(first, stream) -> tuple[int, bool]:
    """(handle, is torch's current stream) for a call whose first input is
    `first`: torch's current stream by default for torch tensors, the legacy
    default stream for any other array."""
    if is_torch(first):
        return for_torch(stream)
    return handle(stream), True


@contextlib.contextmanager
def _ordered_on(stream_handle: int, device):
    """torch work (allocation, fills) ordered on a stream torch is not using."""
    torch = sys.modules["torch"]
    with torch.cuda.stream(torch.cuda.ExternalStream(stream_handle, device=device)):
        yield


def new_output(like, shape, dtype, stream_handle: int, on_current: bool):
    """An output on `like`'s device from torch's allocator, safe on the stream
    (dtype None: like's)."""
    if on_current:
        return like.new_empty(shape) if dtype is None else like.new_empty(shape, dtype=dtype)
    with _ordered_on(stream_handle, like.device):
        return like.new_empty(shape) if dtype is None else like.new_empty(shape, dtype=dtype)


def new_like(like, stream_handle: int, on_current: bool):
    """An output shaped like a contiguous `like`: torch.empty_like costs less
    host time than new_empty(shape) (4.1 against 6.5 us on an H200 host,
    docs/gpu-notes.md), as no shape is parsed."""
    empty_like = sys.modules["torch"].empty_like
    if on_current:
        return empty_like(like)
    with _ordered_on(stream_handle, like.device):
        return empty_like(like)


def poison(t, stream_handle: int, on_current: bool) -> None:
    """Fill a torch output with NaN on the call's stream (debug.poison_outputs)."""
    if on_current:
        t.fill_(float("nan"))
        return
    with _ordered_on(stream_handle, t.device):
        t.fill_(float("nan"))

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

import sys

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


def torch_current(device_index: int) -> int:
    """torch's current stream on a device, as a raw handle (fast path)."""
    global _raw_current_stream
    if _raw_current_stream is None:
        torch = sys.modules["torch"]
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        _raw_current_stream = raw or (lambda i: torch.cuda.current_stream(i).cuda_stream)
    return _raw_current_stream(device_index)


def for_torch(stream, device_index: int) -> tuple[int, bool]:
    """(handle, is torch's current stream) for a torch call."""
    current = torch_current(device_index)
    if stream is None:
        return current, True
    h = handle(stream)
    return h, h == current


def torch_empty(shape, dtype, device, stream_handle: int, on_current: bool):
    """torch.empty whose memory is safe to use on `stream_handle`."""
    torch = sys.modules["torch"]
    if on_current:
        return torch.empty(shape, dtype=dtype, device=device)
    with torch.cuda.stream(torch.cuda.ExternalStream(stream_handle, device=device)):
        return torch.empty(shape, dtype=dtype, device=device)


def for_torch_call(stream) -> tuple[int, bool]:
    """(handle, is torch's current stream) for a torch call on the runtime's
    device; the common case (stream=None) costs one lookup."""
    from .tensors import RUNTIME_DEVICE

    if stream is None:
        return torch_current(RUNTIME_DEVICE), True
    return for_torch(stream, RUNTIME_DEVICE)


def new_output(like, shape, dtype, stream_handle: int, on_current: bool):
    """An output on `like`'s device from torch's allocator, safe on the stream
    (dtype None: like's)."""
    if on_current:
        return like.new_empty(shape) if dtype is None else like.new_empty(shape, dtype=dtype)
    return torch_empty(shape, dtype or like.dtype, like.device, stream_handle, False)

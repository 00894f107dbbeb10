"""ALiBi slopes for the kernels that fuse the bias (flash_attention's ALIBI
constant): what a caller may pass, and the default slopes on the device.

The kernel reads one float32 slope per (batch, head) through a pointer, not a
runtime base in AttentionParams: the standard slopes are not one geometric
sequence when the head count is not a power of 2 (reference.alibi_slopes), and
models ship their own arrays; one load per thread per CTA pays for all forms.
"""

from __future__ import annotations

import numpy as np

from .. import buffers, reference
from . import tensors

DEFAULT = "default"
_DEVICE_DEFAULTS: dict = {}  # heads -> DeviceBuffer of the standard slopes (kept for the process)


def default_slopes(heads: int) -> np.ndarray:
    """The standard slopes (the paper's code) as float32 [heads]."""
    return reference.alibi_slopes(heads).astype(np.float32)


def default_address(heads: int) -> int:
    """The device address of the standard slopes for `heads`, uploaded once
    per process and head count (a synchronous copy on first use)."""
    buf = _DEVICE_DEFAULTS.get(heads)
    if buf is None:
        buf = _DEVICE_DEFAULTS[heads] = buffers.alloc_buffer_with_data(default_slopes(heads))
    return buf.address


def check(op: str, slopes, batch: int, heads: int, host: bool, stream: int):
    """(info, stride between batches) of a user's slopes: float32 [H] or [B, H]
    with a contiguous last dimension, NumPy with NumPy inputs and a CUDA array
    with CUDA inputs. `slopes` is neither None nor DEFAULT here."""
    if isinstance(slopes, str):
        raise ValueError(
            f"[{op}] alibi_slopes must be None, {DEFAULT!r} or a float32 array [heads] or "
            f"[batch, heads], got {slopes!r}"
        )
    info = tensors.inspect_float32_like_q(slopes, "alibi_slopes", op, stream, host)
    shape = tuple(info["shape"])
    if shape not in ((heads,), (batch, heads)):
        raise ValueError(
            f"[{op}] alibi_slopes must have shape [{heads}] or [{batch}, {heads}], got "
            f"{list(shape)}"
        )
    if heads > 1 and info["strides"][-1] != 1:
        raise ValueError(
            f"[{op}] alibi_slopes must be contiguous in its last dimension, got strides "
            f"{list(info['strides'])}"
        )
    if len(shape) == 1:
        return info, 0
    # NumPy slopes travel as a contiguous copy.
    return info, heads if host else info["strides"][0]


def torch_key(op: str, slopes):
    """What a cached torch plan depends on in alibi_slopes: None, the DEFAULT
    string, or a tensor's layout (its values are read at every launch)."""
    if slopes is None or isinstance(slopes, str):
        return slopes
    if not tensors.is_torch(slopes):
        raise TypeError(
            f"[{op}] alibi_slopes must be a torch tensor like q (or None or {DEFAULT!r}), "
            f"got {tensors.describe(slopes)}"
        )
    return (slopes.shape, slopes.stride(), slopes.dtype, slopes.get_device())

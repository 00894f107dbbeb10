"""Inputs from NumPy (uploaded) or CUDA arrays (used in place), described and
validated once here for every op, with errors that name the argument.

torch tensors are read through their attributes (a few hundred nanoseconds);
other CUDA arrays through DLPack, asked for on the call's stream so that the
producer orders its pending work before ours (the DLPack stream protocol).
Strides of size-1 dimensions do not matter and are reported as 0.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import numpy as np

from .. import _core, buffers, debug

INT32_MAX = 2**31 - 1
KDL_CUDA = 2  # DLPack's device type for CUDA memory
RUNTIME_DEVICE = 0  # the runtime drives one GPU: CUDA device 0 of this process
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "int32": 4, "int64": 8, "float64": 8}


@dataclass
class DeviceTensor:
    """A device array: address, shape, element strides, dtype name."""

    address: int
    shape: tuple
    strides: tuple
    dtype: str
    keepalive: object = None
    framework: str | None = None  # "torch", "cupy", ... for CUDA inputs; None for NumPy


def is_torch(x) -> bool:
    """True for a torch.Tensor, without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


_TORCH_DTYPES: dict = {}


def torch_dtype_name(dtype) -> str:
    name = _TORCH_DTYPES.get(dtype)
    if name is None:
        name = _TORCH_DTYPES[dtype] = str(dtype).removeprefix("torch.")
    return name


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"NumPy array {x.dtype.name}{list(x.shape)}"
    if hasattr(x, "__dlpack__"):
        return f"{type(x).__module__}.{type(x).__name__}"
    return type(x).__name__


def _normalized(shape, strides) -> tuple:
    return tuple(0 if n == 1 else s for n, s in zip(shape, strides, strict=True))


def device_mismatch(op: str, name: str, device_id: int) -> ValueError:
    return ValueError(
        f"[{op}] {name} is on CUDA device {device_id}, but attention_proto runs on CUDA device "
        f"{RUNTIME_DEVICE} (one device per process for now): move the inputs to cuda:"
        f"{RUNTIME_DEVICE}, or make that GPU device {RUNTIME_DEVICE} with CUDA_VISIBLE_DEVICES"
    )


def inspect_torch(x, name: str, op: str) -> dict:
    if x.device.type != "cuda":
        raise TypeError(
            f"[{op}] {name} must be a CUDA tensor (or a NumPy array), got a torch tensor on "
            f"{x.device}"
        )
    if x.device.index != RUNTIME_DEVICE:
        raise device_mismatch(op, name, x.device.index)
    shape = tuple(x.shape)
    return {
        "host": False,
        "shape": shape,
        "strides": _normalized(shape, x.stride()),
        "dtype": torch_dtype_name(x.dtype),
        "address": x.data_ptr(),
        "device_id": x.device.index,
        "framework": "torch",
    }


def inspect(x, name: str, op: str, stream: int | None = None) -> dict:
    """Shape/strides/dtype/device of `x` without touching its data."""
    if isinstance(x, np.ndarray):
        itemsize = x.dtype.itemsize
        if any(s % itemsize for s in x.strides):
            raise ValueError(f"[{op}] {name} has strides not a multiple of its item size")
        shape = tuple(x.shape)
        # A NumPy input is uploaded as a contiguous copy (to_device), so the
        # kernel reads the copy's strides, never the view's: reporting the
        # view's strides here once gave heads past the first of a sliced
        # array the wrong rows (a silent wrong answer).
        return {
            "host": True,
            "shape": shape,
            "strides": _normalized(shape, contiguous_strides(shape)),
            "dtype": x.dtype.name,
            "framework": None,
        }
    if is_torch(x):
        return inspect_torch(x, name, op)
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            f"[{op}] {name} must be a NumPy array or a CUDA array supporting DLPack, "
            f"got {describe(x)}"
        )
    dev_type, dev_id = x.__dlpack_device__() if hasattr(x, "__dlpack_device__") else (None, None)
    if dev_type is not None and dev_type != KDL_CUDA:
        raise TypeError(
            f"[{op}] {name} must be a CUDA array (or a NumPy array), got a DLPack array on "
            f"device type {dev_type} ({describe(x)})"
        )
    if dev_id is not None and dev_id != RUNTIME_DEVICE:
        raise device_mismatch(op, name, dev_id)
    # DLPack's stream protocol: the producer makes its pending writes visible on
    # our stream (1 names the legacy default stream there, 0 is not allowed).
    capsule = x.__dlpack__(stream=stream or 1) if dev_type is not None else x
    info = _core.tensor_info(capsule)
    if info["device_type"] != KDL_CUDA:
        raise TypeError(
            f"[{op}] {name} must be a CUDA array (or a NumPy array), got a DLPack array on "
            f"device type {info['device_type']} ({describe(x)})"
        )
    if info["device_id"] != RUNTIME_DEVICE:
        raise device_mismatch(op, name, info["device_id"])
    if any(s < 0 for s in info["strides"]):
        raise ValueError(f"[{op}] {name} has negative strides {list(info['strides'])}; pass a copy")
    info["strides"] = _normalized(info["shape"], info["strides"])
    return {"host": False, "framework": framework_of(x), **info}


def inspect_float32_like_q(x, label: str, op: str, stream, host: bool) -> dict:
    """inspect() of a float32 side array a kernel reads beside q (ALiBi slopes,
    RoPE tables): NumPy with NumPy inputs, a CUDA array with CUDA inputs."""
    info = inspect(x, label, op, stream)
    if info["host"] != host:
        raise TypeError(
            f"[{op}] {label} must be a {'NumPy' if host else 'CUDA'} array like q, got "
            f"{describe(x)}"
        )
    if info["dtype"] != "float32":
        raise TypeError(f"[{op}] {label} must be float32, got {info['dtype']}")
    return info


def check_dims_fit_int32(op: str, name: str, shape) -> None:
    for i, n in enumerate(shape):
        if n > INT32_MAX:
            raise ValueError(
                f"[{op}] {name}.shape[{i}] = {n} overflows int32 (kernels take 32-bit sizes)"
            )


def is_contiguous(info) -> bool:
    """C-contiguous, ignoring size-1 dimensions (their strides never matter)."""
    stride = 1
    for n, s in zip(reversed(info["shape"]), reversed(info["strides"]), strict=True):
        if n != 1 and s != stride:
            return False
        stride *= n
    return True


def framework_of(x) -> str | None:
    mod = type(x).__module__.split(".")[0]
    return mod if mod in ("torch", "cupy", "jax", "jaxlib") else None


def to_device(x, info: dict) -> DeviceTensor:
    """Upload a NumPy array (contiguous copy) or wrap a CUDA array in place."""
    if info["host"]:
        a = np.ascontiguousarray(x)
        buf = buffers.alloc_buffer_with_data(a)
        itemsize = a.dtype.itemsize
        strides = _normalized(a.shape, tuple(s // itemsize for s in a.strides))
        return DeviceTensor(buf.address, tuple(a.shape), strides, info["dtype"], buf)
    return DeviceTensor(
        info["address"], info["shape"], info["strides"], info["dtype"], x, info["framework"]
    )


def contiguous_strides(shape) -> tuple:
    out, stride = [], 1
    for n in reversed(shape):
        out.insert(0, stride)
        stride *= n
    return tuple(out)


def empty(shape, dtype: str, like_framework: str | None, stream: int = 0) -> DeviceTensor:
    """A fresh contiguous output from the stream-ordered pool (its free never
    waits), poisoned with NaN on `stream` when debug.poison_outputs is set."""
    n = int(np.prod(shape)) if len(shape) else 1
    buf = _core.DeviceBuffer(n * ITEMSIZE[dtype], stream)
    if debug.poison_outputs:
        buffers.poison(buf, dtype, stream)
    return DeviceTensor(
        buf.address, tuple(shape), contiguous_strides(shape), dtype, buf, like_framework
    )


_NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32, "int32": np.int32}


def _numpy_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return _NUMPY_DTYPES[name]


def result(t: DeviceTensor, host: bool):
    """Return `t` as NumPy (download) or as the input's framework (zero copy)."""
    buf = t.keepalive
    if host:
        return buffers.read_buffer(buf, _numpy_dtype(t.dtype), t.shape)
    view = buf.view(t.dtype, list(t.shape))
    if t.framework == "torch":
        import torch

        return torch.from_dlpack(view)
    if t.framework in ("cupy", "jax", "jaxlib"):
        mod = importlib.import_module("jax.dlpack" if t.framework != "cupy" else "cupy")
        return mod.from_dlpack(view)
    return view

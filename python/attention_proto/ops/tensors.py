"""Inputs from NumPy (uploaded) or any DLPack CUDA array (zero copy), validated
once here for every backend, with errors that name the argument."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from .. import _core, buffers, debug

INT32_MAX = 2**31 - 1
KDL_CUDA = 2  # DLPack's device type for CUDA memory


@dataclass
class DeviceTensor:
    """A device array: address, shape, element strides, dtype name."""

    address: int
    shape: tuple
    strides: tuple
    dtype: str
    keepalive: object = None
    framework: str | None = None  # "torch", "cupy", ... for DLPack inputs; None for NumPy


def dtype_name(x) -> str:
    if isinstance(x, np.ndarray):
        return "bfloat16" if x.dtype.name == "bfloat16" else x.dtype.name
    return _core.tensor_info(x)["dtype"]


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"NumPy array {x.dtype.name}{list(x.shape)}"
    if hasattr(x, "__dlpack__"):
        return f"{type(x).__module__}.{type(x).__name__}"
    return type(x).__name__


def inspect(x, name: str, op: str) -> dict:
    """Shape/strides/dtype/device of `x` without touching its data."""
    if isinstance(x, np.ndarray):
        itemsize = x.dtype.itemsize
        if any(s % itemsize for s in x.strides):
            raise ValueError(f"[{op}] {name} has strides not a multiple of its item size")
        return {
            "host": True,
            "shape": tuple(x.shape),
            "strides": tuple(s // itemsize for s in x.strides),
            "dtype": dtype_name(x),
        }
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            f"[{op}] {name} must be a NumPy array or a CUDA array supporting DLPack, "
            f"got {describe(x)}"
        )
    info = _core.tensor_info(x)
    if info["device_type"] != KDL_CUDA:
        raise TypeError(
            f"[{op}] {name} must be a CUDA array (or a NumPy array), got a DLPack array on "
            f"device type {info['device_type']} ({describe(x)})"
        )
    if info["device_id"] != 0:
        raise ValueError(f"[{op}] {name} must be on CUDA device 0, got device {info['device_id']}")
    return {"host": False, **info}


def check_dims_fit_int32(op: str, name: str, shape) -> None:
    for i, n in enumerate(shape):
        if n > INT32_MAX:
            raise ValueError(
                f"[{op}] {name}.shape[{i}] = {n} overflows int32 (kernels take 32-bit sizes)"
            )


def framework_of(x) -> str | None:
    mod = type(x).__module__.split(".")[0]
    return mod if mod in ("torch", "cupy", "jax", "jaxlib") else None


def to_device(x, info: dict) -> DeviceTensor:
    """Upload a NumPy array (contiguous copy) or wrap a DLPack CUDA array."""
    if info["host"]:
        buf = buffers.alloc_buffer_with_data(np.ascontiguousarray(x))
        shape = tuple(x.shape)
        strides = tuple(int(s) for s in np.ascontiguousarray(x).strides)
        itemsize = x.dtype.itemsize
        return DeviceTensor(
            buf.address, shape, tuple(s // itemsize for s in strides), info["dtype"], buf
        )
    return DeviceTensor(
        info["address"], info["shape"], info["strides"], info["dtype"], x, framework_of(x)
    )


def empty(shape, dtype: str, like_framework: str | None) -> DeviceTensor:
    """A fresh contiguous output, poisoned with NaN when debug.poison_outputs is set."""
    itemsize = {"float16": 2, "bfloat16": 2, "float32": 4, "int32": 4}[dtype]
    n = int(np.prod(shape)) if len(shape) else 1
    buf = buffers.alloc_buffer(n * itemsize)
    if debug.poison_outputs:
        buffers.poison(buf, dtype)
    strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
    return DeviceTensor(buf.address, tuple(shape), strides, dtype, buf, like_framework)


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

"""Is the CUDA backend usable here, and if not, what is missing."""

from __future__ import annotations

from functools import lru_cache

from . import _core


@lru_cache(maxsize=1)
def _device_status() -> str:
    return _core.device_status()


def is_available() -> bool:
    """True when libcuda loads and a GPU is present (NVRTC is checked separately)."""
    return _device_status().startswith("available")


def compiler_available() -> bool:
    return _core.nvrtc_status().startswith("loaded")


def status() -> dict[str, str]:
    """What the runtime found: driver library, NVRTC, device, CUDA headers."""
    return {
        "driver": _core.driver_status(),
        "nvrtc": _core.nvrtc_status(),
        "device": _device_status(),
        "include_dir": _core.cuda_include_dir() or "not found",
    }


def unavailable_reason() -> str | None:
    """None when a GPU can be used, else one line saying why not."""
    if is_available():
        return None
    return _device_status().removeprefix("unavailable: ")


def device():
    """The shared device (raises BackendUnavailable without a GPU)."""
    return _core.Device.shared()


def properties() -> dict:
    return device().properties


def synchronize() -> None:
    device().synchronize()

"""attention-proto: GPU attention kernels with a Python front.

Importing works without a GPU; `attention_proto.cuda.status()` says what is
missing. Kernels compile through NVRTC on first use (or load from the binary
archive) and run on the CUDA backend.
"""

from __future__ import annotations

from . import _core, _libs

_libs.configure(_core)

from . import buffers, cuda, findings, reference, runtime, timing  # noqa: E402
from ._core import (  # noqa: E402
    BackendError,
    BackendUnavailable,
    CompileError,
    CompileForbidden,
    DeviceFault,
    DeviceInputError,
)
from .ops.flash import FlashConfig, flash_attention  # noqa: E402
from .ops.linear import linear_attention  # noqa: E402
from .ops.paged import build_page_pool, paged_attention  # noqa: E402
from .ops.rope import rope, rope_tables  # noqa: E402
from .ops.simple import simple_attention  # noqa: E402
from .runtime import ArchiveWarning  # noqa: E402


def check_errors() -> None:
    """Wait for the work queued on the device, then raise DeviceInputError if a
    kernel found a bad device-resident input (a page id outside the pool, a
    context length outside the table) since the last check."""
    if cuda.is_available():
        cuda.synchronize()
        message = _core.take_input_error()
        if message:
            raise DeviceInputError(message)


__version__ = _core.package_version()

__all__ = [
    "ArchiveWarning",
    "BackendError",
    "BackendUnavailable",
    "buffers",
    "timing",
    "CompileError",
    "CompileForbidden",
    "DeviceFault",
    "DeviceInputError",
    "check_errors",
    "cuda",
    "findings",
    "reference",
    "runtime",
    "simple_attention",
    "flash_attention",
    "FlashConfig",
    "linear_attention",
    "paged_attention",
    "build_page_pool",
    "rope",
    "rope_tables",
]

"""Kernels by name and specialization constants, through the pipeline cache.

Two levels of specialization: constants (dtype, head dim, tiles, flags) make a
new binary; runtime arguments (lengths, batch, strides, scale) never do.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from pathlib import Path

from . import _core

ARCHIVE_ENV = "ATTENTION_PROTO_ARCHIVE_DIR"
FORBID_COMPILE_ENV = "ATTENTION_PROTO_FORBID_COMPILE"
CPU_ARCH = "sm_90a"  # what CPU-only compiles target: the lent GPUs are Hopper


class ArchiveWarning(UserWarning):
    """The kernel archive could not be read or written. The call that met the
    problem still returned its kernel, which stays in memory; each problem is
    reported once per process."""


def default_archive_dir() -> Path | None:
    """$ATTENTION_PROTO_ARCHIVE_DIR ('off' disables), else the user's cache dir."""
    env = os.environ.get(ARCHIVE_ENV)
    if env:
        return None if env.lower() == "off" else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "attention_proto" / "archive"


def _constant(name: str, value) -> tuple[str, str, str]:
    if isinstance(value, bool):
        return (name, "bool", "1" if value else "0")
    if isinstance(value, int):
        return (name, "int", str(value))
    if isinstance(value, float):
        return (name, "float", value.hex())
    raise TypeError(f"[compiler] constant {name} must be bool, int or float, got {value!r}")


def kernel_spec(entry: str, source: str, constants: dict | None = None, options=()):
    """A KernelSpec; constants keep their given order, which names the kernel."""
    items = [_constant(k, v) for k, v in (constants or {}).items()]
    return _core.KernelSpec(entry, source, items, list(options))


def cache() -> _core.PipelineCache:
    return _core.PipelineCache.shared()


def _warn_archive_problems(c: _core.PipelineCache) -> None:
    # One C++ atomic load when nothing is pending.
    for message in c.take_warnings():
        warnings.warn(message, ArchiveWarning, stacklevel=3)


def pipeline(spec) -> _core.Pipeline:
    """The loaded kernel for `spec`: memory, then archive, then NVRTC. An archive
    that cannot be read or written gives an ArchiveWarning, never an error."""
    c = cache()
    try:
        return c.get_or_compile(spec)
    finally:
        _warn_archive_problems(c)


def cached_binary(spec, arch: str = CPU_ARCH) -> _core.CompileResult:
    """pipeline()'s path short of the GPU: the binary from the archive, else
    compiled and stored; archive problems give an ArchiveWarning. No GPU needed."""
    c = cache()
    try:
        return c.compile_binary(spec, arch)
    finally:
        _warn_archive_problems(c)


def compile_for(spec, arch: str = CPU_ARCH) -> _core.CompileResult:
    """Compile without loading (no GPU needed)."""
    return _core.compile(spec, arch)


def set_archive(root: str | os.PathLike | None) -> None:
    cache().set_archive(None if root is None else str(root))


def archive_root() -> str | None:
    return cache().archive_root


def prebuild(specs, arch: str | None = None, jobs: int = 1) -> dict:
    """Fill the archive with every spec for `arch` (default: this GPU, else sm_90a).
    Filling the archive is the point, so an archive that cannot be written raises
    RuntimeError naming the path. `jobs` > 1 compiles that many at once (NVRTC
    runs without the GIL; a benchmark's many variants on a 16-core GPU host)."""
    if arch is None:
        from . import cuda

        arch = cuda.properties()["arch"] if cuda.is_available() else CPU_ARCH
    c = cache()
    unique = list({_core.kernel_key(s, arch).file_stem: s for s in specs}.values())
    if jobs > 1 and len(unique) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            built = list(pool.map(lambda s: c.prebuild(s, arch), unique))
    else:
        built = [c.prebuild(s, arch) for s in unique]
    return {"arch": arch, "compiled": sum(built), "total": len(unique)}


@contextlib.contextmanager
def compiles_forbidden():
    """Any compile inside raises CompileForbidden (keeps compile time out of numbers)."""
    c = cache()
    before = c.compile_forbidden
    c.set_compile_forbidden(True)
    try:
        yield
    finally:
        c.set_compile_forbidden(before)


class ArgPacker:
    """Packs kernel parameters with C alignment into one buffer for the launch;
    `slot()` reserves a pointer that each call fills in (LaunchPlan.run)."""

    __slots__ = ("_buf", "slots")

    def __init__(self):
        self._buf = bytearray()
        self.slots: list[int] = []  # byte offsets of the pointer slots, in order

    def _align(self, n: int) -> None:
        pad = (-len(self._buf)) % n
        if pad:
            self._buf += b"\0" * pad

    def ptr(self, address: int) -> ArgPacker:
        self._align(8)
        self._buf += struct.pack("<Q", address)
        return self

    def slot(self) -> ArgPacker:
        self._align(8)
        self.slots.append(len(self._buf))
        self._buf += bytes(8)
        return self

    def i32(self, v: int) -> ArgPacker:
        self._align(4)
        self._buf += struct.pack("<i", v)
        return self

    def i64(self, v: int) -> ArgPacker:
        self._align(8)
        self._buf += struct.pack("<q", v)
        return self

    def f32(self, v: float) -> ArgPacker:
        self._align(4)
        self._buf += struct.pack("<f", v)
        return self

    def raw(self, data: bytes, alignment: int) -> ArgPacker:
        self._align(alignment)
        self._buf += data
        return self

    def bytes(self) -> bytes:
        return bytes(self._buf)


def _init() -> None:
    root = default_archive_dir()
    set_archive(root)
    if os.environ.get(FORBID_COMPILE_ENV, "") not in ("", "0"):
        cache().set_compile_forbidden(True)


_init()

"""Where the CUDA libraries and headers are found, in the order we try them.

Search order for NVRTC and the headers: an environment override, the pip wheels
(``nvidia-cuda-nvrtc``/``nvidia-cuda-runtime``, 13.x puts them under
``nvidia/cu13``), ``$CUDA_HOME``, ``/usr/local/cuda``, then the system loader.
libcuda belongs to the driver: an override, the loader, then the container path.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

NVRTC_ENV = "ATTENTION_PROTO_NVRTC"
LIBCUDA_ENV = "ATTENTION_PROTO_LIBCUDA"
INCLUDE_ENV = "ATTENTION_PROTO_CUDA_INCLUDE"
NVRTC_SONAMES = ("libnvrtc.so.13", "libnvrtc.so.12")


def _wheel_roots() -> list[Path]:
    spec = importlib.util.find_spec("nvidia")
    if spec is None or spec.submodule_search_locations is None:
        return []
    roots = []
    for base in spec.submodule_search_locations:
        for sub in ("cu13", "cuda_nvrtc", "cuda_runtime", "cu12"):
            if (Path(base) / sub).is_dir():
                roots.append(Path(base) / sub)
    return roots


def _toolkit_roots() -> list[Path]:
    roots = [Path(os.environ[v]) for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    roots.append(Path("/usr/local/cuda"))
    return roots


def nvrtc_candidates() -> list[str]:
    out: list[str] = []
    if os.environ.get(NVRTC_ENV):
        out.append(os.environ[NVRTC_ENV])
    for root in _wheel_roots():
        for soname in NVRTC_SONAMES:
            if (root / "lib" / soname).exists():
                out.append(str(root / "lib" / soname))
    for root in _toolkit_roots():
        for lib in ("lib64", "lib"):
            for soname in NVRTC_SONAMES:
                if (root / lib / soname).exists():
                    out.append(str(root / lib / soname))
    out.extend(NVRTC_SONAMES)
    return list(dict.fromkeys(out))


def driver_candidates() -> list[str]:
    out = [os.environ[LIBCUDA_ENV]] if os.environ.get(LIBCUDA_ENV) else []
    out += ["libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/lib64/libcuda.so.1"]
    return list(dict.fromkeys(out))


def include_dir() -> str:
    candidates = [Path(os.environ[INCLUDE_ENV])] if os.environ.get(INCLUDE_ENV) else []
    candidates += [root / "include" for root in _wheel_roots()]
    candidates += [root / "include" for root in _toolkit_roots()]
    for c in candidates:
        if (c / "cuda_fp16.h").exists():
            return str(c)
    return ""


def nvdisasm_path() -> str | None:
    """nvdisasm from the ``nvidia-cuda-nvdisasm`` wheel, the toolkit, or PATH."""
    import shutil

    for root in _wheel_roots() + _toolkit_roots():
        p = root / "bin" / "nvdisasm"
        if p.exists():
            return str(p)
    return shutil.which("nvdisasm")


def configure(core) -> None:
    core.set_library_paths(driver_candidates(), nvrtc_candidates(), include_dir())

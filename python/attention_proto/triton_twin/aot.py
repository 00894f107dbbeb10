"""Ahead-of-time compile of the twin for sm_90a, no GPU or driver needed:
triton.compile on an ASTSource with an explicit GPUTarget runs the whole
pipeline (TTIR -> TTGIR -> LLIR -> PTX -> cubin) with the ptxas bundled in the
triton wheel. Triton discards ptxas's -v report, so the resources are read by
running that same ptxas on the PTX again."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass

from .. import sass
from .front import require_triton

DTYPES = {"bfloat16": "bf16", "float16": "fp16"}
# Warps per tile: Triton's num_warps plays the role of the CUDA kernel's WARPS.
_INTS = ("sqb", "sqh", "sqm", "skb", "skh", "skn", "svb", "svh", "svn", "sob", "soh", "som")


@dataclass(frozen=True)
class Compiled:
    cubin: bytes
    ptx: str
    resources: sass.Resources  # from ptxas -v on Triton's PTX
    shared_bytes: int  # Triton's dynamic shared memory (metadata.shared)
    compile_s: float  # triton.compile, AST to cubin, cold cache
    name: str


def _signature(dtype: str) -> tuple[dict, dict]:
    t = "*" + DTYPES[dtype]
    sig = {"Q": t, "K": t, "V": t, "Out": t, "Lse": "*fp32"}
    sig |= dict.fromkeys(_INTS, "i32")
    sig |= {"heads": "i32", "group": "i32", "seqlen_q": "i32", "seqlen_k": "i32"}
    sig |= {"qk_scale_log2": "fp32"}
    # What Triton's JIT would see for contiguous inputs with D in {64, 128}: every
    # pointer and stride divisible by 16 (so both compiles get the same code).
    names = list(sig)
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in ("Q", "K", "V", "Out", "Lse")}
    attrs |= {(names.index(n),): [["tt.divisibility", 16]] for n in _INTS}
    return sig, attrs


def compile_sm90(
    head_dim: int,
    block_m: int,
    block_n: int,
    causal: bool,
    *,
    warps: int = 4,
    stages: int = 2,
    dtype: str = "bfloat16",
    write_lse: bool = False,
) -> Compiled:
    """The twin for one (D, tile, causal), compiled for sm_90a without a GPU."""
    triton = require_triton()
    from triton.backends.compiler import GPUTarget

    from . import kernel

    sig, attrs = _signature(dtype)
    constexprs = {
        "HEAD_DIM": head_dim,
        "BLOCK_M": block_m,
        "BLOCK_N": block_n,
        "CAUSAL": bool(causal),
        "WRITE_LSE": bool(write_lse),
    }
    sig |= dict.fromkeys(constexprs, "constexpr")
    src = triton.compiler.ASTSource(kernel.flash_fwd, sig, constexprs, attrs)
    # A private cache dir: compile time is measured cold, and nothing is shared
    # with (or stale from) the user's ~/.triton cache.
    with tempfile.TemporaryDirectory(prefix="attention_proto_triton_") as cache:
        before = os.environ.get("TRITON_CACHE_DIR")
        os.environ["TRITON_CACHE_DIR"] = cache
        try:
            t0 = time.perf_counter()
            ck = triton.compile(
                src,
                target=GPUTarget("cuda", 90, 32),
                options={"num_warps": warps, "num_stages": stages},
            )
            seconds = time.perf_counter() - t0
        finally:
            if before is None:
                os.environ.pop("TRITON_CACHE_DIR", None)
            else:
                os.environ["TRITON_CACHE_DIR"] = before
        ptx, cubin = ck.asm["ptx"], ck.asm["cubin"]
    return Compiled(cubin, ptx, _resources(ptx), int(ck.metadata.shared), seconds, ck.name)


def _ptxas() -> str:
    """The ptxas Triton itself runs for sm_90: from Triton 3.9 its newer one
    (ptxas-blackwell; the older bundled ptxas 12.9 refuses the PTX 9.x that
    Triton emits, CI on 2026-11-30), before that knobs.nvidia.ptxas."""
    from triton import knobs

    try:
        from triton.backends.nvidia.compiler import get_ptxas

        return get_ptxas(90).path
    except (ImportError, TypeError, AttributeError):  # older Triton: one ptxas
        return knobs.nvidia.ptxas.path


def _resources(ptx: str) -> sass.Resources:
    ptxas = _ptxas()
    with tempfile.TemporaryDirectory(prefix="attention_proto_ptxas_") as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        out = subprocess.run(
            [ptxas, "-v", "--gpu-name=sm_90a", src, "-o", os.path.join(d, "k.cubin")],
            capture_output=True,
            text=True,
        )
    if out.returncode:
        raise RuntimeError(f"[triton_twin] ptxas failed on Triton's PTX:\n{out.stderr}")
    return sass.resources_from_log(out.stderr)

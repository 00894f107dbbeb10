"""The runtime's own probe kernels (shaders/cuda/runtime_probes.cu)."""

from __future__ import annotations

from . import runtime

SOURCE = "runtime_probes.cu"
ENTRIES = ("noop", "axpb", "write_to", "globaltimer_stamps")


def spec(entry: str):
    return runtime.kernel_spec(entry, SOURCE)


def all_specs():
    return [spec(e) for e in ENTRIES]


def axpb_args(x_address: int, out_address: int, a: float, n: int) -> bytes:
    return runtime.ArgPacker().ptr(x_address).ptr(out_address).f32(a).i32(n).bytes()

"""The tile table: best FlashConfig per (GPU arch, head_dim, dtype, causal),
written from the sweep's measurements (python -m attention_proto.bench flash)."""

from __future__ import annotations

from functools import cache

# (arch, head_dim, causal) -> (block_m, block_n, stages, warps). Each entry cites the run
# that measured it; dtype shares the entry (bf16 and fp16 run the same schedule).
# Measured on an NVIDIA H200 (2026-11-28, commit dc1b46e,
# `TESTS=... RACECHECK_TESTS=... bash bench/gpu_run.sh paged flash`;
# bench/results/2026-11-28-h200-flash-v2.json): the fastest sweep config at
# N = 8192, B*N = 16K tokens, H = 2048 / D, bf16 (the same tile won at every N).
TABLE: dict[tuple[str, int, bool], tuple[int, int, int, int]] = {
    ("sm_90a", 64, False): (128, 128, 2, 4),  # 326 TFLOP/s
    ("sm_90a", 64, True): (128, 128, 2, 4),  # 318 TFLOP/s
    ("sm_90a", 128, False): (128, 64, 2, 4),  # 344 TFLOP/s
    ("sm_90a", 128, True): (128, 64, 2, 4),  # 335 TFLOP/s
}

# Before a sweep has measured this GPU: 128 query rows over 4 warps, double-
# buffered K/V, 64 keys per step (FlashAttention-2's tile; at head_dim 128 it
# spills 8-16 B, see flash.REPORTED_SPILLS).
FALLBACK = {64: (128, 64, 2, 4), 128: (128, 64, 2, 4)}


@cache
def _arch() -> str:
    from .. import cuda

    return cuda.properties()["arch"] if cuda.is_available() else "sm_90a"


def best_config(head_dim: int, dtype: str, causal: bool):
    from .flash import FlashConfig

    m, n, s, w = TABLE.get((_arch(), head_dim, bool(causal)), FALLBACK[head_dim])
    return FlashConfig(m, n, s, w)

"""The tile table: best FlashConfig per (GPU arch, head_dim, dtype, causal),
written from the sweep's measurements (python -m attention_proto.bench flash)."""

from __future__ import annotations

from functools import cache

# (arch, head_dim, causal) -> (block_m, block_n, stages, warps). Each entry cites the run
# that measured it; dtype shares the entry (bf16 and fp16 run the same schedule).
# Measured on an NVIDIA H200 (2026-11-28, commit 23fd70e,
# `SKIP_TESTS=1 bash bench/gpu_run.sh flash`; bench/results/2026-11-28-h200-flash.json):
# the fastest sweep config at N = 8192, B*N = 16K tokens, H = 2048 / D, bf16.
TABLE: dict[tuple[str, int, bool], tuple[int, int, int, int]] = {
    ("sm_90a", 64, False): (128, 64, 2, 4),  # 278 TFLOP/s
    ("sm_90a", 64, True): (128, 64, 2, 4),  # 264 TFLOP/s
    ("sm_90a", 128, False): (128, 32, 2, 4),  # 285 TFLOP/s
    ("sm_90a", 128, True): (128, 64, 2, 8),  # 262 TFLOP/s
}

# Before a sweep has measured this GPU: 128 query rows, 64 keys per step,
# double-buffered K/V (FlashAttention-2's tile); 32 rows per warp at head_dim 64,
# 16 at 128, where 32 rows per warp spill with 64 keys per step.
FALLBACK = {64: (128, 64, 2, 4), 128: (128, 64, 2, 8)}


@cache
def _arch() -> str:
    from .. import cuda

    return cuda.properties()["arch"] if cuda.is_available() else "sm_90a"


def best_config(head_dim: int, dtype: str, causal: bool):
    from .flash import FlashConfig

    m, n, s, w = TABLE.get((_arch(), head_dim, bool(causal)), FALLBACK[head_dim])
    return FlashConfig(m, n, s, w)

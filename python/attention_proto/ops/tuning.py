"""The tile table: best FlashConfig per (GPU arch, head_dim, dtype, causal),
written from the sweep's measurements (python -m attention_proto.bench flash)."""

from __future__ import annotations

from functools import cache

# (arch, head_dim, causal) -> (block_m, block_n, stages, warps). Each entry cites the run
# that measured it; dtype shares the entry (bf16 and fp16 run the same schedule).
TABLE: dict[tuple[str, int, bool], tuple[int, int, int, int]] = {}

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

"""The tile table: best FlashConfig per (GPU arch, head_dim, dtype, causal),
written from the sweep's measurements (python -m attention_proto.bench flash)."""

from __future__ import annotations

from functools import cache

# (arch, head_dim, causal) -> (block_m, block_n, stages, warps). Each entry cites the run
# that measured it; dtype shares the entry (bf16 and fp16 run the same schedule).
TABLE: dict[tuple[str, int, bool], tuple[int, int, int, int]] = {}

# Before a sweep has measured this GPU: FlashAttention-2's own layout for these
# head dims (128 query rows over 4 warps, 64 keys per step, double-buffered K/V).
FALLBACK = (128, 64, 2, 4)


@cache
def _arch() -> str:
    from .. import cuda

    return cuda.properties()["arch"] if cuda.is_available() else "sm_90a"


def best_config(head_dim: int, dtype: str, causal: bool):
    from .flash import FlashConfig

    m, n, s, w = TABLE.get((_arch(), head_dim, bool(causal)), FALLBACK)
    return FlashConfig(m, n, s, w)

"""Proto 5 (the Triton twin): no findings derived yet. The suite's questions and
their thresholds wait for its first GPU run; until then a dsl results file
derives to nothing instead of failing `bench` and `findings derive`."""

from __future__ import annotations


def derive(run) -> list[dict]:
    return []

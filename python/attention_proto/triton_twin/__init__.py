"""Proto 5's DSL twin: the flash forward written in Triton (kernel.py), its
ahead-of-time compile for sm_90a (aot.py) and the code-quality comparison with
the hand-written kernel (quality.py). Triton is optional: pip install ".[triton]".
Nothing here imports triton until it is used."""

from __future__ import annotations

from .front import flash_attention, require_triton

__all__ = ["flash_attention", "require_triton"]

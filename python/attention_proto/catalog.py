"""Every kernel variant the package ships, for prebuilding archives and for the
CPU-side compile checks."""

from __future__ import annotations


def all_specs() -> list:
    from . import probes
    from .ops import flash, linear_front, paged, rope, simple

    specs = simple.all_specs() + probes.all_specs() + flash.sweep_specs("bfloat16")
    specs += flash.default_specs() + flash.alibi_specs() + flash.rope_specs()
    specs += flash.stitch_specs()
    specs += paged.all_specs() + rope.all_specs() + linear_front.all_specs()
    unique = {s.name: s for s in specs}
    return list(unique.values())

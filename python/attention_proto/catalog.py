"""Every kernel variant the package ships, for prebuilding archives and for the
CPU-side compile checks."""

from __future__ import annotations


def all_specs() -> list:
    from . import probes
    from .ops import simple

    return simple.all_specs() + probes.all_specs()

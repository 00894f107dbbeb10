"""A counter for long loops (compiles take ~0.3 s each, a suite has hundreds),
on stderr so stdout keeps the tables: rewritten in place on a terminal, a line
at every tenth otherwise so logs stay short."""

from __future__ import annotations

import sys
import time


def counted(items, label: str, total: int | None = None, stream=None):
    """Yield each item of `items` (lazily: an iterator of results counts each as
    it arrives), reporting `label i/total` once the loop body has run."""
    out = stream or sys.stderr
    tty = out.isatty()
    total = len(items) if total is None else total
    step = max(total // 10, 1)
    t0 = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        if tty:
            name = str(getattr(item, "name", ""))[:60]
            out.write(f"\r  {label} {i}/{total} {name}\x1b[K")
        elif i % step == 0 or i == total:
            out.write(f"  {label} {i}/{total} ({time.perf_counter() - t0:.0f} s)\n")
        out.flush()
    if tty and total:
        out.write(f"\r  {label} {total}/{total} in {time.perf_counter() - t0:.0f} s\x1b[K\n")
        out.flush()

"""GPU timing: event-timed runs after warm-up, summarized as median, min, CV."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from . import _core


@dataclass(frozen=True)
class TimingStats:
    median_s: float
    min_s: float
    mean_s: float
    cv: float  # standard deviation / mean
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(seconds) -> TimingStats:
    xs = list(seconds)
    if not xs:
        raise ValueError("[timing] no samples")
    mean = statistics.fmean(xs)
    cv = statistics.pstdev(xs) / mean if mean > 0 and len(xs) > 1 else 0.0
    return TimingStats(statistics.median(xs), min(xs), mean, cv, len(xs))


def benchmark_kernel_gpu_time(
    pipeline, grid, block, shared_bytes, args, *, warmup=4, iterations=50
) -> TimingStats:
    """GPU seconds per dispatch of one pipeline (each run bracketed by events)."""
    if warmup < 4:
        raise ValueError("[timing] warmup must be >= 4 dispatches")
    return summarize(pipeline.benchmark(grid, block, shared_bytes, args, warmup, iterations))


def time_callable(fn, *, warmup=4, iterations=50, before_each=None, repeat=1) -> TimingStats:
    """GPU seconds of fn() by events on the legacy default stream, which torch's
    default stream shares; `before_each` (not timed) can rotate inputs. With
    repeat > 1 each sample is `repeat` calls back to back between the events,
    divided by `repeat`: the host's time to issue a call then hides under the
    previous call's GPU work, as in a model's steady state, instead of reading
    as GPU time after each synchronize (before_each then runs once per batch;
    the CV is over batch means, so about sqrt(repeat) smaller)."""
    if repeat < 1:
        raise ValueError(f"[timing] repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        if before_each:
            before_each()
        fn()
    samples = []
    start, end = _core.Event(), _core.Event()
    for _ in range(iterations):
        if before_each:
            before_each()
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        samples.append(end.elapsed_ms_since(start) * 1e-3 / repeat)
    return summarize(samples)

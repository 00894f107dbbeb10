"""Diagnostic, not a suite: does the card's clock move with the kernel it
runs? Session 20 found that ALiBi's cost over the plain call reads +0.2-0.8 %
at 8K causal when each is timed in batches of its own calls (bench variants'
_paired, callpath._in_turn) and +7.1 % when the two alternate call by call
(callpath.interleaved), where an A/A pair reads 0.04 %. If the card is held
at its power limit, a kernel that draws less power runs at a higher clock
when it runs alone, and the batch timing credits it. Per case, three phases
of about PHASE_S seconds each: the plain public call back to back, the ALiBi
call back to back, then the two alternating; nvidia-smi samples the SM clock,
the power and the power-cap reason every 50 ms meanwhile. Prints each phase's
GPU time per call (events around the phase) and its samples' medians.

With --cudnn (session 21): the same three phases for bench hopper's headline
cases (H*D = 2048, B*N = 16K tokens), our public call against cuDNN through
SDPA, where bench/diag/headline_in_turn.py (267ce09) read the causal ratios over cuDNN
4-12 % apart between batches and call by call.

    python3 bench/diag/clock_probe.py [--cudnn]
Writes $OUT/clock_probe.json. Run it alone on the card."""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import time

CASES = ((128, 8192, True), (128, 2048, False))
HEADLINE_CASES = ((128, 8192, True), (128, 8192, False), (64, 8192, True))
PHASE_S = 3.0
QUERY = "timestamp,clocks.sm,power.draw,clocks_event_reasons.sw_power_cap"


def _samples(path, t0, t1):
    """(clock MHz, watts, power-capped) samples between epoch seconds t0 and t1."""
    import datetime

    rows = []
    with open(path) as f:
        for line in f:
            parts = [x.strip() for x in line.split(",")]
            if len(parts) != 4:
                continue
            try:
                ts = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                rows.append((ts, float(parts[1]), float(parts[2]), parts[3] == "Active"))
            except ValueError:
                continue
    return [r[1:] for r in rows if t0 <= r[0] <= t1]


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.common import write_diagnostic

    log = os.path.join(os.environ.get("OUT", "."), "clock_samples.csv")
    query = QUERY
    check = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv"], capture_output=True
    )
    if check.returncode != 0:  # an older driver's name for the reasons
        query = query.replace("clocks_event_reasons", "clocks_throttle_reasons")
    smi = subprocess.Popen(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-lms", "50"],
        stdout=open(log, "w"),
    )
    rows = []
    peer = "--cudnn" in sys.argv
    try:
        for d, n, causal in HEADLINE_CASES if peer else CASES:
            b, h = 16384 // n, 2048 // d if peer else 32
            q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
            plain = functools.partial(ap.flash_attention, q, k, v, causal=causal)
            if peer:  # the second fn: cuDNN, else ALiBi's call
                from attention_proto.bench.callpath import _sdpa

                other = functools.partial(_sdpa(torch, "CUDNN_ATTENTION"), q, k, v, causal)
            else:
                other = functools.partial(plain, alibi_slopes="default")
            for f in (plain, other):
                for _ in range(10):
                    f()
            torch.cuda.synchronize()
            per_call = plain_ms = None
            second = "cudnn" if peer else "alibi"
            for phase, fns in (("plain", [plain]), (second, [other]), ("both", [plain, other])):
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                if per_call is None:  # calls per phase from a first timing
                    start.record()
                    for _ in range(20):
                        plain()
                    end.record()
                    end.synchronize()
                    plain_ms = start.elapsed_time(end) / 20
                    per_call = max(20, int(PHASE_S * 1e3 / plain_ms))
                calls = per_call - per_call % len(fns)
                time.sleep(0.5)  # an idle gap between phases
                t0 = time.time()
                start.record()
                for i in range(calls):
                    fns[i % len(fns)]()
                end.record()
                end.synchronize()
                t1 = time.time()
                time.sleep(0.1)  # the last samples land
                s = _samples(log, t0 + 0.3, t1)
                row = {
                    "d": d,
                    "n": n,
                    "causal": causal,
                    "phase": phase,
                    "calls": calls,
                    "ms_per_call": round(start.elapsed_time(end) / calls, 4),
                    "samples": len(s),
                }
                if s:
                    row["clock_mhz_median"] = statistics.median(x[0] for x in s)
                    row["power_w_median"] = statistics.median(x[1] for x in s)
                    row["power_capped_share"] = round(sum(x[2] for x in s) / len(s), 3)
                rows.append(row)
                print(row, flush=True)
            del q, k, v
    finally:
        smi.terminate()
    write_diagnostic("clock_probe", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

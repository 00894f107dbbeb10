"""Diagnostic, not a suite: why bench variants' ALiBi cost at 2K (public call
over the plain public call) sits 2-4 points above the kernel-only in-turn
figures of the same kernels (docs/variants-cost.md, "Session 19"). Per case,
in one group: the plain and ALiBi public calls (torch tensors, as bench
variants times them) and the Prepared objects the dispatcher builds for them,
relaunched (kernel only), and the ALiBi call given torch's current stream
(stream=..., the call's general branch: since the standard slopes take the
common call's branch as the plain call does, this is the branch every
ALiBi call took before). Timed two ways: callpath._in_turn (batches of
each fn's own calls, rounds in turn, as bench variants timed until session
20) and callpath.interleaved (an event pair around every call, the fns in
turn back to back); the plain call a second time as an A/A
control; then each public call's host time per call. Session 20's calls at
a0e979d and 915a6d7 also timed bench variants' batch pairing of then
(paired_* columns); since 50b2e30 that pairing is call by call itself. The
dispatch reasons are printed, so a different kernel would show. D=128, H=32,
B*N = 16K tokens, bf16, the standard slopes.

    python3 bench/diag/alibi_public_gap.py [--rounds 6]
Writes $OUT/alibi_public_gap.json. Run it alone on the card."""

from __future__ import annotations

import functools
import statistics
import sys

CASES = ((128, 2048, False), (128, 2048, True), (128, 8192, True))


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import _host_time, _in_turn, interleaved, median_ratio
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 6
    rows = []
    for d, n, causal in CASES:
        h, b = 32, 16384 // n
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
        public = functools.partial(ap.flash_attention, q, k, v, causal=causal)
        alibi = functools.partial(public, alibi_slopes="default")
        alibi_stream = functools.partial(alibi, stream=torch.cuda.current_stream())
        prep_plain = flash.prepare(q, k, v, causal=causal)
        prep_alibi = flash.prepare(q, k, v, causal=causal, alibi_slopes="default")
        names = ("public_plain", "public_alibi", "kernel_plain", "kernel_alibi")
        names += ("public_alibi_stream", "public_plain_again")
        again = functools.partial(ap.flash_attention, q, k, v, causal=causal)  # A/A control
        fns = [public, alibi, prep_plain.launch, prep_alibi.launch, alibi_stream, again]
        row = {"d": d, "n": n, "causal": causal, "rounds": rounds}
        row["plain_reason"], row["alibi_reason"] = prep_plain.reason, prep_alibi.reason
        _, per_round = _in_turn(torch, fns, rounds, 6, rotate=True)
        for name, t in zip(names, per_round, strict=True):
            row[f"in_turn_{name}_over_public_plain_pct"] = round(
                (median_ratio(t, per_round[0]) - 1) * 100, 2
            )
        row["in_turn_kernel_alibi_over_kernel_plain_pct"] = round(
            (median_ratio(per_round[3], per_round[2]) - 1) * 100, 2
        )
        per_call = interleaved(torch, fns, cycles=120)
        for name, t in zip(names, per_call, strict=True):
            row[f"interleaved_{name}_ms"] = round(statistics.median(t) * 1e3, 4)
            row[f"interleaved_{name}_over_public_plain_pct"] = round(
                (median_ratio(t, per_call[0]) - 1) * 100, 2
            )
        row["interleaved_kernel_alibi_over_kernel_plain_pct"] = round(
            (median_ratio(per_call[3], per_call[2]) - 1) * 100, 2
        )
        for name, fn in zip(
            ("public_plain", "public_alibi", "public_alibi_stream"),
            (public, alibi, alibi_stream),
            strict=True,
        ):
            row[f"host_{name}_us"] = round(_host_time(torch, fn, ()).median_s * 1e6, 1)
        rows.append(row)
        print(row, flush=True)
        del prep_plain, prep_alibi
    write_diagnostic("alibi_public_gap", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

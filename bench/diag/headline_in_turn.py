"""Diagnostic, not a suite: issue 11's headline cases (N = 8K and 16K, B*N =
16K tokens, H*D = 2048, bf16) with the public call, the prepared relaunch of
the same plan (kernel only) and cuDNN through SDPA timed in turn, ROUNDS
times, so that a drift of the card's clock spreads over all three; each ratio
is the median over the rounds of that round's ratio. bench hopper times them
one after another instead (session 14: its kernel-only column gave the causal
8K plan 504 TFLOP/s where bench/ab_sweep.py's in-turn relaunch gave 538-541).
Since session 20 the same three are also timed call by call
(callpath.interleaved, CYCLES cycles), so all run at one clock: at its power
limit the H200's clock follows the kernel, and batches compare each kernel
at its own clock (docs/gpu-notes.md, session 20); the *_interleaved ratios
say how far that moves the headline. Run it alone on the card.

    python3 bench/diag/headline_in_turn.py [--rounds 7]
Writes $OUT/headline_in_turn.json."""

from __future__ import annotations

import statistics
import sys

CYCLES = 120


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import _in_turn, _sdpa, interleaved, median_ratio
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 7
    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    rows = []
    for n in (8192, 16384):
        for d in (128, 64):
            for causal in (False, True):
                h, b = 2048 // d, 16384 // n
                qkv = [torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
                plan = flash.prepare(*qkv, causal=causal)
                fns = [
                    lambda x=qkv, c=causal: ap.flash_attention(*x, causal=c),
                    plan.launch,
                    lambda x=qkv, c=causal: cudnn(*x, c),
                ]
                medians, per_round = _in_turn(torch, fns, rounds)
                fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
                tflops = [fl / t / 1e12 for t in medians]
                # Time ratios cuDNN / ours per round: above 1 means ours is faster.
                ours, relaunch, peer = per_round
                public = statistics.median(c / p for p, c in zip(ours, peer, strict=True))
                kernel = statistics.median(c / k for k, c in zip(relaunch, peer, strict=True))
                calls = interleaved(torch, fns, cycles=CYCLES)
                public_one_clock = median_ratio(calls[2], calls[0])  # cuDNN / ours
                kernel_one_clock = median_ratio(calls[2], calls[1])
                rows.append(
                    {
                        "n": n,
                        "d": d,
                        "causal": causal,
                        "config": plan.config.label(),
                        "tflops_public_kernel_cudnn": [round(x, 1) for x in tflops],
                        "public_over_cudnn": round(public, 4),
                        "kernel_over_cudnn": round(kernel, 4),
                        "public_over_cudnn_interleaved": round(public_one_clock, 4),
                        "kernel_over_cudnn_interleaved": round(kernel_one_clock, 4),
                        "rounds": rounds,
                        "cycles": CYCLES,
                    }
                )
                print(
                    f"N={n:>5} D={d:>3} causal={int(causal)} {plan.config.label():<18}"
                    f" public {tflops[0]:.0f} kernel {tflops[1]:.0f} cudnn {tflops[2]:.0f}"
                    f"  public/cudnn {public:.3f}x kernel/cudnn {kernel:.3f}x"
                    f"  call by call {public_one_clock:.3f}x / {kernel_one_clock:.3f}x",
                    flush=True,
                )
                del plan
    write_diagnostic("headline_in_turn", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

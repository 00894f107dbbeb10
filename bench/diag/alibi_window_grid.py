"""Diagnostic, not a suite: what ALiBi's window (HopperConfig.alibi_window)
saves. Per case, public calls timed call by call (callpath.interleaved, one
clock), each over the plain call, cycle by cycle:
- plain: flash_attention(q, k, v);
- alibi: the same with the standard slopes, config= the ALiBi plan's
  configuration without the window (what the dispatch ran before 4bce413's
  measurement);
- window: the same ALiBi call as dispatched, with alibi_window (its norms
  kernel, then the attention kernel cut to windows; the plan since then).
Shapes as bench variants (H = 32, B*N = 16K tokens, bf16, random normal
inputs), N = 2K and 8K, D = 128 and 64, both masks, where the ALiBi plan runs
steps (d)/(e). Also prints, per case, the key tiles the windows keep (from
the norms the kernel sees, by the kernel's own rule, recomputed here) and one
check: the window's output equals the call without it bit for bit.

--scale S multiplies q and k by S: larger norms widen every window, down to
none skipped (the window's floor: its norms pass on top of the per-score
cost). The inputs stay finite in bf16.

--lengths 2048,8192 (the default) names the sequence lengths.

    python3 bench/diag/alibi_window_grid.py [--cycles 60] [--scale 1] [--lengths 2048,8192]
Writes $OUT/alibi_window_grid.json (alibi_window_grid_scale<S>.json for S != 1).
Run it alone on the card."""

from __future__ import annotations

import math
import sys
from dataclasses import replace

LENGTHS = (2048, 8192)


def kept_fraction(q, k, slopes, causal, cfg) -> float:
    """The fraction of the plan's key tiles the kernel's alibi_window keeps,
    recomputed from the same bound (every row's norm, every head)."""
    b, h, n, d = q.shape
    qmax = q.float().norm(dim=-1).amax(dim=-1).tolist()  # [b][h]
    kmax = k.float().norm(dim=-1).amax(dim=-1).tolist()
    scale = 1 / math.sqrt(d)
    bm, bn = cfg.block_m, cfg.block_n
    kept = total = 0
    for bi in range(b):
        for hi in range(h):
            reach = (2 * scale * qmax[bi][hi] * kmax[bi][hi] + 130 * math.log(2)) / float(
                slopes[hi]
            )
            r = math.ceil(reach)
            for m0 in range(0, n, bm):
                last_row = min(m0 + bm, n) - 1
                n_end = last_row // bn + 1 if causal else -(-n // bn)
                lo = max(0, (m0 - r) // bn) if m0 - r > 0 else 0
                hi_tile = min((last_row + r) // bn, n_end - 1)
                kept += hi_tile - lo + 1
                total += n_end
    return kept / total


def _calls(ap, q, k, v, causal, plan):
    """The case's public calls by name (the rows the module docstring lists)."""
    call, a = ap.flash_attention, "default"
    return {
        "plain": lambda: call(q, k, v, causal=causal),
        "alibi": lambda: call(q, k, v, causal=causal, alibi_slopes=a, config=plan),
        "window": lambda: call(q, k, v, causal=causal, alibi_slopes=a),
    }


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import interleaved
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from grid_rows import case_inputs, case_row

    cycles = int(sys.argv[sys.argv.index("--cycles") + 1]) if "--cycles" in sys.argv else 60
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
    lengths = LENGTHS
    if "--lengths" in sys.argv:
        lengths = tuple(int(x) for x in sys.argv[sys.argv.index("--lengths") + 1].split(","))
    rows = []
    for d in (128, 64):
        for causal in (False, True):
            for n in lengths:
                window = flash.hopper_config(d, causal, n, True)
                plan = replace(window, alibi_window=False)
                if plan.step < 4:
                    continue
                q, k, v = case_inputs(torch, d, n, causal, scale)
                fns = _calls(ap, q, k, v, causal, plan)
                same = torch.equal(fns["alibi"](), fns["window"]())
                slopes = ap.reference.alibi_slopes(q.shape[1])
                kept = kept_fraction(q, k, slopes, causal, plan)
                labels = {"plain": flash.hopper_config(d, causal, n).label()}
                labels |= {"alibi": plan.label(), "window": window.label()}
                names = list(fns)
                times = interleaved(torch, [fns[x] for x in names], cycles=cycles)
                row = case_row(
                    d,
                    n,
                    causal,
                    names,
                    times,
                    labels,
                    cycles=cycles,
                    bitwise_equal=same,
                    tiles_kept=round(kept, 4),
                    input_scale=scale,
                )
                print(f"   tiles kept {kept:.3f}, window == alibi bit for bit: {same}", flush=True)
                rows.append(row)
                del q, k, v, fns
    name = "alibi_window_grid" + ("" if scale == 1 else f"_scale{scale:g}")
    name += "" if lengths == LENGTHS else "_n" + "-".join(map(str, lengths))
    write_diagnostic(name, torch.cuda.get_device_name(), rows, input_scale=scale)


if __name__ == "__main__":
    main()

"""Diagnostic, not a suite: where an ALiBi window call's time goes, kernel
only. Per case, timed call by call (callpath.interleaved, one clock), each
over the plain plan's kernel:
- alibi: the ALiBi plan's kernel without the window;
- window: the window's launch plan whole (its norms kernel, then attention);
- window_attention: its attention kernel alone (on the norms the last whole
  launch wrote: the same windows);
- norms: its norms kernel alone.
If window_attention is below alibi by about the tiles skipped, the window's
cost above that is the norms pass and the launch between; if not, the
attention kernel itself pays per item. Shapes as bench variants (H = 32,
B*N = 16K tokens, bf16, random normal inputs times --scale).

    python3 bench/diag/alibi_window_parts.py [--cycles 60] [--scale 1]
Writes $OUT/alibi_window_parts[_scale<S>].json. Run it alone on the card."""

from __future__ import annotations

import sys
from dataclasses import replace

CASES = ((128, True, 2048), (128, False, 2048), (128, True, 8192))


def main():
    import torch

    from attention_proto import _core
    from attention_proto.bench.callpath import interleaved
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash, flash_hopper

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from grid_rows import case_inputs, case_row

    cycles = int(sys.argv[sys.argv.index("--cycles") + 1]) if "--cycles" in sys.argv else 60
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
    rows = []
    for d, causal, n in CASES:
        q, k, v = case_inputs(torch, d, n, causal, scale)
        window_cfg = flash.hopper_config(d, causal, n, True)
        plain_cfg = flash.hopper_config(d, causal, n)
        alibi_cfg = replace(window_cfg, alibi_window=False)
        plain = flash_hopper.Prepared(q, k, v, causal=causal, config=plain_cfg)
        alibi = flash_hopper.Prepared(
            q, k, v, causal=causal, config=alibi_cfg, alibi_slopes="default"
        )
        window = flash_hopper.Prepared(
            q, k, v, causal=causal, config=window_cfg, alibi_slopes="default"
        )
        assert window.window and len(window.steps) == 2
        args = window.plan.args
        norms = _core.LaunchPlan(window.steps[:1], args, window.slots, window.tensor_maps)
        attention = _core.LaunchPlan(window.steps[1:], args, window.slots, window.tensor_maps)
        fns = {
            "plain": plain.launch,
            "alibi": alibi.launch,
            "window": window.launch,
            "window_attention": lambda a=attention, w=window: a.run(w.stream, w.addresses),
            "norms": lambda m=norms, w=window: m.run(w.stream, w.addresses),
        }
        window.launch()
        torch.cuda.synchronize()
        names = list(fns)
        times = interleaved(torch, [fns[x] for x in names], cycles=cycles)
        labels = {"plain": plain_cfg.label(), "alibi": alibi_cfg.label()}
        labels |= dict.fromkeys(("window", "window_attention", "norms"), window_cfg.label())
        rows.append(case_row(d, n, causal, names, times, labels, cycles=cycles, input_scale=scale))
        del q, k, v, plain, alibi, window, fns, norms, attention
    name = "alibi_window_parts" + ("" if scale == 1 else f"_scale{scale:g}")
    write_diagnostic(name, torch.cuda.get_device_name(), rows, input_scale=scale)


if __name__ == "__main__":
    main()

"""Diagnostic, not a suite: what the order of the key tiles costs the wgmma
kernel, kernel only, over the plain plan (callpath.interleaved: an event pair
around every call, the kernels in turn back to back). ALiBi's kernels take
the tiles nearest the block's diagonal first (KEY_ORDER 1, zig-zag); the
plain kernel ascending (0). Timed: the plain plan and each ALiBi form (ALIBI=2
as dispatched without the mask, ALIBI=3) with orders 1, 2 (the diagonal's
tile, down to the first, then up from past it; without the mask only) and 3
(the diagonal's tile, then the rest ascending). Orders change no result (the
online softmax takes keys in any order), only the time: ascending ALiBi would
raise rows' max at most steps, and each raise rescales the output. D=128 and
64, H=32, B*N = 16K tokens, bf16, the standard slopes. From session 20 (the
first call, a0e979d, timed orders 0-2 in turn, on three cases).

Session 20's call 3 (50b2e30) ran a --slack mode, since removed with the
RESCALE_SLACK constant it timed (docs/gpu-notes.md).

    python3 bench/diag/key_order_grid.py [--cycles 60] [--prebuild]
Writes $OUT/key_order_grid.json. Run it alone on the card."""

from __future__ import annotations

import sys
from dataclasses import replace

CASES = ((128, 2048, False), (128, 2048, True), (128, 8192, False), (128, 8192, True))
CASES += ((64, 8192, False), (64, 8192, True))


def kernels(d, n, causal):
    """(name, config, alibi, extra constants) per kernel timed for one case."""
    from attention_proto.ops import flash

    plan = flash.hopper_config(d, causal, n)
    dispatched = flash.hopper_config(d, causal, n, alibi=True)
    start = replace(plan, alibi_start=True)
    # Under the mask orders 1 and 2 are the same (descending from the diagonal).
    orders = (1, 3) if causal else (1, 2, 3)
    rows = [("plain", plan, False, {})]
    rows += [(f"plain_order{o}", plan, False, {"KEY_ORDER": o}) for o in orders]
    alibi_forms = [("dispatched", dispatched)]
    if dispatched != start:
        alibi_forms.append(("start", start))
    for form, cfg in alibi_forms:
        rows += [(f"alibi_{form}_order{o}", cfg, True, {"KEY_ORDER": o}) for o in orders]
    return rows


def spec(d, causal, cfg, alibi, extra):
    from attention_proto.ops import flash_hopper

    return flash_hopper.spec(d, "bfloat16", causal, cfg, alibi, extra=extra)


def main():
    if "--prebuild" in sys.argv:
        from grid_rows import prebuild

        prebuild(
            spec(d, causal, cfg, alibi, extra)
            for d, n, causal in CASES
            for _, cfg, alibi, extra in kernels(d, n, causal)
        )
        return
    import torch
    from grid_rows import case_inputs, case_row

    from attention_proto.bench.callpath import interleaved
    from attention_proto.bench.common import write_diagnostic
    from attention_proto.ops import flash_hopper

    class Ordered(flash_hopper.Prepared):
        """The dispatcher's Prepared with extra constants (KEY_ORDER), set
        before Prepared's constructor builds the kernel from spec()."""

        def __init__(self, *args, extra, **kwargs):
            self.extra = extra
            super().__init__(*args, **kwargs)

        def spec(self):
            p = self.problem
            return spec(
                p.head_dim, p.causal, self.config, self.alibi_slopes is not None, self.extra
            )

    cycles = int(sys.argv[sys.argv.index("--cycles") + 1]) if "--cycles" in sys.argv else 60
    rows = []
    for d, n, causal in CASES:
        q, k, v = case_inputs(torch, d, n, causal)
        preps, labels = {}, {}
        for name, cfg, alibi, extra in kernels(d, n, causal):
            kw = {"alibi_slopes": "default"} if alibi else {}
            preps[name] = Ordered(q, k, v, causal=causal, config=cfg, extra=extra, **kw)
            labels[name] = f"{cfg.label()} {extra}"
        names = list(preps)
        per_round = interleaved(torch, [preps[x].launch for x in names], cycles=cycles)
        rows.append(case_row(d, n, causal, names, per_round, labels, cycles=cycles))
        del preps
    write_diagnostic("key_order_grid", torch.cuda.get_device_name(), rows)


if __name__ == "__main__":
    main()

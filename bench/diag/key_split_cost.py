"""Where does the key split's time go? D=128 non-causal, bench hopper's shapes
(B*N = 16K tokens, H = 16: 2048 items of 128 rows on the card's SMs, the
last round partly empty). Kernel-only, timed in turn against the unsplit
plan: the split at each forced part count, its wgmma kernel alone (the merge
step left out: its output is wrong, its time is the parts') and the merge
alone (on stale scratch: the same reads and writes). Then the plan at B=1,
N=8K, H=32 (15.5 rounds) and H=33 (2112 items: 16 full rounds), for what a
full last round is worth.
python3 bench/diag/key_split_cost.py [N ...]"""

import statistics
import sys
from dataclasses import replace

import torch

from attention_proto import _core
from attention_proto.bench.callpath import _in_turn, _sdpa
from attention_proto.bench.common import write_diagnostic
from attention_proto.ops import flash, flash_hopper

cudnn = _sdpa(torch, "CUDNN_ATTENTION")
D = 128
sms = torch.cuda.get_device_properties(0).multi_processor_count
print(torch.cuda.get_device_name(), "SMs", sms, flush=True)
plan_fn = flash_hopper.key_split_plan
rows = []
for n in [int(x) for x in sys.argv[1:]] or [4096, 8192]:
    b, h = 16384 // n, 16
    cfg = flash.hopper_config(D, False, n)
    qkv = [torch.randn(b, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
    fl = 4 * b * h * n * n * D
    plain = flash_hopper.Prepared(*qkv, config=cfg)
    fns, names = [plain.launch, lambda x=qkv: cudnn(*x, False)], ["plan", "cudnn"]
    key_tiles = -(-n // cfg.block_n)
    # The KEY_SPLIT kernel with no split (partition_size 0): its code's own cost.
    flash_hopper.key_split_plan = lambda items, ctas, kt: (1, kt)
    unsplit = flash_hopper.Prepared(*qkv, config=replace(cfg, key_split=True))
    flash_hopper.key_split_plan = plan_fn
    fns.append(unsplit.launch)
    names.append("KEY_SPLIT, 1 part")
    for parts in (3, 5, 7):
        tiles = -(-key_tiles // parts)
        flash_hopper.key_split_plan = lambda items, ctas, kt, t=tiles: (-(-kt // t), t)
        split = flash_hopper.Prepared(*qkv, config=replace(cfg, key_split=True))
        flash_hopper.key_split_plan = plan_fn
        args = split.plan.args
        kernel = _core.LaunchPlan(split.steps[:1], args, split.slots, split.tensor_maps)
        merge = _core.LaunchPlan(split.steps[1:], args, split.slots, split.tensor_maps)
        fns += [
            split.launch,
            lambda k=kernel, s=split: k.run(s.stream, s.addresses),
            lambda m=merge, s=split: m.run(s.stream, s.addresses),
        ]
        names += [f"split{split.split_parts}", f"split{split.split_parts} kernel", "merge"]
    medians, per_round = _in_turn(torch, fns, 5)
    base = per_round[0]
    for name, t, times in zip(names, medians, per_round, strict=True):
        ratio = statistics.median(x / p for x, p in zip(times, base, strict=True))
        us = t * 1e6
        tf = fl / t / 1e12
        print(f"N={n} {name:<16} {us:8.1f} us {tf:6.0f} TFLOP/s  time/plan {ratio:.4f}", flush=True)
        rows.append({"n": n, "case": name, "us": round(us, 2), "time_over_plan": round(ratio, 4)})
for h in (32, 33):
    qkv = [torch.randn(1, h, 8192, D, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
    prep = flash_hopper.Prepared(*qkv, config=flash.hopper_config(D, False, 8192))
    (t,), _ = _in_turn(torch, [prep.launch], 5)
    tf = 4 * h * 8192 * 8192 * D / t / 1e12
    print(f"H={h} N=8192 B=1 items={64 * h} rounds={64 * h / sms:.2f} {tf:.0f} TFLOP/s", flush=True)
    rows.append({"n": 8192, "case": f"H={h}", "tflops": round(tf, 1)})
write_diagnostic("key_split_cost", torch.cuda.get_device_name(), rows)

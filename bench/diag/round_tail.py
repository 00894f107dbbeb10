"""Does the persistent grid's last, partial round cost what its arithmetic
says? D=128 non-causal on 128-row items: H heads, B = 1, N = 8K gives 64 * H
items on 132 SMs; H = 32 is 15.5 rounds (the last half empty), H = 33 is 16
full rounds. Kernel-only TFLOP/s of the dispatched plan beside cuDNN at both,
timed in turn. python3 bench/diag/round_tail.py"""

import torch

from attention_proto.bench.callpath import _in_turn, _sdpa
from attention_proto.ops import flash, flash_hopper

cudnn = _sdpa(torch, "CUDNN_ATTENTION")
D, N = 128, 8192
sms = torch.cuda.get_device_properties(0).multi_processor_count
print(torch.cuda.get_device_name(), "SMs", sms)
for causal in (False, True):
    cfg = flash.hopper_config(D, causal, N)
    for h in (32, 33, 31):
        qkv = [torch.randn(1, h, N, D, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
        fl = 4 * h * N * N * D * (0.5 if causal else 1.0)
        prep = flash_hopper.Prepared(*qkv, causal=causal, config=cfg)
        fns = [prep.launch, lambda x=qkv, c=causal: cudnn(*x, c)]
        medians, _ = _in_turn(torch, fns, 5)
        ours, theirs = (fl / t / 1e12 for t in medians)
        items = -(-N // cfg.block_m) * h
        print(
            f"causal={int(causal)} H={h} items={items} rounds={items / sms:.2f} "
            f"{cfg.label()} {ours:.0f} cudnn {theirs:.0f} ({ours / theirs:.3f}x)",
            flush=True,
        )

"""Kernel-only TFLOP/s of the Hopper steps (a)-(d) beside the mma.sync public
call and cuDNN, without the dsl suite's Triton autotuning (a quick look; the
recorded numbers come from `bench dsl`). python3 bench/diag/hopper_steps.py"""

import torch

import attention_proto as ap
from attention_proto import debug
from attention_proto.bench.callpath import _gpu_time, _sdpa
from attention_proto.ops import flash_hopper

cudnn = _sdpa(torch, "CUDNN_ATTENTION")
# Steps (c) and (d) (warp-specialized) on 128 x 64 tiles too: a like-for-like pair.
STEPS = [(1, 128, 128), (2, 128, 128), (3, 128, 128), (3, 128, 64), (4, 128, 64), (4, 128, 128)]
STEPS += [(5, 128, 128)]
print("d  causal  n      mma_sync  step_a  step_b  step_c  c_n64  d_n64  d_n128  e_n128  cudnn")
for d, h in ((64, 32), (128, 16)):
    for causal in (False, True):
        for n in (1024, 4096, 8192, 16384):
            b = 16384 // n
            shape = (b, h, n, d)
            qkv = tuple(torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in "qkv")
            flops = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
            out = []
            ours = lambda q, k, v, c=causal: ap.flash_attention(q, k, v, causal=c)  # noqa: E731
            debug.dispatch_hopper = False  # the public call on the mma.sync kernel
            t = _gpu_time(torch, ours, [qkv])
            debug.dispatch_hopper = True
            out.append(flops / t.median_s / 1e12)
            for step, bm, bn in STEPS:
                cfg = flash_hopper.HopperConfig(bm, bn, step)
                try:
                    prep = flash_hopper.Prepared(*qkv, causal=causal, config=cfg)
                    t = _gpu_time(torch, lambda p: p.launch(), [(prep,)])
                    out.append(flops / t.median_s / 1e12)
                except Exception as e:  # report and go on
                    print(f"step {step}: {str(e)[:120]}")
                    out.append(float("nan"))
            t = _gpu_time(torch, lambda q, k, v, c=causal: cudnn(q, k, v, c), [qkv])
            out.append(flops / t.median_s / 1e12)
            cells = "  ".join(f"{x:7.1f}" for x in out)
            print(f"{d:<3d}{causal!s:7s} {n:<6d} {cells}", flush=True)

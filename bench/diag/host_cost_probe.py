"""Where the flash public call's host time goes (issue 9: <= 10 us per call).

Times, back to back like the callpath suite's host rows, each piece of the torch
fast path on the suite's small shape: the pieces alone, the public call, and a
pure-Python calibration (a no-op function call) so hosts can be compared.
Run on the GPU machine: python3 bench/diag/host_cost_probe.py
"""

import time

import torch

import attention_proto as ap
from attention_proto.ops import flash, streams

CALLS, SAMPLES = 2000, 7


def host_us(fn):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    best = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            fn()
        best.append((time.perf_counter() - t0) / CALLS * 1e6)
        torch.cuda.synchronize()
    best.sort()
    return best[len(best) // 2]


q, k, v = (torch.randn(1, 2, 128, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
ap.flash_attention(q, k, v)
plan = next(iter(flash._PLANS.values()))
o = torch.empty_like(q)
s = torch._C._cuda_getCurrentRawStream(0)
addresses = [q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), 0, plan.alibi_address, 0, 0]


def noop():
    return None


rows = {
    "python no-op call": noop,
    "plan key (18-tuple) + dict get": lambda: flash._PLANS.get(
        (q.shape, q.stride(), k.shape, k.stride(), v.shape, v.stride(), q.dtype, k.dtype)
    ),
    "3 data_ptr": lambda: (q.data_ptr(), k.data_ptr(), v.data_ptr()),
    "current raw stream": lambda: torch._C._cuda_getCurrentRawStream(0),
    "streams.for_torch": lambda: streams.for_torch(None),
    "torch.empty_like": lambda: torch.empty_like(q),
    "LaunchPlan.run (C++ launch)": lambda: plan.plan.run(s, addresses),
    "flash public call": lambda: ap.flash_attention(q, k, v),
    "torch SDPA call": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v),
}
for name, fn in rows.items():
    print(f"{name:34s} {host_us(fn):7.3f} us", flush=True)

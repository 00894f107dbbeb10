"""Which op keeps its outputs alive under compute-sanitizer memcheck? (session 5
diagnostic: test_memory_stays_flat_over_1000_calls grew 1 MiB per call there.)"""

import gc
import os

import numpy as np
import torch

import attention_proto as ap

ap.debug.poison_outputs = os.environ.get("POISON") == "1"

torch.manual_seed(0)
q = torch.randn(2, 8, 256, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(2, 2, 256, 128, device="cuda", dtype=torch.bfloat16)
v = torch.randn_like(k)
cos, sin = (torch.from_numpy(x).cuda() for x in ap.rope_tables(256, 128))
fns = {
    "flash": lambda: ap.flash_attention(q, k, v, causal=True),
    "rope": lambda: ap.rope(q, cos, sin),
    "flash_alibi": lambda: ap.flash_attention(q, k, v, alibi_slopes="default"),
    "torch_add": lambda: q + 1,
}
for name, fn in fns.items():
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    m0 = torch.cuda.memory_allocated()
    for _ in range(100):
        fn()
    m1 = torch.cuda.memory_allocated()
    torch.cuda.synchronize()
    m2 = torch.cuda.memory_allocated()
    gc.collect()
    m3 = torch.cuda.memory_allocated()
    live = [o for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.numel() == q.numel()]
    print(
        f"{name}: +{(m1 - m0) >> 10} KiB before sync, +{(m2 - m0) >> 10} after, "
        f"+{(m3 - m0) >> 10} after gc; q-sized tensors tracked by gc: {len(live)}",
        flush=True,
    )
    if live and len(live) > 3:
        refs = gc.get_referrers(live[-1])
        print("  referrers:", [type(r).__name__ for r in refs][:6], flush=True)
print("numpy", np.__version__, "torch", torch.__version__)

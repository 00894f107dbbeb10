"""Diagnostic, not a suite: the wgmma kernel's key-tile width at steps (c) and
(e), kernel only (Prepared relaunch), beside cuDNN, plus ALiBi's cost per tile,
in one quick run. Decides flash.HOPPER_PLAN's tiles; the suites (bench hopper,
bench variants) then measure what the dispatch picks.

    python3 bench/tile_sweep.py [--compile]   # --compile: NVRTC only, no GPU
Shapes as bench hopper: B*N = 16K tokens, H*D = 2048, bf16."""

from __future__ import annotations

import json
import os
import sys

from attention_proto import runtime
from attention_proto.ops import flash_hopper as fh

D128 = [(5, 128), (5, 160), (5, 176), (5, 192), (3, 176)]
D64 = [(3, 64), (3, 128), (5, 128), (3, 160), (5, 160), (3, 192), (5, 192)]
LENGTHS = (1024, 4096, 8192, 16384)
ALIBI_TILES = (128, 176)


def plan():
    for d, tiles in ((128, D128), (64, D64)):
        for causal in (False, True):
            for step, bn in tiles:
                yield d, causal, step, bn, False
    for causal in (False, True):
        for bn in ALIBI_TILES:
            yield 128, causal, 5, bn, True


def compile_all():
    specs = [
        fh.spec(d, "bfloat16", c, fh.HopperConfig(128, bn, s), alibi=a) for d, c, s, bn, a in plan()
    ]
    print(runtime.prebuild(specs, fh.ARCH))


def main():
    import torch

    from attention_proto.bench.callpath import _gpu_time, _sdpa

    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    rows = []
    peers = [(d, c, 0, 0, False) for d in (128, 64) for c in (False, True)]
    for d, causal, step, bn, alibi in list(plan()) + peers:
        for n in LENGTHS if not alibi else (2048, 8192):
            b, h = 16384 // n, 2048 // d
            qkv = [torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
            fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
            if step == 0:
                name = "cudnn"
                t = _gpu_time(torch, lambda q, k, v, c=causal: cudnn(q, k, v, c), [qkv])
            else:
                name = f"{'alibi_' if alibi else ''}step{step}_n{bn}"
                slopes = torch.rand(h, device="cuda", dtype=torch.float32) if alibi else None
                kw = {"alibi_slopes": slopes} if alibi else {}
                try:
                    cfg = fh.HopperConfig(128, bn, step)
                    prep = fh.Prepared(*qkv, causal=causal, config=cfg, **kw)
                except TypeError:
                    print(f"{name}: Prepared takes no alibi_slopes", flush=True)
                    break
                t = _gpu_time(torch, lambda p: p.launch(), [(prep,)])
            row = {
                "d": d,
                "causal": causal,
                "n": n,
                "name": name,
                "tflops": round(fl / t.median_s / 1e12, 1),
                "us": round(t.median_s * 1e6, 1),
                "cv": round(t.cv, 4),
            }
            rows.append(row)
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "tile_sweep.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
    # One line per (d, causal, variant): TFLOP/s at each length.
    lines = {}
    for r in rows:
        key = f"D={r['d']} c={int(r['causal'])} {r['name']:<16}"
        lines.setdefault(key, []).append(f"{r['n']}:{r['tflops']:.0f}({r['cv'] * 100:.1f}%)")
    print(torch.cuda.get_device_name())
    for key, cells in lines.items():
        print(key, " ".join(cells))


if __name__ == "__main__":
    compile_all() if "--compile" in sys.argv else main()

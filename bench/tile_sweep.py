"""Diagnostic, not a suite: wgmma kernel variants kernel only (Prepared
relaunch) beside cuDNN in one quick run: the persistent grid against one CTA
per query block, three consumer warpgroups (192 query rows, D=64), one
softmax exponent in n on the FMA pipe (exp2_poly), and ALiBi per score against
its key part on the tensor cores (alibi_mma), each beside the same tile's
plain kernel, with the standard slopes (session 10's random slopes flattered
ALiBi). Sessions 9 to 11 used it to pick flash.HOPPER_PLAN's tiles; the suites
(bench hopper, bench variants) then measure what the dispatch picks. Run it
alone on the card: session 11's first sweep ran beside GPU tests and misled.

    python3 bench/tile_sweep.py [--compile] [--d 64] [--group plain|variants] [--heads 32]
    # --compile: NVRTC only, no GPU; --d: one head dim's rows only; --group:
    # the plain rows, or the ALiBi / RoPE rows with their plain baselines;
    # --heads: heads per call (default H*D = 2048)
Shapes as bench hopper: B*N = 16K tokens, H*D = 2048, bf16."""

from __future__ import annotations

import os
import sys

from attention_proto import runtime
from attention_proto.bench.common import write_diagnostic
from attention_proto.ops import flash_hopper as fh

# (d, step, block_n, options): plain kernels at LENGTHS
PLAIN = [
    (128, 5, 128, {}),
    (128, 5, 128, {"persistent": True}),
    (128, 5, 176, {}),
    (128, 5, 176, {"persistent": True}),
    (128, 5, 192, {}),
    (128, 5, 192, {"persistent": True}),
    (64, 3, 64, {}),
    (64, 5, 192, {}),
    (64, 5, 192, {"persistent": True}),
    # Three consumer warpgroups (192 query rows, D=64).
    (64, 5, 128, {"block_m": 192}),
    (64, 5, 128, {"block_m": 192, "persistent": True}),
    (64, 5, 64, {"block_m": 192, "persistent": True}),
    # One softmax exponent in n on the FMA pipe (exp2_poly).
    (128, 5, 128, {"persistent": True, "exp2_poly": 8}),
    (128, 5, 192, {"persistent": True, "exp2_poly": 8}),
    (128, 5, 192, {"persistent": True, "exp2_poly": 4}),
    (64, 3, 64, {"exp2_poly": 4}),
    (64, 5, 192, {"persistent": True, "exp2_poly": 8}),
    (64, 5, 192, {"persistent": True, "exp2_poly": 4}),
    (64, 5, 128, {"block_m": 192, "persistent": True, "exp2_poly": 4}),
]
LENGTHS = (1024, 4096, 8192, 16384)
# ALiBi (per score, and its key part on the tensor cores) beside the same tile's
# plain kernel, at bench variants' lengths (D=128).
ALIBI = [
    (5, 128, {}),
    (5, 128, {"alibi_mma": True}),
    (5, 176, {}),
    (5, 176, {"alibi_mma": True}),
    (5, 128, {"alibi_mma": True, "persistent": True}),
    (5, 176, {"alibi_mma": True, "persistent": True}),
    # Per score on the persistent grid (the plain plan's tiles).
    (5, 128, {"persistent": True}),
    (5, 192, {"persistent": True}),
]
ALIBI_LENGTHS = (2048, 8192)
# RoPE (q rotated in the kernel; k as given: the kernel's share only) at the
# tiles a RoPE call could take, beside the same tile's plain kernel (D=128).
ROPE = [
    (5, 128, {"persistent": True}),
    (5, 128, {"persistent": True, "rope_tables": True}),
    (5, 128, {}),
    (5, 176, {}),
    (5, 192, {}),
]


def plan():
    """(d, causal, step, block_n, options, variant, lengths) of every timed
    row, variant "" (plain), "alibi" or "rope"; --group plain or variants
    keeps one part (the variants' part with its plain baselines)."""
    group = option("--group")
    for causal in (False, True):
        if group in (None, "plain"):
            for d, step, bn, opt in PLAIN:
                yield d, causal, step, bn, opt, "", LENGTHS
        if group in (None, "variants"):
            for name, rows in (("alibi", ALIBI), ("rope", ROPE)):
                for step, bn, opt in rows:
                    yield 128, causal, step, bn, opt, name, ALIBI_LENGTHS
                    base = {k: x for k, x in opt.items() if k not in ("alibi_mma", "rope_tables")}
                    yield 128, causal, step, bn, base, "", ALIBI_LENGTHS


def option(name, default=None):
    """The value after `name` on the command line, or `default`."""
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def config(step, bn, opt):
    opt = dict(opt)
    return fh.HopperConfig(opt.pop("block_m", 128), bn, step, **opt)


def selected(rows):
    """rows of plan() (or peers) at --d's head dim, or all of them."""
    if option("--d") is None:
        return list(rows)
    d = int(option("--d"))
    return [r for r in rows if r[0] == d]


def compile_all():
    specs = {
        s.name: s
        for d, c, step, bn, opt, a, _ in selected(plan())
        for s in [
            fh.spec(
                d, "bfloat16", c, config(step, bn, opt), alibi=a == "alibi", rope=int(a == "rope")
            )
        ]
    }
    print(runtime.prebuild(list(specs.values()), fh.ARCH, jobs=os.cpu_count() or 1))


def main():
    import torch

    import attention_proto as ap
    from attention_proto.bench.callpath import _gpu_time, _sdpa
    from attention_proto.reference import alibi_slopes

    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    rows = []
    peers = [(d, c, 0, 0, {}, "", LENGTHS) for d in (128, 64) for c in (False, True)]
    seen = set()
    for d, causal, step, bn, opt, variant, lengths in selected(list(plan()) + peers):
        if (d, causal, step, bn, str(opt), variant, lengths) in seen:
            continue  # a plain baseline two variant rows share
        seen.add((d, causal, step, bn, str(opt), variant, lengths))
        for n in lengths:
            # --heads H: bench variants' shape (H=32 at B*N = 16K tokens)
            # instead of H*D = 2048.
            h = int(option("--heads", 2048 // d))
            b = 16384 // n
            qkv = [torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in "qkv"]
            fl = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
            if step == 0:
                name = "cudnn"
                t = _gpu_time(torch, lambda q, k, v, c=causal: cudnn(q, k, v, c), [qkv])
            else:
                cfg = config(step, bn, opt)
                name = (variant + "_" if variant else "") + cfg.label()
                extra = {}
                if variant == "alibi":
                    slopes = alibi_slopes(h)
                    extra["alibi_slopes"] = torch.tensor(slopes, device="cuda").float()
                if variant == "rope":
                    tables = (torch.from_numpy(x).cuda() for x in ap.rope_tables(n, d))
                    extra["rope"] = tuple(tables)
                prep = fh.Prepared(*qkv, causal=causal, config=cfg, **extra)
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
    write_diagnostic("tile_sweep", torch.cuda.get_device_name(), rows)
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

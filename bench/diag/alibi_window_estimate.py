"""Diagnostic on the CPU, not a suite: how many key tiles could an ALiBi call
skip without changing its result? (A design question for issue 13; nothing
in the kernels uses it.)

Under ALiBi a score's bias falls by slope * |i - j|. Once a key tile's every
exponent s * scale * log2(e) + bias * log2(e) - m sits below -127, the
kernel's exp2 gives exactly 0 for the whole tile (ex2.approx.ftz flushes,
exp2_poly clamps to -127 and writes 0), so skipping the tile's two wgmmas and
its softmax changes no bit, provided the running max m already includes the
diagonal's score (ALiBi's key orders start at the diagonal).

Two counts per case, as the fraction of the plain kernel's key tiles (the
causal mask's triangle, or every tile without it):
- `oracle`: tiles whose every exponent, against the row's final max, is below
  the threshold (computed in float64 from the scores): the most any rule
  could skip;
- `norm bound`: tiles that a rule knowing only norms may skip: per query
  block its largest |q|, per head the largest |k| (one read of K), and the
  row max bounded below by the diagonal's score (>= -scale |q_i| |k_i|):
  skip when 2 scale log2(e) max|q| max|k| - slope log2(e) d_min < -127,
  d_min the block's least distance to the tile.

Inputs as bench variants makes them: torch.randn-like normal q and k rounded
to bf16, H = 32, D = 128, the standard slopes; one batch element (the other
elements are the same draw statistically).

    python3 bench/diag/alibi_window_estimate.py [--n 2048 8192] [--block-n 128]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from attention_proto import reference

THRESHOLD = -127.0  # log2 units: exp2 below it is exactly 0 in the kernel
LOG2E = 1.0 / math.log(2.0)


def bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest even), kept as float32."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.view(np.float32)


def head_counts(q, k, slope, causal, block_m, block_n):
    """(tiles the plain kernel runs, oracle skips, norm-bound skips) for one head."""
    n, d = q.shape
    scale = 1.0 / math.sqrt(d)
    qn, kn = np.linalg.norm(q, axis=1), np.linalg.norm(k, axis=1)
    kmax = kn.max()
    total = oracle = bound = 0
    for i0 in range(0, n, block_m):
        rows = np.arange(i0, min(i0 + block_m, n))
        s = (q[rows].astype(np.float64) @ k.T.astype(np.float64)) * scale * LOG2E
        dist = np.abs(rows[:, None] - np.arange(n)[None, :])
        x = s - slope * LOG2E * dist
        if causal:
            x[np.arange(n)[None, :] > rows[:, None]] = -np.inf
        x -= x.max(axis=1, keepdims=True)
        qmax = qn[rows].max()
        for n0 in range(0, n, block_n):
            keys = np.arange(n0, min(n0 + block_n, n))
            if causal and n0 > rows[-1]:
                break
            total += 1
            oracle += bool((x[:, keys] < THRESHOLD).all())
            d_min = (
                0
                if keys[0] <= rows[-1] and rows[0] <= keys[-1]
                else (keys[0] - rows[-1] if keys[0] > rows[-1] else rows[0] - keys[-1])
            )
            reach = 2.0 * scale * LOG2E * qmax * kmax
            bound += bool(reach - slope * LOG2E * d_min < THRESHOLD)
    return total, oracle, bound


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--block-n", type=int, default=128)
    ap.add_argument("--heads", type=int, default=32)
    args = ap.parse_args()
    slopes = reference.alibi_slopes(args.heads)
    rng = np.random.default_rng(0)
    print("skipped, as a fraction of the plain kernel's key tiles:")
    print("n     causal  block    tiles  oracle  norm_bound")
    for n in args.n:
        q = bf16(rng.standard_normal((args.heads, n, 128), dtype=np.float32))
        k = bf16(rng.standard_normal((args.heads, n, 128), dtype=np.float32))
        for causal in (False, True):
            t = o = b = 0
            for h in range(args.heads):
                th, oh, bh = head_counts(q[h], k[h], float(slopes[h]), causal, 128, args.block_n)
                t, o, b = t + th, o + oh, b + bh
            print(f"{n:<5} {causal!s:<7} 128x{args.block_n:<4} {t:<6} {o / t:<7.3f} {b / t:.3f}")


if __name__ == "__main__":
    main()

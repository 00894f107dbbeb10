"""Proto 7 benchmark: what RoPE, ALiBi and GQA cost next to plain attention.

Shapes (the issue's): D = 128, H = 32, bf16, N = 2048 and 8192 at B*N = 16K
tokens, causal and not. Every number is a public call with torch tensors,
timed like the peers (CUDA events around REPEAT calls back to back, so a
call's host work hides under the previous call's GPU work as in a model's
steady state; median of ITERATIONS // REPEAT such batches after warm-up;
until session 11 each call was timed alone after a synchronize, which counted
the variants' extra host work as GPU time: docs/gpu-notes.md, session 11); each
input tensor is 32 MB or more, so L2 does not hold a call's inputs. A variant
and its base are timed in turn, ROUNDS times, each round starting one place
further along (base, variant, ...; variant, ..., base): the percentage is the
median of the rounds' ratios, so a drift of the card's clock between two long
timings does not read as a cost (timed one after the other, the same kernel
pair read -0.5 % and +3.6 % in two runs of session 7), and the rotation keeps
a place in the round from favouring one fn. Each timing follows the other fn's
after PAIRED_WARMUP calls: with 2 the RoPE kernel at N=8K causal read +13.3-13.8
% over the plain one (fixed or rotated order), with 15 +5.5 %, A/A controls
within 2 % (bench/diag/variants_timing.py, session 16).

- base: flash_attention(q, k, v), the public call as dispatched (on sm_90a the
  wgmma kernel at these shapes). ALiBi and RoPE are fused into both flash
  kernels: each cost is given against the public base (what a user pays) and
  against the mma.sync kernel's own base (config= names its tuned tile).
- RoPE standalone: rope(q) + rope(k) (two calls, NeoX pairs), as % of base;
  beside it a plain torch RoPE (the same arithmetic in torch ops) on q and k.
  RoPE fused: flash_attention(q, k, v, rope=(cos, sin)) (k rotated by one
  standalone pass, q by the kernel: one item ahead by the producer's warps
  where the dispatch takes rope_ahead, else before its key loop) against base;
  beside it,
  kernel only, the dispatched ROPE kernel (on sm_90a the wgmma kernel; until
  session 11 the mma.sync kernel) on keys already rotated (as a KV cache holds
  them) against the dispatched plain kernel: the fused rotation's own cost,
  and where the two dispatches differ in grid (8K: the plain call persistent,
  RoPE one CTA per block) that difference too; rope_kernel names the kernel.
- ALiBi fused: flash_attention(..., alibi_slopes="default") against base; the
  peers' own cost of the same bias: SDPA with an additive [1, H, N, N] bias
  tensor against SDPA without one (its default backend each time), and
  FlexAttention with an ALiBi score_mod against Flex without one (N = 2048
  only: every shape and score_mod is a new torch.compile).
- GQA: group sizes 1, 2, 4, 8 and MQA (32 query heads on 32/G kv heads)
  against the same call on K/V expanded to all 32 heads (repeat_interleave).

The catalog's counts of the variants each constant adds are recorded too.
"""

from __future__ import annotations

import functools

from .. import cuda
from ..timing import time_callable
from .callpath import in_turn_order, median_ratio
from .common import environment, run_block, skip_reason, table, write_json

D, H = 128, 32
TOKENS = 16 * 1024
LENGTHS = (2048, 8192)
GROUPS = (1, 2, 4, 8, 32)  # 32: MQA
ITERATIONS = 30
REPEAT = 5  # calls per timed batch
ROUNDS = 6  # a multiple of 2 and 3: each fn holds each place equally often
# Calls of a fn before its timing in a round, after the other fn's: 3 batches
# (15 calls; bench hopper's in-turn rounds warm with 3 batches of 10,
# callpath._gpu_time). Until session 16 it was 2 calls, and the RoPE kernel at
# 8K causal read +11.7-16.1 % over the plain one where 15 calls read +5.5 % and
# in-turn rounds (30 calls) +5.6-8.0 % (bench/diag/variants_timing.py).
PAIRED_WARMUP = 3 * REPEAT


def _batched(fn, iters, warmup):
    """time_callable over about `iters` calls in batches of REPEAT."""
    return time_callable(fn, warmup=warmup, iterations=max(iters // REPEAT, 3), repeat=REPEAT)


def _time(fn, iters):
    s = _batched(fn, iters, warmup=5)
    return s.median_s * 1e3, s.cv


def _paired(fns, iters, rounds=ROUNDS, warmup=PAIRED_WARMUP):
    """fns[0] (the base) and each variant timed in turn, `rounds` times, round
    r starting at fns[r % len(fns)]. Returns [(ms, cv)] per fn (medians over
    the rounds of each round's median and CV) and, per variant, the median over
    rounds of its ratio to the base that round, in % (None for the base).
    `warmup` calls of each fn precede its timing in every round."""
    import statistics

    meds = [[] for _ in fns]
    cvs = [[] for _ in fns]
    for f in fns:
        f()  # warm-up once each, then rounds without a cold first call
    for i in in_turn_order(rounds, len(fns)):
        t = _batched(fns[i], iters, warmup=warmup)
        meds[i].append(t.median_s * 1e3)
        cvs[i].append(t.cv)
    times = [(statistics.median(m), statistics.median(c)) for m, c in zip(meds, cvs, strict=True)]
    pcts = [None] + [(median_ratio(m, meds[0]) - 1) * 100 for m in meds[1:]]
    return times, pcts


def _torch_rope(torch, cos, sin):
    """Rotary embedding in plain torch ops (NeoX pairs), the peer to ours."""

    def run(x):
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half].float(), x[..., half:].float()
        c, s = cos[: x.shape[2]], sin[: x.shape[2]]
        return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).to(x.dtype)

    return run


def _flex(torch, slopes):
    """(plain, with ALiBi score_mod) FlexAttention calls for (q, k, v, causal)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    # Every shape (and score_mod) is a compile of the one flex_attention: past
    # dynamo's recompile limit (8) torch silently runs the unfused fallback,
    # whose numbers would be wrong for Flex. Suites share it in one process.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    compiled = torch.compile(flex_attention, dynamic=False)

    def causal_mod(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx).abs()

    def make(q, k, v, causal, score_mod):
        mask = create_block_mask(causal_mod, None, None, q.shape[2], k.shape[2]) if causal else None
        return lambda: compiled(q, k, v, score_mod=score_mod, block_mask=mask)

    return (
        lambda q, k, v, causal: make(q, k, v, causal, None),
        lambda q, k, v, causal: make(q, k, v, causal, alibi),
    )


def _bias(torch, slopes, n, causal):
    """ALiBi as SDPA's additive bias [1, H, N, N] (bf16), causal part included."""
    i = torch.arange(n, device="cuda")
    dist = (i[:, None] - i[None, :]).abs().float()
    bias = -slopes[:, None, None] * dist
    if causal:
        bias = bias.masked_fill(i[None, :] > i[:, None], float("-inf"))
    return bias.unsqueeze(0).to(torch.bfloat16)


def _counts() -> dict:
    """Kernel variants each constant adds to the catalog (and so the archive)."""
    from ..ops import flash, rope

    return {
        "flash_defaults": len(flash.default_specs()),
        "flash_alibi": len(flash.alibi_specs()),
        "flash_rope": len(flash.rope_specs()),
        "rope_standalone": len(rope.all_specs()),
        "gqa": 0,  # a runtime argument (kv heads), no extra kernel
    }


def _rows(torch, ap, iters):
    from ..ops import flash
    from ..ops.tuning import best_config
    from ..reference import alibi_slopes

    f = torch.nn.functional.scaled_dot_product_attention
    slopes = torch.tensor(alibi_slopes(H), dtype=torch.float32, device="cuda")
    flex_plain, flex_alibi = _flex(torch, slopes)
    cos_np, sin_np = ap.rope_tables(max(LENGTHS), D)
    cos, sin = (torch.from_numpy(x).cuda() for x in (cos_np, sin_np))
    torch_rope = _torch_rope(torch, cos, sin)
    rows, gqa = [], []
    for n in LENGTHS:
        b = TOKENS // n
        q, k, v = (torch.randn(b, H, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            row = {"n": n, "batch": b, "heads": H, "head_dim": D, "causal": causal}
            call = functools.partial(ap.flash_attention, q, k, v, causal=causal)
            mma_sync = functools.partial(call, config=best_config(D, "bfloat16", causal))
            row["base_kernel"] = flash.prepare(q, k, v, causal=causal, allocate=False).reason
            for base, suffix in ((call, ""), (mma_sync, "_mma_sync")):
                times, pcts = _paired(
                    [
                        base,
                        functools.partial(base, alibi_slopes="default"),
                        functools.partial(base, rope=(cos, sin)),
                    ],
                    iters,
                )
                names = ("base", "alibi", "rope_fused")
                for name, (ms, cv), pct in zip(names, times, pcts, strict=True):
                    row[name + suffix + "_ms"], row[name + suffix + "_cv"] = ms, cv
                    if pct is not None:
                        row[name + suffix + "_pct"] = pct
            # The kernel's own share (a diagnostic, kernel only): the ROPE
            # kernel on keys already rotated (as a KV cache holds them) against
            # the plain kernel, both relaunched from a prepared problem.
            plain = flash.prepare(q, k, v, causal=causal)
            fused = flash.prepare(q, k, v, causal=causal, rope=(cos, sin))
            row["rope_kernel"] = fused.reason
            times, pcts = _paired([plain.launch, fused.launch], iters)
            (
                (row["base_kernel_ms"], row["base_kernel_cv"]),
                (
                    row["rope_kernel_ms"],
                    row["rope_kernel_cv"],
                ),
            ) = times
            row["rope_in_kernel_pct"] = pcts[1]
            del plain, fused
            if not causal:  # RoPE does not depend on the mask: once per N
                row["rope_ms"], row["rope_cv"] = _time(
                    lambda q=q, k=k: (ap.rope(q, cos, sin), ap.rope(k, cos, sin)), iters
                )
                row["rope_pct"] = row["rope_ms"] / row["base_ms"] * 100
                row["torch_rope_ms"], row["torch_rope_cv"] = _time(
                    lambda q=q, k=k: (torch_rope(q), torch_rope(k)), iters
                )
            row["sdpa_ms"], row["sdpa_cv"] = _time(
                lambda c=causal, q=q, k=k, v=v: f(q, k, v, is_causal=c), iters
            )
            bias = None
            try:
                bias = _bias(torch, slopes, n, causal)
                row["sdpa_bias_ms"], row["sdpa_bias_cv"] = _time(
                    lambda q=q, k=k, v=v, bias=bias: f(q, k, v, attn_mask=bias), iters
                )
                row["sdpa_bias_pct"] = (row["sdpa_bias_ms"] / row["sdpa_ms"] - 1) * 100
            except RuntimeError as e:  # e.g. out of memory for the N x N bias
                row["sdpa_error"] = str(e).splitlines()[0][:120]
            finally:
                del bias  # ~4 GB at N = 8K: never kept through the later timings
            if n != LENGTHS[0]:  # each shape and score_mod compiles anew (~20 s)
                row["flex_skipped"] = f"Flex measured at N={LENGTHS[0]} only (compile time)"
            else:
                try:
                    row["flex_ms"], row["flex_cv"] = _time(flex_plain(q, k, v, causal), iters)
                    row["flex_alibi_ms"], row["flex_alibi_cv"] = _time(
                        flex_alibi(q, k, v, causal), iters
                    )
                    row["flex_alibi_pct"] = (row["flex_alibi_ms"] / row["flex_ms"] - 1) * 100
                except Exception as e:  # noqa: BLE001 - a compile failure is a result
                    row["flex_error"] = str(e).splitlines()[0][:120]
            rows.append(row)
            print(
                f"N={n} causal={int(causal)}: base {row['base_ms']:.3f} ms, ALiBi "
                f"{row['alibi_pct']:+.1f}%"
                + (f", RoPE q+k {row['rope_pct']:.1f}% of base" if "rope_pct" in row else ""),
                flush=True,
            )
            for g in GROUPS:
                kvh = H // g
                kg, vg = k[:, :kvh].contiguous(), v[:, :kvh].contiguous()
                ke, ve = (x.repeat_interleave(g, dim=1) for x in (kg, vg))
                ((expanded, ecv), (grouped, gcv)), (_, gqa_pct) = _paired(
                    [
                        functools.partial(ap.flash_attention, q, ke, ve, causal=causal),
                        functools.partial(ap.flash_attention, q, kg, vg, causal=causal),
                    ],
                    iters,
                )
                gqa.append(
                    {
                        "n": n,
                        "causal": causal,
                        "group": g,
                        "kv_heads": kvh,
                        "gqa_ms": grouped,
                        "gqa_cv": gcv,
                        "expanded_ms": expanded,
                        "expanded_cv": ecv,
                        "gqa_pct": gqa_pct,
                    }
                )
                del kg, vg, ke, ve
        del q, k, v
        torch.cuda.empty_cache()
    return rows, gqa


ROPE_FUSED_DESIGN = (
    "k rotated by one standalone pass; q in the kernel, by the producer's warps one item "
    "ahead (rope_ahead) where the dispatch takes it, else by the consumers before the key loop"
)


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED variants benchmark: {skip_reason()}")
        return []
    import torch

    import attention_proto as ap

    iters = 10 if getattr(args, "quick", False) else ITERATIONS
    rows, gqa = _rows(torch, ap, iters)
    counts = _counts()
    result = {
        "run": run_block(
            "variants",
            args,
            {
                "rows": iters,
                "gqa": iters,
                "paired_rounds": ROUNDS,
                "paired_order": "rotated per round",
            },
        ),
        "env": env,
        "variant_counts": counts,
        # What rope= did in this run (derivation describes the fused rows by it).
        "rope_fused_design": ROPE_FUSED_DESIGN,
        "rows": rows,
        "gqa": gqa,
    }
    write_json(args, result)
    cols = ["n", "causal", "base_ms", "alibi_pct", "rope_pct", "rope_fused_pct"]
    cols += ["base_mma_sync_ms", "alibi_mma_sync_pct", "rope_fused_mma_sync_pct"]
    cols += ["rope_in_kernel_pct"]
    cols += ["sdpa_bias_pct", "flex_alibi_pct"]
    print(table(rows, cols))
    print(table(gqa, ["n", "causal", "group", "gqa_ms", "expanded_ms", "gqa_pct"]))
    print(f"variants per constant: {counts}")
    return rows + gqa

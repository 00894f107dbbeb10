"""Proto 7 benchmark: what RoPE, ALiBi and GQA cost next to plain attention.

Shapes (the issue's): D = 128, H = 32, bf16, N = 2048 and 8192 at B*N = 16K
tokens, causal and not. Every number is a public call with torch tensors,
timed like the peers: each cost is a pair (or group) of calls timed call by
call in turn (callpath.interleaved: the fns called one after another back to
back, CYCLES times, an event pair on the current stream around every call,
the host ahead of the GPU so a call's host work hides under the previous
call's GPU work as in a model's steady state). The percentage is the median
over cycles of each cycle's ratio to the base, and the times the medians per
call. Each input tensor is 32 MB or more, so L2 does not hold a call's
inputs. Why call by call (session 20, docs/gpu-notes.md): until then each fn
was timed in batches of its own calls, in rounds (the rounds' ratios in turn,
order rotated), and an A/A pair read up to 1 % apart; worse, at 8K causal the
plain call ran 4.6 % slower in its own batches than when it alternated with
ALiBi's, and ALiBi's 1.8 % faster, so ALiBi read +0.5 % in batches and +7.1 %
call by call. Alternating, both run at the same clock (A/A within 0.1 %).

- base: flash_attention(q, k, v), the public call as dispatched (on sm_90a the
  wgmma kernel at these shapes). ALiBi and RoPE are fused into both flash
  kernels: each cost is given against the public base (what a user pays) and
  against the mma.sync kernel's own base (config= names its tuned tile).
- RoPE standalone: rope(q) + rope(k) (two calls, NeoX pairs), as % of base;
  beside it a plain torch RoPE (the same arithmetic in torch ops) on q and k.
  RoPE fused: flash_attention(q, k, v, rope=(cos, sin)) (k rotated by one
  standalone pass, q by the kernel: one item ahead by the producer's warps
  where the dispatch takes rope_ahead, else before its key loop; where that
  measured slower, q by the same pass and then the plain plan, as rope_path
  says: flash.rope_by_passes) against base; beside it,
  kernel only, the dispatched ROPE kernel (on sm_90a the wgmma kernel; until
  session 11 the mma.sync kernel) on keys already rotated (as a KV cache holds
  them) against the dispatched plain kernel: the fused rotation's own cost,
  and where the two dispatches differ in grid (8K: the plain call persistent,
  RoPE one CTA per block) that difference too; rope_kernel names the kernel.
  And rope(k) alone against each row's plain call (rope_k_pct, both masks):
  the pass the fused call runs before its kernel, the other part of its cost.
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
from .callpath import interleaved, median_ratio
from .common import environment, run_block, skip_reason, table, write_json

D, H = 128, 32
TOKENS = 16 * 1024
LENGTHS = (2048, 8192)
GROUPS = (1, 2, 4, 8, 32)  # 32: MQA
CYCLES = 120  # calls of each fn, in turn (callpath.interleaved)


def _paired(fns, cycles):
    """fns[0] (the base) and each variant called in turn, call by call
    (callpath.interleaved). Returns [(ms, cv)] per fn (median per call and the
    calls' CV) and, per variant, the median over cycles of its ratio to the
    base that cycle, in % (None for the base)."""
    import statistics
    import sys

    times = interleaved(sys.modules["torch"], fns, cycles=cycles)
    stats = [(statistics.median(t) * 1e3, statistics.pstdev(t) / statistics.mean(t)) for t in times]
    pcts = [None] + [(median_ratio(t, times[0]) - 1) * 100 for t in times[1:]]
    return stats, pcts


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
    """Kernel variants each constant adds to the catalog (and so the archive):
    the mma.sync kernel's tuned defaults, and (since session 22) the wgmma
    plan's, whose ALiBi kernels bring their window's norms kernels."""
    from ..ops import flash, rope

    return {
        "flash_defaults": len(flash.default_specs()),
        "flash_alibi": len(flash.alibi_specs()),
        "flash_rope": len(flash.rope_specs()),
        "rope_standalone": len(rope.all_specs()),
        "gqa": 0,  # a runtime argument (kv heads), no extra kernel
        "hopper_defaults": len(hopper_plan_specs(alibi=False)),
        "hopper_alibi": len(hopper_plan_specs(alibi=True)),
    }


def hopper_plan_specs(alibi: bool) -> set:
    """The names of the kernels the wgmma plan compiles for every (D, mask,
    key count) entry and dtype, plain or with ALiBi (with its window, the
    attention kernel and its norms kernel)."""
    from ..ops import flash, flash_hopper

    names = set()
    for (d, causal), entries in flash.HOPPER_PLAN.items():
        for keys, _ in entries:
            cfg = flash.hopper_config(d, causal, keys, alibi)
            for dtype in flash_hopper.DTYPES:
                names.add(flash_hopper.spec(d, dtype, causal, cfg, alibi=alibi).name)
                if alibi and cfg.alibi_window:
                    names.add(flash_hopper.norms_spec(d, dtype, causal, cfg).name)
    return names


def _rows(torch, ap, cycles):
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
            row["alibi_kernel"] = flash.prepare(
                q, k, v, causal=causal, alibi_slopes="default", allocate=False
            ).reason
            for base, suffix in ((call, ""), (mma_sync, "_mma_sync")):
                times, pcts = _paired(
                    [
                        base,
                        functools.partial(base, alibi_slopes="default"),
                        functools.partial(base, rope=(cos, sin)),
                    ],
                    cycles,
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
            # What the public rope= call runs here (flash.rope_by_passes).
            by_passes = flash.rope_by_passes(q, k, causal)
            row["rope_path"] = ROPE_PATHS[by_passes]
            times, pcts = _paired([plain.launch, fused.launch], cycles)
            (
                (row["base_kernel_ms"], row["base_kernel_cv"]),
                (
                    row["rope_kernel_ms"],
                    row["rope_kernel_cv"],
                ),
            ) = times
            row["rope_in_kernel_pct"] = pcts[1]
            del plain, fused
            # The fused call's other part alone: rope(k), the standalone pass
            # over k, against this row's plain call (both masks: the pass
            # costs the same, the call it is added to does not).
            ((_, (row["rope_k_ms"], row["rope_k_cv"])), pcts) = _paired(
                [call, lambda k=k: ap.rope(k, cos, sin)], cycles
            )
            row["rope_k_pct"] = 100 + pcts[1]
            if not causal:  # RoPE does not depend on the mask: once per N
                # Each pass in turn with the plain call: its time as % of it.
                (
                    (
                        (_, _),
                        (row["rope_ms"], row["rope_cv"]),
                        (row["torch_rope_ms"], row["torch_rope_cv"]),
                    ),
                    pcts,
                ) = _paired(
                    [
                        call,
                        lambda q=q, k=k: (ap.rope(q, cos, sin), ap.rope(k, cos, sin)),
                        lambda q=q, k=k: (torch_rope(q), torch_rope(k)),
                    ],
                    cycles,
                )
                row["rope_pct"] = 100 + pcts[1]
                row["torch_rope_pct"] = 100 + pcts[2]
            bias = None
            try:
                bias = _bias(torch, slopes, n, causal)
                (
                    (
                        (row["sdpa_ms"], row["sdpa_cv"]),
                        (row["sdpa_bias_ms"], row["sdpa_bias_cv"]),
                    ),
                    (_, row["sdpa_bias_pct"]),
                ) = _paired(
                    [
                        lambda c=causal, q=q, k=k, v=v: f(q, k, v, is_causal=c),
                        lambda q=q, k=k, v=v, bias=bias: f(q, k, v, attn_mask=bias),
                    ],
                    cycles,
                )
            except RuntimeError as e:  # e.g. out of memory for the N x N bias
                row["sdpa_error"] = str(e).splitlines()[0][:120]
            finally:
                del bias  # ~4 GB at N = 8K: never kept through the later timings
            if n != LENGTHS[0]:  # each shape and score_mod compiles anew (~20 s)
                row["flex_skipped"] = f"Flex measured at N={LENGTHS[0]} only (compile time)"
            else:
                try:
                    (
                        (
                            (row["flex_ms"], row["flex_cv"]),
                            (row["flex_alibi_ms"], row["flex_alibi_cv"]),
                        ),
                        (_, row["flex_alibi_pct"]),
                    ) = _paired([flex_plain(q, k, v, causal), flex_alibi(q, k, v, causal)], cycles)
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
                    cycles,
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
    "ahead (rope_ahead) where the dispatch takes it, else by the consumers before the key "
    "loop; since session 21, by the same pass where flash.rope_by_passes says (the row's "
    "rope_path)"
)
# A row's rope_path, by flash.rope_by_passes.
ROPE_PATHS = {
    False: "k by the standalone pass, q in the kernel",
    True: "q and k by the standalone pass, then the plain plan",
}


def run(args) -> list[dict]:
    env = environment()
    if not cuda.is_available():
        print(f"SKIPPED variants benchmark: {skip_reason()}")
        return []
    import torch

    import attention_proto as ap

    cycles = 30 if getattr(args, "quick", False) else CYCLES
    rows, gqa = _rows(torch, ap, cycles)
    counts = _counts()
    result = {
        "run": run_block(
            "variants",
            args,
            {
                "rows": cycles,
                "gqa": cycles,
                "timing": "call by call in turn (callpath.interleaved), ratios per cycle",
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
    cols += ["rope_in_kernel_pct", "rope_k_pct"]
    cols += ["sdpa_bias_pct", "flex_alibi_pct"]
    print(table(rows, cols))
    print(table(gqa, ["n", "causal", "group", "gqa_ms", "expanded_ms", "gqa_pct"]))
    print(f"variants per constant: {counts}")
    return rows + gqa

"""Findings of `bench linear` (Proto 6): the best chunk size per head dim, and
where chunked linear attention overtakes causal softmax attention (our flash
kernel, SDPA cuDNN) and how it compares with flash-linear-attention."""

from __future__ import annotations

from .base import Findings, ratio_cv

PEERS = {"flash": "our causal flash_attention", "sdpa_cudnn": "SDPA cuDNN causal"}


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    n_rows = run.iterations("rows")
    for hd in sorted({r["d"] for r in d["rows"]}):
        rows = sorted((r for r in d["rows"] if r["d"] == hd), key=lambda r: r["t"])
        longest = rows[-1]
        wins: dict[int, int] = {}
        for r in rows:
            wins[r["best_chunk"]] = wins.get(r["best_chunk"], 0) + 1
        chunk = max(sorted(wins), key=lambda c: wins[c])
        lengths = [r["t"] for r in rows]
        f.add(
            f"best-chunk.d{hd}",
            "linear",
            f"Best chunk size for linear_attention, D={hd}",
            f"Chunk {chunk} was fastest at {wins[chunk]} of {len(rows)} lengths "
            f"(T = {lengths[0]}-{lengths[-1]}, B*T = 32K tokens, H = 16, bf16); at T="
            f"{longest['t']} the best ({longest['best_chunk']}) ran {longest['best_ms']:.3f} ms, "
            f"{longest['best_tflops']:.0f} TFLOP/s by the chunked FLOP count.",
            ["chunk", f"d{hd}"],
            metric="best_chunk",
            value=chunk,
            unit="tokens",
            cv=longest["best_cv"],
            n=n_rows,
            config={"d": hd, "lengths": lengths, "wins": {str(c): w for c, w in wins.items()}},
        )
        for peer, name in PEERS.items():
            t = d["crossover"][str(hd)][peer]
            at = next((r for r in rows if r["t"] == t), longest)
            ratio = at[peer + "_ms"] / at["best_ms"]
            where = (
                f"from T = {t} on (every longer T too)"
                if t is not None
                else f"at no T up to {longest['t']}"
            )
            f.add(
                f"crossover.{peer.replace('_', '-')}.d{hd}",
                "linear",
                f"Where linear_attention overtakes {name}, D={hd}",
                f"Chunked linear attention (best chunk) is faster than {name} {where}; at T="
                f"{at['t']} it runs at {ratio:.2f}x its speed ({at['best_ms']:.3f} vs "
                f"{at[peer + '_ms']:.3f} ms), bf16, H = 16, same run.",
                ["crossover", peer, f"d{hd}"],
                metric="speedup_" + peer,
                value=ratio,
                unit="x",
                cv=ratio_cv(at["best_cv"], at.get(peer + "_cv")),
                n=n_rows,
                config={"d": hd, "crossover_t": t, "t": at["t"]},
            )
        if "fla_ms" in longest and longest["fla_ms"] == longest["fla_ms"]:
            ratio = longest["fla_ms"] / longest["best_ms"]
            f.add(
                f"vs-fla.d{hd}",
                "linear",
                f"linear_attention vs flash-linear-attention, D={hd} T={longest['t']}",
                f"Ours (chunk {longest['best_chunk']}) runs at {ratio:.2f}x the speed of fla's "
                f"chunk_linear_attn(normalize=False), bf16, same run.",
                ["peer", "fla", f"d{hd}"],
                metric="speedup_fla",
                value=ratio,
                unit="x",
                cv=ratio_cv(longest["best_cv"], longest.get("fla_cv")),
                n=n_rows,
                config={"d": hd, "t": longest["t"]},
            )
    return f.records

"""Findings of `bench callpath`: what a torch user's call costs.

Mapping to the seed's prototypes: the public flash call against its kernel, host
cost per call and the torch custom ops are framework integration (Proto 8); the
paged public call against SDPA decode, at serving sizes too, answers Proto 3's
viability question through the call users make, so it is filed under paged.
"""

from __future__ import annotations

from .base import Findings, ratio_cv


def derive(run) -> list[dict]:
    f = Findings(run)
    d = run.data
    _flash(f, d["flash"], run.iterations("flash"))
    for label, table in (("decode", "paged"), ("serving", "serving")):
        _paged(f, label, d[table], run.iterations(table))
    shapes = run.get("overhead_shapes")
    _overhead(f, d["overhead"], run.iterations("overhead"), run.get("glue_lines"), shapes)
    return f.records


def _flash(f, rows, n) -> None:
    for r in rows:
        shape = f"d{r['d']}.n{r['n']}.b{r['batch']}" + (".causal" if r["causal"] else "")
        f.add(
            f"public-vs-kernel.{shape}",
            "integration",
            f"flash public call vs its kernel D={r['d']} N={r['n']} B={r['batch']}"
            + (" causal" if r["causal"] else ""),
            f"The public call with torch tensors runs at {r['public_tflops']:.0f} TFLOP/s, "
            f"{r['public_over_kernel']:.3f}x the prepared kernel's {r['kernel_tflops']:.0f}; "
            f"SDPA cuDNN {r.get('sdpa_cudnn_tflops', float('nan')):.0f}, FLASH "
            f"{r.get('sdpa_flash_tflops', float('nan')):.0f} TFLOP/s, timed the same way.",
            ["call path", "flash", "torch"],
            metric="public_over_kernel",
            value=r["public_over_kernel"],
            unit="x",
            cv=ratio_cv(r["public_cv"], r["kernel_cv"]),
            n=n,
            config={k: r[k] for k in ("d", "n", "batch", "heads", "causal")},
        )


def _paged(f, label, rows, n) -> None:
    for r in rows:
        if "x_best_peer" not in r:
            continue
        peer = r["best_peer"]
        f.add(
            f"public-call.{label}.kvh{r['kv_heads']}.ctx{r['context']}.b{r['batch']}",
            "paged",
            f"paged {label}: public call vs SDPA, KVH={r['kv_heads']} ctx={r['context']} "
            f"B={r['batch']}",
            f"The public call takes {r['public_us']:.1f} us ({r['public_tbps']:.2f} TB/s of K/V; "
            f"kernel alone {r['kernel_tbps']:.2f} TB/s); the fastest SDPA backend, {peer}, "
            f"{r['best_peer_us']:.1f} us: ours at {r['x_best_peer']:.2f}x its speed.",
            ["call path", "paged", label, peer],
            metric="x_best_peer",
            value=r["x_best_peer"],
            unit="x",
            # Runs before the peers' CV was recorded leave the ratio's CV unknown.
            cv=ratio_cv(r["public_cv"], r.get(peer + "_cv")),
            n=n,
            config={k: r[k] for k in ("heads", "kv_heads", "context", "batch", "page_size")},
        )


def _overhead(f, rows, n, glue, shapes) -> None:
    by = {r["call"]: r for r in rows}
    direct, op = by["flash public call"], by["flash custom op"]
    # Runs before the ops moved to Library.define + impl named the floor
    # (then an empty @custom_op) differently.
    floor = by.get("empty op, Library path (torch floor)") or by["empty custom op (torch floor)"]
    decorator = by.get("empty op, @custom_op decorator")
    extra = op["host_us"] - direct["host_us"]
    f.add(
        "custom-op-overhead",
        "integration",
        "torch custom op overhead (flash)",
        f"Host cost per call: direct {direct['host_us']:.1f} us, custom op {op['host_us']:.1f} us "
        f"(+{extra:.1f} us); an empty op registered the same way (torch's own floor) costs "
        f"{floor['host_us']:.1f} us"
        + (
            f", an empty @torch.library.custom_op {decorator['host_us']:.1f} us."
            if decorator
            else "."
        ),
        ["proto8", "torch.library", "overhead"],
        metric="custom_op_overhead_us",
        value=extra,
        unit="us",
        cv=ratio_cv(direct["cv"], op["cv"]),
        n=n,
        config=dict(shapes["flash"], floor_us=floor["host_us"]),
    )
    if glue is not None:
        f.add(
            "custom-op-glue",
            "integration",
            "torch custom ops: the glue it takes",
            f"Both ops register with torch.library in {glue} lines of Python (fake impls, "
            f"forward-only: inputs needing grad are refused); opcheck, "
            f"torch.compile(fullgraph=True) and CUDA-graph capture are covered by "
            f"tests/test_torch_ops.py.",
            ["proto8", "torch.library", "viability"],
            metric="glue_lines",
            value=glue,
            unit="lines",
            cv=0.0,  # a count
            n=1,
            config={"file": "python/attention_proto/torch_ops.py"},
        )
    for op_name in ("flash", "paged"):
        r = by[f"{op_name} public call"]
        f.add(
            f"host-cost.{op_name}",
            "integration",
            f"Host cost per public {op_name} call",
            f"{r['host_us']:.1f} us of host time per {op_name}_attention call from Python with "
            f"torch tensors, back to back (prepared relaunch "
            f"{by['flash prepared relaunch']['host_us']:.1f} us, SDPA "
            f"{by['torch SDPA call']['host_us']:.1f} us" + _host_calibration(by) + ").",
            ["call path", "host overhead", op_name],
            metric="host_us",
            value=r["host_us"],
            unit="us",
            cv=r["cv"],
            n=n,
            config=shapes[op_name],
        )


def _host_calibration(by) -> str:
    """What the host itself costs, where the run measured it: torch's output
    allocation and a pure-Python call (rows added in session 6)."""
    parts = []
    if "torch.empty_like" in by:
        parts.append(f"torch.empty_like {by['torch.empty_like']['host_us']:.1f} us")
    noop = by.get("python no-op call (host calibration)")
    if noop:
        parts.append(f"a Python no-op call {noop['host_us'] * 1e3:.0f} ns")
    return "; " + ", ".join(parts) if parts else ""

"""Proto 2: monolithic vs inline vs function-table stitching of the flash
kernel's loop body (score, softmax, accumulate), at the tuned tile.

Cost per indirect call: each warp makes 3 calls per key block in sequence, so the
added time per call on a warp's critical path is
  (t_mode - t_monolithic) / (3 * key blocks per CTA * waves of CTAs).
"""

from __future__ import annotations

import math

from .. import _core, cuda, runtime, sass
from ..ops import flash
from ..timing import summarize
from .common import environment, run_block, skip_reason, table, write_json

SHAPES = ((2048, 128), (8192, 128))  # (N, D); B*N = 16K tokens, H = 2048 / D
ITERATIONS = 100


def _sass_facts(spec):
    arch = cuda.properties()["arch"] if cuda.is_available() else runtime.CPU_ARCH
    r = runtime.compile_for(spec, arch)  # fresh, for its ptxas log
    if runtime.archive_root():
        # The timed runs below then load this binary instead of compiling it again;
        # an archive that refuses it only costs that second compile.
        try:
            _core.BinaryArchive(runtime.archive_root()).store(r.key, r.binary)
        except Exception:  # noqa: BLE001
            pass
    res = sass.resources_from_log(r.log, spec.entry)
    counts = sass.opcode_counts(sass.disassemble(r.binary))
    piece_spills = sum(int(x) for x in _piece_spills(r.log))
    return {
        "registers": res.registers,
        "stack_frame": res.stack_frame_bytes,
        "calls": counts["CALL"],
        "local_ops": counts["LDL"] + counts["STL"],
        "piece_spill_bytes": piece_spills,
    }


def _piece_spills(log):
    import re

    return re.findall(r"(\d+) bytes spill stores", log)[1:]


def run(args) -> list[dict]:
    env = environment()
    facts = {m: _sass_facts(s) for m, s in enumerate(flash.stitch_specs())}
    rows = []
    if not cuda.is_available():
        print(
            table(
                [{"mode": flash.STITCH_MODES[m], **f} for m, f in facts.items()],
                ["mode", "registers", "stack_frame", "calls", "local_ops", "piece_spill_bytes"],
            )
        )
        print(f"SKIPPED GPU timing: {skip_reason()}")
        return rows
    import torch

    props = cuda.properties()
    iters = ITERATIONS
    for n, d in SHAPES:
        b, h = 16384 // n, 2048 // d
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        base = None
        for mode, name in flash.STITCH_MODES.items():
            prep = flash.Prepared(q, k, v, stitch_mode=mode)
            grid, block, smem, packed = prep.launch_args
            stats = summarize(prep.pipeline.benchmark(grid, block, smem, packed, 10, iters))
            ctas = grid[0] * grid[1] * grid[2]
            per_sm = max(prep.pipeline.occupancy(block[0], smem), 1)
            waves = math.ceil(ctas / (props["sm_count"] * per_sm))
            key_blocks = math.ceil(n / prep.config.block_n)
            row = {
                "n": n,
                "d": d,
                "mode": name,
                "ms": stats.median_s * 1e3,
                "cv": stats.cv,
                "config": prep.config.label(),
                **facts[mode],
            }
            if base is None:
                base = stats.median_s
            row["overhead_pct"] = (stats.median_s / base - 1) * 100
            row["ns_per_call"] = (stats.median_s - base) / (3 * key_blocks * waves) * 1e9
            rows.append(row)
    run = run_block("stitching", args, {"rows": iters})
    write_json(args, {"run": run, "env": env, "rows": rows})
    print(
        table(
            rows,
            [
                "n",
                "d",
                "mode",
                "config",
                "ms",
                "cv",
                "overhead_pct",
                "ns_per_call",
                "registers",
                "stack_frame",
                "calls",
                "local_ops",
                "piece_spill_bytes",
            ],
        )
    )
    return rows

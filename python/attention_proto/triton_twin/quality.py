"""The code-quality table: the Triton twin and the hand-written kernel compiled
for the same (D, tile, causal) on sm_90a, both read through nvdisasm. No GPU."""

from __future__ import annotations

import re
import time

from .. import runtime, sass
from ..ops import flash
from . import aot

# Tensor-core and memory-path opcodes worth comparing: mma.sync (HMMA) against
# wgmma (HGMMA), ldmatrix (LDSM), cp.async (LDGSTS) against TMA (UTMALDG), the
# SFU (MUFU: exp2, rcp), and local memory (LDL/STL: spill traffic).
OPCODES = ("HMMA", "HGMMA", "LDSM", "LDGSTS", "UTMALDG", "MUFU", "LDL", "STL")
_INSN = re.compile(r"^\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", re.M)
_LABEL = re.compile(r"^(\.L_x_\d+):\s*$", re.M)
_BRANCH = re.compile(r"^\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?BRA\s+`\((\.L_x_\d+)\)", re.M)


def main_loop_instructions(sass_text: str) -> int:
    """Instructions in the largest backward-branch body: the key loop for both
    kernels (a heuristic; 0 when the SASS has no loop)."""
    addrs = [int(m.group(1), 16) for m in _INSN.finditer(sass_text)]
    labels = {}
    for m in _LABEL.finditer(sass_text):
        nxt = _INSN.search(sass_text, m.end())
        if nxt:
            labels[m.group(1)] = int(nxt.group(1), 16)
    best = 0
    for m in _BRANCH.finditer(sass_text):
        at, target = int(m.group(1), 16), labels.get(m.group(2))
        if target is not None and target <= at:
            best = max(best, sum(1 for a in addrs if target <= a <= at))
    return best


def _row(kernel: str, cubin: bytes, res: sass.Resources, smem: int, compile_s: float, ptx):
    text = sass.disassemble(cubin)
    counts = sass.opcode_counts(text, OPCODES)
    return {
        "kernel": kernel,
        **counts,
        "instructions": len(_INSN.findall(text)),
        "main_loop": main_loop_instructions(text),
        "registers": res.registers,
        "smem_bytes": smem,
        "spill_bytes": res.spill_store_bytes + res.spill_load_bytes,
        "ptx_lines": None if ptx is None else len(ptx.splitlines()),
        "compile_s": round(compile_s, 3),
    }


def compare(head_dim: int, tile: tuple[int, int, int, int], causal: bool, dtype="bfloat16"):
    """Two rows (hand-written, Triton) for one (D, (block_m, block_n, stages, warps), causal)."""
    m, n, s, w = tile
    cfg = flash.FlashConfig(m, n, s, w)
    spec = flash.spec(head_dim, dtype, causal, cfg)
    t0 = time.perf_counter()
    hand = runtime.compile_for(spec, "sm_90a")
    hand_s = time.perf_counter() - t0
    # NVRTC goes straight to a cubin here, so the hand-written kernel has no PTX to count.
    rows = [
        _row(
            "cuda mma.sync",
            hand.binary,
            sass.resources_from_log(hand.log, spec.entry),
            cfg.shared_bytes(head_dim),
            hand_s,
            None,
        )
    ]
    tri = aot.compile_sm90(head_dim, m, n, causal, warps=w, stages=s, dtype=dtype)
    rows.append(_row("triton", tri.cubin, tri.resources, tri.shared_bytes, tri.compile_s, tri.ptx))
    case = {"head_dim": head_dim, "tile": cfg.label(), "causal": bool(causal)}
    return [case | r for r in rows]


COLUMNS = ("head_dim", "tile", "causal", "kernel", *OPCODES, "instructions", "main_loop",
           "registers", "smem_bytes", "spill_bytes", "ptx_lines", "compile_s")  # fmt: skip


def markdown(rows) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join(
        "| " + " | ".join("n/a" if r[c] is None else str(r[c]) for c in COLUMNS) + " |\n"
        for r in rows
    )
    return head + body


def table(cases=None) -> list[dict]:
    """Rows for every (D, tuned tile, causal) of the hand-written tuning table."""
    from .front import table_tile

    cases = cases or [(d, c) for d in flash.HEAD_DIMS for c in (False, True)]
    return [r for d, c in cases for r in compare(d, table_tile(d, c), c)]


if __name__ == "__main__":
    print(markdown(table()))

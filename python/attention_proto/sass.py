"""What a compile produced, read without a GPU: ptxas's resource report from the
NVRTC log, and the SASS of a cubin through nvdisasm."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass

from . import _libs

_USED = re.compile(r"Used (\d+) registers")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_SMEM = re.compile(r"(\d+) bytes smem")


@dataclass(frozen=True)
class Resources:
    registers: int
    stack_frame_bytes: int
    spill_store_bytes: int
    spill_load_bytes: int
    static_shared_bytes: int

    @property
    def spills(self) -> bool:
        return self.spill_store_bytes > 0 or self.spill_load_bytes > 0


def resources_from_log(log: str, entry: str | None = None) -> Resources:
    """The resource report of `entry` (default: the first function reported)."""
    if entry is not None:
        start = log.find(f"Compiling entry function '{entry}'")
        if start < 0:
            raise ValueError(f"[sass] no entry '{entry}' in the compile log")
        nxt = log.find("Compiling entry function", start + 1)
        log = log[start : nxt if nxt > 0 else len(log)]
    used = _USED.search(log)
    spill = _SPILL.search(log)
    smem = _SMEM.search(log)
    if not used or not spill:
        raise ValueError("[sass] no ptxas resource report in the compile log:\n" + log)
    return Resources(
        int(used.group(1)),
        int(spill.group(1)),
        int(spill.group(2)),
        int(spill.group(3)),
        int(smem.group(1)) if smem else 0,
    )


def disassemble(cubin: bytes) -> str:
    tool = _libs.nvdisasm_path()
    if tool is None:
        raise FileNotFoundError(
            "[sass] nvdisasm not found; pip install 'nvidia-cuda-nvdisasm>=13.2'"
        )
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([tool, "-c", f.name], capture_output=True, text=True, check=True)
    return out.stdout


def opcode_counts(sass: str, opcodes=("HMMA", "HGMMA", "LDL", "STL", "CALL", "LDSM", "LDGSTS")):
    """How many instructions of each opcode family appear (e.g. HMMA.16816.F32.BF16 -> HMMA)."""
    counts = dict.fromkeys(opcodes, 0)
    for m in re.finditer(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", sass, re.M):
        op = m.group(1)
        if op in counts:
            counts[op] += 1
    return counts

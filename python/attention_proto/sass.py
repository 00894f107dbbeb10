"""What a compile produced, read without a GPU: ptxas's resource report from the
NVRTC log, and the SASS of a cubin through nvdisasm."""

from __future__ import annotations

import re
import struct
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


# An instruction line of nvdisasm's listing: /*offset*/ [@predicate] OPCODE...;
# the group is the opcode family (HMMA.16816.F32.BF16 -> HMMA).
_OPCODE = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", re.M)


def opcode_counts(sass: str, opcodes=("HMMA", "HGMMA", "LDL", "STL", "CALL", "LDSM", "LDGSTS")):
    """How many instructions of each opcode family appear (e.g. HMMA.16816.F32.BF16 -> HMMA)."""
    counts = dict.fromkeys(opcodes, 0)
    for m in _OPCODE.finditer(sass):
        op = m.group(1)
        if op in counts:
            counts[op] += 1
    return counts


def registers_named(sass: str) -> int:
    """Registers the code names (highest R index + 1). Under setmaxnreg a
    warpgroup may use more than the "Used N registers" entry count ptxas reports."""
    return max((int(x) + 1 for x in re.findall(r"\bR(\d+)\b", sass)), default=0)


def mma_span(sass: str, opcode: str = "HMMA") -> int:
    """Instructions from the first `opcode` to the last, inclusive: in a flash
    kernel, the key loop's body (what a fused variant must not grow)."""
    ops = _OPCODE.findall(sass)
    at = [i for i, op in enumerate(ops) if op == opcode]
    return at[-1] - at[0] + 1 if at else 0


# .nv.info records: (format u8, attribute u8, then 2 bytes of value, or for
# format 4 a u16 size and that many bytes). KPARAM_INFO (0x17) describes one
# kernel parameter: index u32, ordinal u16, offset u16, then a u32 whose bits
# 18-31 hold its size in bytes.
_EIFMT_SVAL = 4
_EIATTR_KPARAM_INFO = 0x17


def parameter_layout(cubin: bytes, entry: str) -> list[tuple[int, int]]:
    """(offset, size) in bytes of each parameter of `entry`, as the compiler
    laid them out, read from the cubin's .nv.info section (no GPU: the driver's
    cuFuncGetParamInfo answers the same on one)."""
    info = _elf_sections(cubin).get(f".nv.info.{entry}")
    if info is None:
        raise ValueError(f"[sass] no .nv.info section for entry '{entry}' in the cubin")
    params, i = {}, 0
    while i + 4 <= len(info):
        fmt, attr = info[i], info[i + 1]
        if fmt == _EIFMT_SVAL:
            (size,) = struct.unpack_from("<H", info, i + 2)
            data, i = info[i + 4 : i + 4 + size], i + 4 + size
        else:
            data, i = info[i + 2 : i + 4], i + 4
        if attr == _EIATTR_KPARAM_INFO:
            _, ordinal, offset, flags = struct.unpack_from("<IHHI", data)
            params[ordinal] = (offset, (flags >> 18) & 0x3FFF)
    return [params[k] for k in sorted(params)]


def _elf_sections(elf: bytes) -> dict[str, bytes]:
    """Section name -> contents of a 64-bit little-endian ELF (a cubin)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise ValueError("[sass] not a 64-bit ELF cubin")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", elf, shoff + n * entsize) for n in range(count)]
    names_at = headers[names_index][4]

    def name(offset: int) -> str:
        start = names_at + offset
        return elf[start : elf.index(b"\0", start)].decode()

    return {name(h[0]): elf[h[4] : h[4] + h[5]] for h in headers}

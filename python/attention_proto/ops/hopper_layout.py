"""Host model of the Hopper wgmma operand layouts (shaders/cuda/wgmma_layout.h
and the accumulator layout documented in shaders/cuda/wgmma.h), written from
the PTX ISA's description rather than from the C++: tests compare the two, and
a GPU probe (wgmma_probe.cu) compares both with the tensor cores."""

from __future__ import annotations

SWIZZLE_128B = 1  # the descriptor's field value (TMA's enum for it is 3)


def sw128_hardware(linear: int) -> int:
    """The 128-byte swizzle on a 1024-byte-aligned address: bits 4..6 ^= bits 7..9."""
    return linear ^ (((linear >> 7) & 7) << 4)


def sw128_offset(rows: int, row: int, chunk: int) -> int:
    """Byte offset of 16-byte chunk `chunk` of row `row` in a sw128 tile: column
    blocks of 64 16-bit elements, each `rows` x 128 bytes, swizzled."""
    block = (chunk // 8) * rows * 128
    return block + sw128_hardware(row * 128 + (chunk % 8) * 16)


def wgmma_descriptor(start: int, lbo: int, sbo: int, swizzle: int = SWIZZLE_128B) -> int:
    """The 64-bit shared-memory matrix descriptor (PTX ISA bit table)."""
    field = lambda v: (v >> 4) & 0x3FFF  # noqa: E731
    return field(start) | field(lbo) << 16 | field(sbo) << 32 | swizzle << 62


def decode_descriptor(desc: int) -> dict:
    return {
        "start": (desc & 0x3FFF) << 4,
        "lbo": ((desc >> 16) & 0x3FFF) << 4,
        "sbo": ((desc >> 32) & 0x3FFF) << 4,
        "base_offset": (desc >> 49) & 7,
        "swizzle": desc >> 62,
    }


def accumulator_position(thread: int, j: int, e: int) -> tuple[int, int]:
    """(row, column) of d[j][e] in thread `thread` (0..127) of an m64nN f32
    accumulator."""
    warp, lane = thread // 32, thread % 32
    return 16 * warp + lane // 4 + 8 * (e // 2), 8 * j + 2 * (lane % 4) + e % 2


def shared_bytes(head_dim: int, block_m: int, block_n: int) -> int:
    """Mirror of flash_wgmma_shared_bytes: Q + 2 stages of K and V + alignment slack."""
    return 2 * head_dim * (block_m + 4 * block_n) + 1024

// Shared-memory layout of Hopper wgmma operands, usable on the host and the
// device (constexpr): the 128-byte swizzle the kernels write tiles with, and
// the 64-bit matrix descriptor wgmma reads them through (PTX ISA, "Matrix
// Descriptor Format" of wgmma.mma_async).
//
// Tile layout ("sw128"): 16-bit elements, a tile of R rows by C columns (C a
// multiple of 64) is stored as C / 64 column blocks of R rows x 128 bytes, each
// block R * 128 bytes, rows 128 bytes apart. Within a block, the 16-byte chunk
// c (0..7) of row r sits at chunk c ^ (r % 8): the hardware's 128-byte swizzle,
// which XORs address bits 4..6 with bits 7..9, provided every block starts
// 1024-byte aligned (the descriptor's base offset is then 0). Eight rows make
// one 1024-byte swizzle atom.
#pragma once

#include "kernel_layouts.h"

namespace ap {

// Byte offset of 16-byte chunk `chunk` (0 .. C/8 - 1) of row `row` in a sw128
// tile of `rows` rows.
AP_HOST_DEVICE constexpr unsigned sw128_offset(unsigned rows, unsigned row, unsigned chunk) {
  return (chunk / 8) * rows * 128u + row * 128u + (((chunk % 8) ^ (row % 8)) << 4);
}

// The hardware's definition, on a 1024-byte-aligned linear address: the
// address a row-major 128-byte-row layout would use, bits 4..6 ^= bits 7..9.
AP_HOST_DEVICE constexpr unsigned sw128_hardware(unsigned linear) {
  return linear ^ (((linear >> 7) & 7u) << 4);
}

// Swizzle-mode field (bits 62..63) of the wgmma descriptor. (TMA's enum for the
// same 128-byte swizzle is 3, not 1: do not share the constant.)
constexpr unsigned long long kWgmmaSwizzle128 = 1;
constexpr unsigned long long kWgmmaSwizzleNone = 0;

// The wgmma matrix descriptor: start address, leading and stride byte offsets
// (each stored >> 4, 14 bits), base offset 0 (tiles are 1024-byte aligned),
// swizzle mode. The start address is a shared-window byte address (< 256 KiB).
AP_HOST_DEVICE constexpr unsigned long long
wgmma_descriptor(unsigned start, unsigned lbo, unsigned sbo, unsigned long long swizzle) {
  return (unsigned long long)((start >> 4) & 0x3fffu) |
         ((unsigned long long)((lbo >> 4) & 0x3fffu) << 16) |
         ((unsigned long long)((sbo >> 4) & 0x3fffu) << 32) | (swizzle << 62);
}

// Operands in sw128 tiles (see each kernel for which matrix is which):
// K-major (the reduction dimension is the 128-byte row): 8 rows (M or N) per
// 1024-byte atom, the next 8 rows SBO = 1024 bytes on; one k16 step is 32
// bytes of a row, so the descriptor for step kk starts at
// (kk / 4) * block + (kk % 4) * 32. LBO is unused with this swizzle (1 by
// convention, any value works).
AP_HOST_DEVICE constexpr unsigned long long kmajor_sw128(unsigned start) {
  return wgmma_descriptor(start, 16, 1024, kWgmmaSwizzle128);
}
AP_HOST_DEVICE constexpr unsigned kmajor_k16_offset(unsigned rows, unsigned kk) {
  return (kk / 4) * rows * 128u + (kk % 4) * 32u;
}

// MN-major (the reduction dimension runs across rows; used for V in P V with
// the transpose bit): a row holds 64 MN elements; 8 rows (8 k values) make a
// 1024-byte atom and the next 8 k values are SBO = 1024 bytes on; the next 64
// MN elements are the next column block, LBO = rows * 128 bytes on. One k16
// step is 16 rows: 2048 bytes.
AP_HOST_DEVICE constexpr unsigned long long mnmajor_sw128(unsigned start, unsigned rows) {
  return wgmma_descriptor(start, rows * 128u, 1024, kWgmmaSwizzle128);
}
AP_HOST_DEVICE constexpr unsigned mnmajor_k16_offset(unsigned kk) {
  return kk * 2048u;
}

} // namespace ap

namespace ap {

// Dynamic shared memory of flash_attention_wgmma: the Q tile and two stages of
// K and V tiles (16-bit elements), plus 1024 bytes so the kernel can round its
// base up to the 1024-byte alignment sw128 tiles need (the dynamic window's
// own alignment is not promised to be that large).
AP_HOST_DEVICE constexpr unsigned flash_wgmma_shared_bytes(int head_dim, int block_m, int block_n) {
  return 2u * head_dim * (block_m + 4 * block_n) + 1024u;
}

} // namespace ap

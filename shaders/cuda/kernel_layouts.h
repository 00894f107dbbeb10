// Host/kernel contracts beyond AttentionParams, defined once: the paged-decode
// argument block and the dynamic shared memory each kernel needs. Kernels
// include this; so does the host (csrc/bindings exports offsets and sizes to
// Python, whose mirrors are checked against them in tests/test_params.py).
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define AP_HOST_DEVICE __host__ __device__
#else
#define AP_HOST_DEVICE
#endif

namespace ap {

typedef unsigned short half_bits; // fp16 or bf16 payload

// PagedAttention V2's second kernel argument (after AttentionParams).
struct PagedArgs {
  const half_bits *q;         //   0 [B, H, D], strides q_stride
  const half_bits *k;         //   8 pages [num_pages, KVH, PAGE_SIZE, D], or [B, KVH, N, D]
  const half_bits *v;         //  16   when CONTIGUOUS
  const int *page_table;      //  24 [B, max_pages], row stride table_stride
  const int *context_lens;    //  32 [B], stride lens_stride
  half_bits *out;             //  40 [B, H, D] contiguous
  float *part_acc;            //  48 [B, H, partitions, D]
  float *part_max;            //  56 [B, H, partitions]
  float *part_sum;            //  64 [B, H, partitions]
  unsigned long long *errors; // 72 the input-error record (input_error_record.h)
  long long kv_stride[3];     //  80 CONTIGUOUS: element strides of [B, KVH, N]
  long long q_stride[2];      // 104 element strides of q's [B, H]
  long long table_stride;     // 120 elements between page-table rows
  long long lens_stride;      // 128 elements between context lengths
  int partitions;             // 136 partitions per sequence (grid.x)
  const float *alibi;         // 144 ALIBI=1: slopes [H] or [B, H], batch stride p.alibi_stride
};

// Dynamic shared memory, in bytes.
// flash_attention: the Q tile plus STAGES K and V tiles, 16-bit elements.
AP_HOST_DEVICE constexpr unsigned flash_shared_bytes(int head_dim, int block_m, int block_n,
                                                     int stages) {
  return 2u * head_dim * (block_m + 2 * stages * block_n);
}
// paged_attention_partition on tensor cores: 16 Q rows + each warp's ring of
// `stages` 16-key K and V tiles (the lanes path uses static shared memory only).
AP_HOST_DEVICE constexpr unsigned paged_mma_shared_bytes(int head_dim, int warps, int stages) {
  return 2u * head_dim * (16 + warps * stages * 2 * 16);
}

} // namespace ap

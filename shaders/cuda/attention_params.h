// Parameters shared by the host and every attention kernel. Plain C types with
// fixed sizes on both sides (LP64 host, NVRTC device); the layout is pinned by
// static_asserts here and by a Python mirror checked against it in a test
// (python/attention_proto/params.py).
#pragma once

#define AP_DTYPE_FLOAT16 0
#define AP_DTYPE_BFLOAT16 1
#define AP_DTYPE_FLOAT32 2

// Bits 2 and 4 were ALiBi and RoPE flags: those are specialization constants
// now (ALIBI in flash_attention.cu), so a kernel built without one pays nothing.
#define AP_FLAG_CAUSAL 1
#define AP_FLAG_RETURN_LSE 8

// 64 bytes: every prototype's scalars. Sequence lengths and shapes are runtime
// values, never specialization constants, so one binary serves every shape.
struct AttentionParams {
  int batch;          //  0
  int heads;          //  4  query heads
  int kv_heads;       //  8  key/value heads (GQA: heads % kv_heads == 0)
  int seqlen_q;       // 12
  int seqlen_k;       // 16  max context for paged decode
  int head_dim;       // 20  checked against the HEAD_DIM constant
  float scale;        // 24  softmax scale applied to q.k
  int flags;          // 28  AP_FLAG_*
  int page_size;      // 32  paged KV: tokens per page
  int max_pages;      // 36  paged KV: columns of the page table
  int num_pages;      // 40  paged KV: pages in the pool (bounds of page ids)
  int chunk_size;     // 44  chunked linear attention
  int partition_size; // 48  split-KV decode: keys per partition
  int rope_table_row; // 52  ROPE: floats between rows of the cos/sin tables
  int alibi_stride;   // 56  ALiBi slopes between batches: 0 ([H] slopes) or H ([B, H])
  int variant;        // 60  runtime piece selector (Proto 2 function tables); 0 by default
};

// Element strides (not bytes) of [batch, head, row] for q, k, v and o; the last
// dimension is contiguous. 64-bit so that B*H*N*D may exceed 2^31.
struct AttentionStrides {
  long long q[3];
  long long k[3];
  long long v[3];
  long long o[3];
};

#define AP_OFFSET_OF(type, field) ((unsigned long)&(((type *)0)->field))
static_assert(sizeof(AttentionParams) == 64, "AttentionParams must be 64 bytes");
static_assert(sizeof(AttentionStrides) == 96, "AttentionStrides must be 96 bytes");
static_assert(sizeof(long long) == 8 && sizeof(int) == 4 && sizeof(float) == 4,
              "fixed-size scalars");

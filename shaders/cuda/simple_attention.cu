// The simplest correct attention: one thread per query row, online softmax over
// every key, keys and values read straight from global memory. It exists to
// prove the whole path (compile, cache, archive, dispatch, read back) against
// the FP64 reference; speed is flash_attention.cu's job.
//
// Constants: HEAD_DIM, DTYPE (AP_DTYPE_*), ROWS_PER_BLOCK.
// Grid: (ceil(seqlen_q / ROWS_PER_BLOCK), heads, batch). Causal masks align
// bottom-right: query i sees keys j <= i + seqlen_k - seqlen_q (FlashAttention 2).
// A row that sees no key writes zeros and lse = -inf; a row with a NaN or +inf
// score among its visible keys writes NaN and lse = NaN.
#include "attention_params.h"
#include "numeric.h"

using namespace ap;
typedef Storage<DTYPE> S;
typedef S::type T;

extern "C" __global__ void __launch_bounds__(ROWS_PER_BLOCK)
    simple_attention(const AttentionParams p, const AttentionStrides st, const T *__restrict__ q,
                     const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ o,
                     float *__restrict__ lse) {
  const int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  if (row >= p.seqlen_q) return;
  const int kv_head = head / (p.heads / p.kv_heads);

  const T *q_row = q + batch * st.q[0] + head * st.q[1] + row * st.q[2];
  const T *k_base = k + batch * st.k[0] + kv_head * st.k[1];
  const T *v_base = v + batch * st.v[0] + kv_head * st.v[1];

  // The scaled query row lives in shared memory (padded against bank
  // conflicts): with the accumulator it would need 2*HEAD_DIM registers and
  // spill at HEAD_DIM = 128.
  __shared__ float q_tile[ROWS_PER_BLOCK][HEAD_DIM + 1];
  float *qf = q_tile[threadIdx.x];
  for (int d = 0; d < HEAD_DIM; ++d)
    qf[d] = S::load(q_row[d]) * p.scale;

  int visible = p.seqlen_k;
  if (p.flags & AP_FLAG_CAUSAL) {
    long long last = (long long)row + p.seqlen_k - p.seqlen_q; // inclusive
    visible = last < 0 ? 0 : (last + 1 < p.seqlen_k ? (int)(last + 1) : p.seqlen_k);
  }

  float acc[HEAD_DIM];
  for (int d = 0; d < HEAD_DIM; ++d)
    acc[d] = 0.f;
  float running_max = AP_NEG_INF, running_sum = 0.f;
  for (int j = 0; j < visible; ++j) {
    const T *k_row = k_base + j * st.k[2];
    float s = 0.f;
    for (int d = 0; d < HEAD_DIM; ++d)
      s += qf[d] * S::load(k_row[d]);
    // fmaxf drops a NaN score, but exp(NaN - max) puts it into the sum. While
    // every score so far is -inf, subtract 0: -inf - -inf would be NaN.
    const float new_max = fmaxf(running_max, s);
    const float base = new_max == AP_NEG_INF ? 0.f : new_max;
    const float correction = __expf(running_max - base);
    const float w = __expf(s - base);
    running_sum = running_sum * correction + w;
    const T *v_row = v_base + j * st.v[2];
    for (int d = 0; d < HEAD_DIM; ++d)
      acc[d] = acc[d] * correction + w * S::load(v_row[d]);
    running_max = new_max;
  }

  // Sum 0: no visible key, or only -inf scores. A NaN or +inf score made the
  // sum NaN (exp(+inf - +inf)), so output and lse come out NaN.
  T *o_row = o + batch * st.o[0] + head * st.o[1] + row * st.o[2];
  const bool empty = running_sum == 0.f;
  const float inv = empty ? 0.f : 1.f / running_sum;
  for (int d = 0; d < HEAD_DIM; ++d)
    o_row[d] = S::store(acc[d] * inv);
  if (p.flags & AP_FLAG_RETURN_LSE) {
    const long long lse_index = ((long long)batch * p.heads + head) * p.seqlen_q + row;
    lse[lse_index] = empty ? AP_NEG_INF : running_max + __logf(running_sum);
  }
}

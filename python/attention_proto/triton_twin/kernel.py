"""The Triton twin of shaders/cuda/flash_attention.cu: FlashAttention-2 forward,
online softmax in base 2, one program per (query block, batch * head).

Imports triton at module level on purpose: only attention_proto.triton_twin
imports this module, and only once triton is known to be importable.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


@triton.jit
def _key_block(
    q,
    acc,
    m_i,
    l_i,
    k_ptrs,
    v_ptrs,
    start_n,
    rows,
    seqlen_k,
    diag,
    qk_scale_log2,
    skn,
    svn,
    BLOCK_N: tl.constexpr,
    MASKED: tl.constexpr,
    CAUSAL: tl.constexpr,
):
    # One step of the online softmax over keys [start_n, start_n + BLOCK_N).
    # MASKED is a constexpr so the interior blocks compile without any compare.
    cols = start_n + tl.arange(0, BLOCK_N)
    if MASKED:
        kv_ok = cols < seqlen_k
        k = tl.load(k_ptrs + start_n * skn, mask=kv_ok[:, None], other=0.0)
    else:
        k = tl.load(k_ptrs + start_n * skn)
    s = tl.dot(q, tl.trans(k)) * qk_scale_log2
    if MASKED:
        visible = kv_ok[None, :]
        if CAUSAL:
            # Bottom-right alignment: query i sees keys j <= i + Nk - Nq.
            visible = visible & (cols[None, :] <= rows[:, None] + diag)
        s = tl.where(visible, s, float("-inf"))
    # NaN must win the max so that a NaN score poisons its row, as in the CUDA kernel.
    m_new = tl.maximum(m_i, tl.max(s, 1), propagate_nan=tl.PropagateNan.ALL)
    # A row with no visible key so far keeps m = -inf; subtract 0 instead so that
    # exp2(-inf - -inf) never makes a NaN out of an empty row.
    m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(s - m_sub[:, None])
    alpha = tl.math.exp2(m_i - m_sub)
    l_i = l_i * alpha + tl.sum(p, 1)
    if MASKED:
        v = tl.load(v_ptrs + start_n * svn, mask=kv_ok[:, None], other=0.0)
    else:
        v = tl.load(v_ptrs + start_n * svn)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def flash_fwd(
    Q,
    K,
    V,
    Out,
    Lse,
    sqb,
    sqh,
    sqm,
    skb,
    skh,
    skn,
    svb,
    svh,
    svn,
    sob,
    soh,
    som,
    heads,
    group,
    seqlen_q,
    seqlen_k,
    qk_scale_log2,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr,
    WRITE_LSE: tl.constexpr,
):
    """q [B, H, Nq, D], k/v [B, H / group, Nk, D], last dimension contiguous;
    grid (ceil(Nq / BLOCK_M), B * H). qk_scale_log2 = scale * log2(e)."""
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // heads).to(tl.int64)
    h = bh % heads
    kvh = (h // group).to(tl.int64)  # GQA: `group` query heads share one K/V head
    h = h.to(tl.int64)

    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, HEAD_DIM)
    keys = tl.arange(0, BLOCK_N)
    q_ptrs = Q + b * sqb + h * sqh + rows[:, None] * sqm + dims[None, :]
    k_ptrs = K + b * skb + kvh * skh + keys[:, None] * skn + dims[None, :]
    v_ptrs = V + b * svb + kvh * svh + keys[:, None] * svn + dims[None, :]
    row_ok = rows < seqlen_q
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)

    diag = seqlen_k - seqlen_q
    if CAUSAL:
        # Keys past the tile's last row's limit are never visible; keys up to the
        # first row's limit are visible to every row (no mask needed).
        hi = tl.minimum(seqlen_k, (start_m + 1) * BLOCK_M + diag)
        full = tl.minimum(hi, start_m * BLOCK_M + diag + 1)
    else:
        hi = seqlen_k
        full = seqlen_k
    hi = tl.maximum(hi, 0)
    full = tl.maximum(full, 0) // BLOCK_N * BLOCK_N

    for start_n in range(0, full, BLOCK_N):
        acc, m_i, l_i = _key_block(
            q,
            acc,
            m_i,
            l_i,
            k_ptrs,
            v_ptrs,
            start_n,
            rows,
            seqlen_k,
            diag,
            qk_scale_log2,
            skn,
            svn,
            BLOCK_N,
            False,
            CAUSAL,
        )
    for start_n in range(full, hi, BLOCK_N):
        acc, m_i, l_i = _key_block(
            q,
            acc,
            m_i,
            l_i,
            k_ptrs,
            v_ptrs,
            start_n,
            rows,
            seqlen_k,
            diag,
            qk_scale_log2,
            skn,
            svn,
            BLOCK_N,
            True,
            CAUSAL,
        )

    # A row that saw no key has l = 0: it returns 0 (and lse = -inf); a NaN row stays NaN.
    o = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    o_ptrs = Out + b * sob + h * soh + rows[:, None] * som + dims[None, :]
    tl.store(o_ptrs, o.to(Out.dtype.element_ty), mask=row_ok[:, None])
    if WRITE_LSE:
        lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # back from base 2
        tl.store(Lse + bh.to(tl.int64) * seqlen_q + rows, lse, mask=row_ok)

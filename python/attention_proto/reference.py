"""FP64 NumPy references. Inputs of any float dtype are upcast to float64; the
results come back as float32 (outputs) so they can be compared with kernels.

Layout [batch, heads, seqlen, head_dim]. Causal masks align bottom-right as in
FlashAttention 2: with Nq queries and Nk keys, query i sees keys
j <= i + (Nk - Nq). When Nq > Nk the first Nq - Nk queries see no key: their
output is 0 and their log-sum-exp is -inf (so is a row whose every visible score
is -inf). A NaN or +inf among a row's visible scores (NaN or Inf in q or k) makes
its output and log-sum-exp NaN, as safe softmax gives: exp(s - max) is
exp(+inf - +inf) = NaN. A NaN is never reported as "no keys".
"""

from __future__ import annotations

import numpy as np


def _f64(x) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def causal_mask(nq: int, nk: int) -> np.ndarray:
    """True where query i may attend key j (bottom-right aligned)."""
    i = np.arange(nq)[:, None]
    j = np.arange(nk)[None, :]
    return j <= i + (nk - nq)


def repeat_kv(x: np.ndarray, heads: int) -> np.ndarray:
    """Expand [B, KVH, N, D] to [B, heads, N, D] (GQA as MHA)."""
    kvh = x.shape[1]
    if heads % kvh:
        raise ValueError(f"[reference] heads ({heads}) must be a multiple of kv heads ({kvh})")
    return np.repeat(x, heads // kvh, axis=1)


def alibi_slopes(heads: int) -> np.ndarray:
    """ALiBi slopes as the paper's code makes them: 2^(-8(h+1)/H) for h = 0..H-1
    when H is a power of 2; otherwise those of the power of 2 below H, then every
    other slope of twice that power (BLOOM, FlashAttention users, vLLM)."""

    def geometric(n):
        return 2.0 ** (-8.0 * (np.arange(n) + 1) / n)

    low = 1 << (heads.bit_length() - 1)
    if low == heads:
        return geometric(heads)
    return np.concatenate([geometric(low), geometric(2 * low)[0::2][: heads - low]])


def alibi_bias(heads: int, nq: int, nk: int, *, slopes=None, symmetric=False) -> np.ndarray:
    """[H, Nq, Nk] bias slope_h * (j - i'), where i' = i + Nk - Nq aligns the ends
    (the causal form); `symmetric`: -slope_h * |j - i'|, what the kernels add
    (equal to the causal form on every key a causal row sees). `slopes` [H] or
    [B, H] replaces alibi_slopes(heads) (the bias is then [B, H, Nq, Nk])."""
    i = np.arange(nq)[:, None] + (nk - nq)
    j = np.arange(nk)[None, :]
    dist = (j - i).astype(np.float64)
    if symmetric:
        dist = -np.abs(dist)
    slopes = alibi_slopes(heads) if slopes is None else _f64(slopes)
    return slopes[..., None, None] * dist


def attention(q, k, v, *, causal=False, scale=None, bias=None, return_lse=False):
    """Safe-softmax attention in float64. k, v may have fewer heads (GQA)."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    heads, d = q.shape[1], q.shape[3]
    k, v = repeat_kv(k, heads), repeat_kv(v, heads)
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    with np.errstate(invalid="ignore"):  # inf - inf, 0 * inf: NaN on purpose
        s = np.einsum("bhid,bhjd->bhij", q, k) * scale
        if bias is not None:
            s = s + bias
        nq, nk = s.shape[-2], s.shape[-1]
        if causal:
            s = np.where(causal_mask(nq, nk), s, -np.inf)
        m = s.max(axis=-1, keepdims=True)  # NaN if any score is NaN
        # Only -inf means "no key": isfinite would also take NaN and +inf for it.
        empty = m == -np.inf
        m = np.where(empty, 0.0, m)
        p = np.exp(s - m)
        denom = p.sum(axis=-1, keepdims=True)
        out = np.einsum("bhij,bhjd->bhid", p, v) / np.where(empty, 1.0, denom)
        out = np.where(empty, 0.0, out).astype(np.float32)
        if not return_lse:
            return out
        lse = np.where(empty[..., 0], -np.inf, (m + np.log(np.where(empty, 1.0, denom)))[..., 0])
    return out, lse.astype(np.float32)


def rope_tables(positions, head_dim: int, *, theta: float = 10000.0):
    """(cos, sin) [len(positions), head_dim / 2] in float64: pair i of a token at
    position p turns by p * theta^(-2i / head_dim)."""
    pos = _f64(positions)
    freqs = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = pos[:, None] * freqs[None, :]
    return np.cos(angle), np.sin(angle)


def rope(x, *, theta=10000.0, positions=None, offset=0, interleaved=False, cos=None, sin=None):
    """Rotary embedding on [B, H, N, D]. Pair i is (x[i], x[i + D/2]) (GPT-NeoX,
    the default) or, with `interleaved`, (x[2i], x[2i + 1]) (GPT-J); it turns by
    the angle of its token's position: `positions` [N], else offset + n.
    `cos`/`sin` tables [>= offset + N, D/2] replace the angles from `theta`
    (rows offset .. offset + N - 1 are used)."""
    x = _f64(x)
    n, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError(f"[reference] rope needs an even head_dim, got {d}")
    if cos is None:
        pos = np.arange(n, dtype=np.float64) + offset if positions is None else _f64(positions)
        cos, sin = rope_tables(pos, d, theta=theta)
    else:
        cos, sin = _f64(cos)[offset : offset + n], _f64(sin)[offset : offset + n]
    if interleaved:
        x0, x1 = x[..., 0::2], x[..., 1::2]
    else:
        x0, x1 = x[..., : d // 2], x[..., d // 2 :]
    r0, r1 = x0 * cos - x1 * sin, x0 * sin + x1 * cos
    out = np.empty_like(x)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = r0, r1
    else:
        out[..., : d // 2], out[..., d // 2 :] = r0, r1
    return out.astype(np.float32)


def paged_gather(pages, page_table, context_lens) -> list[np.ndarray]:
    """Contiguous [KVH, len, D] K (or V) per sequence from a page pool.

    pages: [num_pages, KVH, page_size, D]; page_table: [B, max_pages] int32.
    """
    pages = _f64(pages)
    page_size = pages.shape[2]
    out = []
    for b, n in enumerate(context_lens):
        used = -(-int(n) // page_size)
        ids = np.asarray(page_table[b, :used])
        if ids.size and (ids.min() < 0 or ids.max() >= pages.shape[0]):
            raise ValueError(f"[reference] page id out of range in row {b}")
        seq = np.concatenate([pages[i] for i in ids], axis=1) if used else pages[:0, :, :0]
        out.append(seq[:, : int(n)])
    return out


def paged_decode(q, k_pages, v_pages, page_table, context_lens, *, scale=None, alibi_slopes=None):
    """Decode attention (one query per sequence) over a paged KV cache.

    q: [B, H, D]; returns [B, H, D] float32. `alibi_slopes` ([H] or [B, H]) adds
    -slope * (len - 1 - j) to the scaled score of key j: the query is the
    sequence's last position.
    """
    q = _f64(q)
    ks = paged_gather(k_pages, page_table, context_lens)
    vs = paged_gather(v_pages, page_table, context_lens)
    out = np.zeros(q.shape, dtype=np.float64)
    slopes = None if alibi_slopes is None else _f64(alibi_slopes)
    for b in range(q.shape[0]):
        bias = None
        if slopes is not None:
            n = ks[b].shape[1]
            s = slopes[b] if slopes.ndim == 2 else slopes
            bias = -s[:, None, None] * (n - 1 - np.arange(n, dtype=np.float64))[None, None, :]
            bias = bias[None]  # [1, H, 1, N]
        o = attention(q[b][None, :, None, :], ks[b][None], vs[b][None], scale=scale, bias=bias)
        out[b] = o[0, :, 0, :]
    return out.astype(np.float32)


def linear_attention_recurrent(q, k, v) -> np.ndarray:
    """Causal linear attention o_t = q_t · S_t with S_t = sum_{s<=t} k_s v_s^T (no feature map)."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    b, h, n, d = q.shape
    state = np.zeros((b, h, d, v.shape[-1]))
    out = np.empty((b, h, n, v.shape[-1]))
    for t in range(n):
        state += np.einsum("bhd,bhe->bhde", k[:, :, t], v[:, :, t])
        out[:, :, t] = np.einsum("bhd,bhde->bhe", q[:, :, t], state)
    return out.astype(np.float32)


def linear_attention_chunked(q, k, v, chunk_size: int) -> np.ndarray:
    """The same function computed chunk by chunk: intra-chunk causal products plus
    the state carried from earlier chunks (the form chunked kernels use)."""
    if chunk_size < 1:
        raise ValueError(f"[reference] chunk_size must be >= 1, got {chunk_size}")
    q, k, v = _f64(q), _f64(k), _f64(v)
    b, h, n, d = q.shape
    e = v.shape[-1]
    state = np.zeros((b, h, d, e))
    out = np.empty((b, h, n, e))
    for start in range(0, n, chunk_size):
        end = min(n, start + chunk_size)
        qc, kc, vc = q[:, :, start:end], k[:, :, start:end], v[:, :, start:end]
        mask = np.tril(np.ones((end - start, end - start)))
        intra = np.einsum("bhid,bhjd->bhij", qc, kc) * mask
        out[:, :, start:end] = np.einsum("bhij,bhje->bhie", intra, vc) + np.einsum(
            "bhid,bhde->bhie", qc, state
        )
        state += np.einsum("bhjd,bhje->bhde", kc, vc)
    return out.astype(np.float32)

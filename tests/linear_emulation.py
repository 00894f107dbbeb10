"""A fragment-level NumPy emulation of the two linear-attention kernels'
addressing (no GPU runs this): swizzled shared-memory tiles, ldmatrix (plain
and .trans) and mma.sync m16n8k16 as the PTX ISA defines their fragments, and
the kernels' index expressions transcribed line by line. Values stay float64
and nothing is rounded, so the result must equal the FP64 reference to
rounding noise: what this checks is which element goes where, not precision
(linear_tolerance.py is about precision). Keep it in step with
shaders/cuda/linear_attention_chunk_{h,o}.cu.
"""

from __future__ import annotations

import numpy as np

LANES = np.arange(32)
G, TQ, MI = LANES >> 2, LANES & 3, LANES >> 3


def swizzled(row_bytes, row, chunk):
    return row * row_bytes + ((chunk ^ (row & 7)) << 4)


class Smem:
    """Dynamic shared memory as 16-bit slots (NaN until written)."""

    def __init__(self, nbytes):
        self.m = np.full(nbytes // 2, np.nan)

    def load_rows(self, tile, src, row0, rows_valid, rows, cols):
        """linear_load_rows: rows past rows_valid become zeros."""
        for r in range(rows):
            for c in range(cols // 8):
                at = (tile + swizzled(cols * 2, r, c)) // 2
                ok = row0 + r < rows_valid
                self.m[at : at + 8] = src[row0 + r, c * 8 : c * 8 + 8] if ok else 0.0

    def ldmatrix_x4(self, addresses, trans=False):
        """(32 lanes, 4 registers, 2 halves); lanes 8i..8i+7 address matrix i's rows."""
        a = np.asarray(addresses) // 2
        out = np.empty((32, 4, 2))
        for i in range(4):
            if trans:  # lane (g, t) gets column g of rows 2t, 2t + 1
                out[:, i, 0] = self.m[a[8 * i + 2 * TQ] + G]
                out[:, i, 1] = self.m[a[8 * i + 2 * TQ + 1] + G]
            else:  # lane (g, t) gets row g, columns 2t, 2t + 1
                out[:, i, 0] = self.m[a[8 * i + G] + 2 * TQ]
                out[:, i, 1] = self.m[a[8 * i + G] + 2 * TQ + 1]
        return out


def mma(c, a, b0, b1):
    """c (32, 4) += A (16x16 from a (32, 4, 2)) @ B (16x8 from b0, b1 (32, 2))."""
    A, B = np.zeros((16, 16)), np.zeros((16, 8))
    for h in range(2):
        A[G, 2 * TQ + h] = a[:, 0, h]
        A[G + 8, 2 * TQ + h] = a[:, 1, h]
        A[G, 2 * TQ + 8 + h] = a[:, 2, h]
        A[G + 8, 2 * TQ + 8 + h] = a[:, 3, h]
        B[2 * TQ + h, G] = b0[:, h]
        B[2 * TQ + 8 + h, G] = b1[:, h]
    C = A @ B
    for h in range(2):
        c[:, h] += C[G, 2 * TQ + h]
        c[:, 2 + h] += C[G + 8, 2 * TQ + h]


def chunk_h(k, v, d, chunk, h0=None):
    """One (batch, head): (h [chunks, D, D], final state) as chunk_h writes them:
    one CTA per (64-column block, 64-row block) of the state."""
    n = k.shape[0]
    chunks = -(-n // chunk)
    mt_n, nt = 1, 8  # 64 state rows per CTA over 4 warps; 64 columns
    h = np.full((chunks, d, d), np.nan)
    final = np.full((d, d), np.nan)
    ktile, vtile = chunk * 128, chunk * 128
    for key0 in range(0, d, 64):
        kb = k[:, key0 : key0 + 64]  # the K columns (key dims) this CTA loads
        for col0 in range(0, d, 64):
            sm = Smem(2 * ktile + 2 * vtile)
            k_tiles, v_tiles = 0, 2 * ktile
            s = {}
            for warp in range(4):
                row0 = warp * 16 * mt_n
                for mt in range(mt_n):
                    for j in range(nt):
                        acc = np.zeros((32, 4))
                        for e in (0, 2):
                            rows = key0 + row0 + mt * 16 + G + 4 * e
                            cols = col0 + j * 8 + 2 * TQ
                            if h0 is not None:
                                acc[:, e], acc[:, e + 1] = h0[rows, cols], h0[rows, cols + 1]
                        s[warp, mt, j] = acc
            sm.load_rows(k_tiles, kb, 0, n, chunk, 64)
            sm.load_rows(v_tiles, v[:, col0 : col0 + 64], 0, n, chunk, 64)
            for c in range(chunks):
                for (warp, mt, j), acc in s.items():
                    row0 = warp * 16 * mt_n
                    for e in (0, 2):
                        rows = key0 + row0 + mt * 16 + G + 4 * e
                        cols = col0 + j * 8 + 2 * TQ
                        h[c, rows, cols], h[c, rows, cols + 1] = acc[:, e], acc[:, e + 1]
                stage = c & 1
                if c + 1 < chunks:
                    nxt = (c + 1) * chunk
                    sm.load_rows(k_tiles + (stage ^ 1) * ktile, kb, nxt, n, chunk, 64)
                    sm.load_rows(
                        v_tiles + (stage ^ 1) * vtile, v[:, col0 : col0 + 64], nxt, n, chunk, 64
                    )
                k_tile, v_tile = k_tiles + stage * ktile, v_tiles + stage * vtile
                for warp in range(4):
                    row0 = warp * 16 * mt_n
                    for kk in range(chunk // 16):
                        a = {}
                        for mt in range(mt_n):
                            tok = kk * 16 + (MI >> 1) * 8 + (LANES & 7)
                            a[mt] = sm.ldmatrix_x4(
                                k_tile + swizzled(128, tok, (row0 + mt * 16) // 8 + (MI & 1)), True
                            )
                        for j in range(0, nt, 2):
                            tok = kk * 16 + (MI & 1) * 8 + (LANES & 7)
                            b = sm.ldmatrix_x4(v_tile + swizzled(128, tok, j + (MI >> 1)), True)
                            for mt in range(mt_n):
                                mma(s[warp, mt, j], a[mt], b[:, 0], b[:, 1])
                                mma(s[warp, mt, j + 1], a[mt], b[:, 2], b[:, 3])
            for (warp, mt, j), acc in s.items():
                row0 = warp * 16 * mt_n
                for e in (0, 2):
                    rows = key0 + row0 + mt * 16 + G + 4 * e
                    cols = col0 + j * 8 + 2 * TQ
                    final[rows, cols], final[rows, cols + 1] = acc[:, e], acc[:, e + 1]
    return h, final


def chunk_o(q, k, v, h, d, chunk, scale=1.0):
    """One (batch, head): the output chunk_o writes, from chunk_h's h."""
    n = q.shape[0]
    chunks = -(-n // chunk)
    states = 64 // chunk if chunk < 64 else 1
    row_bytes, tile_bytes, state_bytes = d * 2, 64 * d * 2, d * d * 2
    out = np.full((n, d), np.nan)
    for m0 in range(0, n, 64):
        sm = Smem(64 * row_bytes + 4 * tile_bytes + states * state_bytes)
        q_tile = 0
        k_tiles = q_tile + 64 * row_bytes
        v_tiles = k_tiles + 2 * tile_bytes
        h_tiles = v_tiles + 2 * tile_bytes
        first = m0 // chunk
        n_begin, n_end = first * chunk // 64, m0 // 64 + 1
        sm.load_rows(q_tile, q, m0, n, 64, d)
        for i in range(states):
            c = first + i
            sm.load_rows(
                h_tiles + i * state_bytes, h[min(c, chunks - 1)], 0, d if c < chunks else 0, d, d
            )
        sm.load_rows(k_tiles, k, n_begin * 64, n, 64, d)
        sm.load_rows(v_tiles, v, n_begin * 64, n, 64, d)
        o_acc = {w: np.zeros((d // 8, 32, 4)) for w in range(4)}
        q_frag = {}
        for nb in range(n_begin, n_end):
            stage = (nb - n_begin) & 1
            for w in range(4):
                if nb == n_begin:
                    key_lo = (m0 + w * 16) // chunk * chunk
                    h_tile = (
                        h_tiles + ((key_lo // chunk - first) if states > 1 else 0) * state_bytes
                    )
                    q_frag[w] = [
                        sm.ldmatrix_x4(
                            q_tile
                            + swizzled(row_bytes, w * 16 + (LANES & 15), 2 * kk + (LANES >> 4))
                        )
                        for kk in range(d // 16)
                    ]
                    for kk in range(d // 16):
                        for dj in range(0, d // 8, 2):
                            tok = kk * 16 + (MI & 1) * 8 + (LANES & 7)
                            b = sm.ldmatrix_x4(
                                h_tile + swizzled(row_bytes, tok, dj + (MI >> 1)), True
                            )
                            mma(o_acc[w][dj], q_frag[w][kk], b[:, 0], b[:, 1])
                            mma(o_acc[w][dj + 1], q_frag[w][kk], b[:, 2], b[:, 3])
            if nb + 1 < n_end:
                nxt = (nb + 1) * 64
                sm.load_rows(k_tiles + (stage ^ 1) * tile_bytes, k, nxt, n, 64, d)
                sm.load_rows(v_tiles + (stage ^ 1) * tile_bytes, v, nxt, n, 64, d)
            k_tile, v_tile = k_tiles + stage * tile_bytes, v_tiles + stage * tile_bytes
            n0 = nb * 64
            for w in range(4):
                key_lo = (m0 + w * 16) // chunk * chunk
                key_hi = m0 + w * 16 + 15
                live = [n0 + gi * 16 <= key_hi and n0 + gi * 16 + 15 >= key_lo for gi in range(4)]
                s = np.zeros((8, 32, 4))
                for kk in range(d // 16):
                    for j in range(0, 8, 2):
                        if not live[j // 2]:
                            continue
                        row = j * 8 + (MI >> 1) * 8 + (LANES & 7)
                        b = sm.ldmatrix_x4(k_tile + swizzled(row_bytes, row, 2 * kk + (MI & 1)))
                        mma(s[j], q_frag[w][kk], b[:, 0], b[:, 1])
                        mma(s[j + 1], q_frag[w][kk], b[:, 2], b[:, 3])
                for j in range(8):
                    for e in range(4):
                        row = m0 + w * 16 + G + 8 * (e >> 1)
                        key = n0 + j * 8 + 2 * TQ + (e & 1)
                        s[j][:, e] = np.where((key >= key_lo) & (key <= row), s[j][:, e], 0.0)
                for kk in range(4):
                    if not live[kk]:
                        continue
                    a = np.stack(
                        [
                            s[2 * kk][:, 0:2],
                            s[2 * kk][:, 2:4],
                            s[2 * kk + 1][:, 0:2],
                            s[2 * kk + 1][:, 2:4],
                        ],
                        axis=1,
                    )
                    for dj in range(0, d // 8, 2):
                        tok = kk * 16 + (MI & 1) * 8 + (LANES & 7)
                        b = sm.ldmatrix_x4(v_tile + swizzled(row_bytes, tok, dj + (MI >> 1)), True)
                        mma(o_acc[w][dj], a, b[:, 0], b[:, 1])
                        mma(o_acc[w][dj + 1], a, b[:, 2], b[:, 3])
        for w in range(4):
            for hh in range(2):
                row = m0 + w * 16 + G + 8 * hh
                ok = row < n
                for dj in range(d // 8):
                    col = dj * 8 + 2 * TQ
                    out[row[ok], col[ok]] = o_acc[w][dj][ok, 2 * hh] * scale
                    out[row[ok], col[ok] + 1] = o_acc[w][dj][ok, 2 * hh + 1] * scale
    return out

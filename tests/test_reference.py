"""Properties of the FP64 references (CPU only)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from attention_proto import reference

shapes = st.tuples(
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from([2, 4, 8]),
)


def _qkv(seed, b, h, nq, nk, d, kvh=None):
    r = np.random.default_rng(seed)
    kvh = kvh or h
    return (
        r.standard_normal((b, h, nq, d)),
        r.standard_normal((b, kvh, nk, d)),
        r.standard_normal((b, kvh, nk, d)),
    )


@given(shapes, st.integers(0, 2**31))
def test_key_permutation_leaves_noncausal_output_unchanged(shape, seed):
    q, k, v = _qkv(seed, *shape)
    perm = np.random.default_rng(seed + 1).permutation(k.shape[2])
    a = reference.attention(q, k, v)
    b = reference.attention(q, k[:, :, perm], v[:, :, perm])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@given(shapes, st.integers(0, 2**31), st.booleans())
def test_outputs_lie_in_convex_hull_of_values(shape, seed, causal):
    q, k, v = _qkv(seed, *shape)
    out = reference.attention(q, k, v, causal=causal).astype(np.float64)
    nq, nk = q.shape[2], k.shape[2]
    mask = reference.causal_mask(nq, nk) if causal else np.ones((nq, nk), bool)
    for i in range(nq):
        vis = mask[i]
        if not vis.any():
            assert np.all(out[:, :, i] == 0)
            continue
        lo = v[:, :, vis].min(axis=2) - 1e-6
        hi = v[:, :, vis].max(axis=2) + 1e-6
        assert np.all(out[:, :, i] >= lo) and np.all(out[:, :, i] <= hi)


@given(shapes, st.integers(0, 2**31))
def test_causal_first_row_equals_first_value(shape, seed):
    b, h, n, _, d = shape
    q, k, v = _qkv(seed, b, h, n, n, d)
    out = reference.attention(q, k, v, causal=True)
    np.testing.assert_allclose(out[:, :, 0], v[:, :, 0], rtol=1e-6, atol=1e-6)


def test_causal_rows_without_keys_are_zero_with_neg_inf_lse():
    q, k, v = _qkv(0, 1, 1, 5, 2, 4)
    out, lse = reference.attention(q, k, v, causal=True, return_lse=True)
    # Bottom-right alignment: queries 0..2 see nothing, 3 sees key 0, 4 sees keys 0..1.
    assert np.all(out[0, 0, :3] == 0) and np.all(np.isneginf(lse[0, 0, :3]))
    np.testing.assert_allclose(out[0, 0, 3], v[0, 0, 0], rtol=1e-6)
    assert np.isfinite(lse[0, 0, 3:]).all()


@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**31))
def test_chunked_linear_equals_recurrent(n, chunk, seed):
    r = np.random.default_rng(seed)
    q, k, v = (r.standard_normal((1, 2, n, 4)) for _ in range(3))
    np.testing.assert_allclose(
        reference.linear_attention_chunked(q, k, v, chunk),
        reference.linear_attention_recurrent(q, k, v),
        rtol=1e-4,
        atol=1e-4,
    )


@given(st.integers(1, 16), st.sampled_from([2, 4, 8, 16]), st.integers(0, 2**31))
def test_rope_preserves_norms(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, n, d))
    np.testing.assert_allclose(
        np.linalg.norm(reference.rope(x), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5
    )


@given(st.integers(0, 50), st.integers(0, 50), st.integers(1, 30), st.integers(0, 2**31))
def test_rope_scores_depend_only_on_relative_position(i, j, shift, seed):
    r = np.random.default_rng(seed)
    d = 8
    qv, kv = r.standard_normal(d), r.standard_normal(d)

    def score(pi, pj):
        q = reference.rope(qv[None, None, None], positions=np.array([pi]))
        k = reference.rope(kv[None, None, None], positions=np.array([pj]))
        return float((q.astype(np.float64) * k).sum())

    assert abs(score(i, j) - score(i + shift, j + shift)) < 1e-4


@given(st.integers(1, 3), st.sampled_from([1, 2, 4, 5]), st.integers(0, 2**31))
def test_paged_equals_contiguous_for_fragmented_tables(batch, page_size, seed):
    r = np.random.default_rng(seed)
    kvh, d, h = 2, 4, 4
    lens = r.integers(1, 20, size=batch)
    max_pages = int(-(-lens.max() // page_size))
    num_pages = batch * max_pages + 3  # unused pool pages too
    ids = r.permutation(num_pages)
    table = np.full((batch, max_pages), -1, np.int32)
    k_pages = r.standard_normal((num_pages, kvh, page_size, d))
    v_pages = r.standard_normal((num_pages, kvh, page_size, d))
    next_id = 0
    for b in range(batch):
        used = -(-int(lens[b]) // page_size)
        table[b, :used] = ids[next_id : next_id + used]
        next_id += used
    q = r.standard_normal((batch, h, d))
    paged = reference.paged_decode(q, k_pages, v_pages, table, lens)
    for b in range(batch):
        used = -(-int(lens[b]) // page_size)
        kc = np.concatenate([k_pages[i] for i in table[b, :used]], axis=1)[:, : lens[b]]
        vc = np.concatenate([v_pages[i] for i in table[b, :used]], axis=1)[:, : lens[b]]
        want = reference.attention(q[b][None, :, None], kc[None], vc[None])[0, :, 0]
        np.testing.assert_allclose(paged[b], want, rtol=1e-5, atol=1e-6)


@given(
    st.sampled_from([(4, 1), (4, 2), (6, 3), (5, 5), (7, 1)]), st.integers(0, 2**31), st.booleans()
)
def test_gqa_equals_mha_with_repeated_heads(heads, seed, causal):
    h, kvh = heads
    q, k, v = _qkv(seed, 1, h, 5, 7, 4, kvh=kvh)
    gqa = reference.attention(q, k, v, causal=causal)
    mha = reference.attention(
        q, np.repeat(k, h // kvh, 1), np.repeat(v, h // kvh, 1), causal=causal
    )
    np.testing.assert_array_equal(gqa, mha)


def test_alibi_bias_is_zero_on_the_diagonal_and_linear_in_distance():
    bias = reference.alibi_bias(4, 3, 5)
    slopes = reference.alibi_slopes(4)
    assert np.all(bias[:, 2, 4] == 0)  # last query, last key
    np.testing.assert_allclose(bias[:, 2, 0], -4 * slopes)


def test_lse_matches_logsumexp_of_scores():
    q, k, v = _qkv(3, 1, 2, 4, 6, 8)
    _, lse = reference.attention(q, k, v, return_lse=True)
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(8)
    want = np.log(np.exp(s).sum(-1))
    np.testing.assert_allclose(lse, want, rtol=1e-5)

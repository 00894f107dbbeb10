"""NumPy views as inputs: the upload is a contiguous copy, so a sliced or
transposed array must give the same answer as its copy. (A sliced q once gave
heads past the first the rows of the parent array: the view's strides were
passed with the copy's address.)"""

from __future__ import annotations

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import reference
from tolerance import assert_close_to_reference

pytestmark = [pytest.mark.gpu, pytest.mark.small]


def _views(rng, b, h, n, d):
    """q sliced along N out of a longer array, k transposed from [B, N, H, D],
    v every other row of a longer array: three different non-contiguous layouts
    (a head window would be contiguous at B = 1)."""
    q = rng.standard_normal((b, h, n + 5, d)).astype(np.float16)[:, :, 3 : 3 + n]
    k = rng.standard_normal((b, n, h, d)).astype(np.float16).transpose(0, 2, 1, 3)
    v = rng.standard_normal((b, h, 2 * n, d)).astype(np.float16)[:, :, ::2]
    assert not any(x.flags.c_contiguous for x in (q, k, v))
    return q, k, v


@pytest.mark.parametrize("op", ["flash_attention", "simple_attention"])
@pytest.mark.parametrize("n", [17, 97])
def test_attention_numpy_views_equal_their_copies(op, n):
    rng = np.random.default_rng(n)
    q, k, v = _views(rng, 2, 3, n, 64)
    out = getattr(ap, op)(q, k, v, causal=True)
    copies = [np.ascontiguousarray(x) for x in (q, k, v)]
    np.testing.assert_array_equal(out, getattr(ap, op)(*copies, causal=True))
    assert_close_to_reference(out, *copies, "float16", causal=True)


def test_paged_numpy_views_equal_their_copies():
    rng = np.random.default_rng(1)
    lens = [17, 40, 5]
    h, kvh, d, page = 4, 2, 128, 16
    k = rng.standard_normal((3, kvh, 40, d)).astype(np.float32)
    v = rng.standard_normal((3, kvh, 40, d)).astype(np.float32)
    kp, vp, table = ap.build_page_pool(k, v, lens, page, fragment=True)
    kp, vp = kp.astype(np.float16), vp.astype(np.float16)
    table = np.where(table < 0, 0, table).astype(np.int32)
    q = rng.standard_normal((3, h + 1, d)).astype(np.float16)[:, 1:]
    wide = np.zeros((3, table.shape[1] + 4), np.int32)
    wide[:, 2 : 2 + table.shape[1]] = table
    table_view = wide[:, 2 : 2 + table.shape[1]]
    lens_view = np.repeat(np.asarray(lens, np.int32), 2)[::2]
    wide = np.zeros(kp.shape[:-1] + (2 * d,), kp.dtype)
    wide[..., d:] = kp
    kp_view = wide[..., d:]  # pages need not be contiguous in NumPy: they are copied
    assert not any(x.flags.c_contiguous for x in (q, table_view, kp_view))
    out = ap.paged_attention(q, kp_view, vp, table_view, lens_view)
    copy = ap.paged_attention(np.ascontiguousarray(q), kp, vp, table, np.asarray(lens, np.int32))
    np.testing.assert_array_equal(out, copy)
    ref = reference.paged_decode(q, kp, vp, table.astype(np.int64), np.asarray(lens))
    assert np.abs(out.astype(np.float32) - ref).max() <= 4 * 2**-10 * np.abs(ref).max() + 1e-3


def test_linear_numpy_views_equal_their_copies():
    rng = np.random.default_rng(2)
    q, k, v = _views(rng, 1, 2, 97, 64)  # views as they are (scaling would copy them)
    out = ap.linear_attention(q, k, v, chunk_size=32)
    copies = [np.ascontiguousarray(x) for x in (q, k, v)]
    np.testing.assert_array_equal(out, ap.linear_attention(*copies, chunk_size=32))


def test_rope_numpy_view_equals_its_copy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 20, 3, 64)).astype(np.float16).transpose(0, 2, 1, 3)
    cos, sin = ap.rope_tables(20, 64)
    out = ap.rope(x, cos, sin)
    np.testing.assert_array_equal(out, ap.rope(np.ascontiguousarray(x), cos, sin))
    ref = reference.rope(x)
    assert np.abs(out.astype(np.float64) - ref).max() <= 2**-9 * np.abs(ref).max()

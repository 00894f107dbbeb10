"""The wgmma kernel's key split plan (flash_hopper.key_split_plan), without a
GPU: how many parts the persistent grid's last round is cut into, per
problem. The split itself runs in test_gpu_flash_hopper.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from attention_proto.ops import flash_hopper as fh


def _model(rest, ctas, key_tiles, parts, tiles):
    """The plan's cost model: rounds of parts times a part's tiles and overhead."""
    return -(-rest * parts // ctas) * (tiles + fh.KEY_SPLIT_PART_TILES)


def test_bench_shapes():
    # D=128, B*N = 16K tokens, H = 16: 2048 items of 128 rows on 132 SMs
    # leave 68 for a 16th round. 8K keys on 192-key tiles (43 tiles): five
    # parts of 9 tiles, 340 parts in three rounds of 10 tiles' time against
    # one round of 44. 1K keys on 128-key tiles (8 tiles): not worth it.
    assert fh.key_split_plan(2048, 132, 43) == (5, 9)
    assert fh.key_split_plan(2048, 132, 22) == (3, 8)
    assert fh.key_split_plan(2048, 132, 8) == (1, 8)
    # A round filled exactly: nothing to split.
    assert fh.key_split_plan(132 * 16, 132, 43) == (1, 43)
    # Fewer items than SMs: every item split (two parts fill 128 of 132).
    assert fh.key_split_plan(64, 132, 64) == (2, 32)


@given(
    items=st.integers(1, 5000),
    ctas=st.integers(1, 160),
    key_tiles=st.integers(1, 200),
)
def test_plan_parts_cover_the_keys_and_gain(items, ctas, key_tiles):
    parts, tiles = fh.key_split_plan(items, ctas, key_tiles)
    if parts == 1:
        assert tiles == key_tiles
        return
    rest = items % ctas if items >= ctas else items
    assert rest > 0 and 2 <= parts <= fh.KEY_SPLIT_MAX_PARTS
    # Every part has keys (the kernel counts parts as ceil(keys / keys a part)).
    assert tiles >= fh.KEY_SPLIT_MIN_TILES and (parts - 1) * tiles < key_tiles <= parts * tiles
    unsplit = key_tiles + fh.KEY_SPLIT_PART_TILES
    assert _model(rest, ctas, key_tiles, parts, tiles) < fh.KEY_SPLIT_GAIN * unsplit

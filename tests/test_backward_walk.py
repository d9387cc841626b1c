"""The CUDA backward's walk over query tiles (cuda/kernels/bwd_walk.h), run on the CPU.

For one block of keys, BwdKernel visits the query blocks some row of which sees one of
those keys, heads of the group in order, blocks downward. The walk finds the run of such
blocks once and computes one block's keys per tile; here it is checked against a scan of
every block with visibility written again from score.h's definition (causal with any
offset, windows on either side, a mask tensor's length, rows and blocks that see nothing).
"""

import itertools
import random

import pytest

from jax_mea import _ext

UNBOUNDED = 2**31 - 1


def visible_keys(pos, kv_len, causal, left, right, mask_len):
    """Keys [lo, hi) query position pos sees (jax_mea/score.h VisibleKeys)."""
    hi = kv_len
    if mask_len >= 0:
        hi = min(hi, mask_len)
    if causal:
        hi = min(hi, pos + 1)
    hi = min(hi, pos + right + 1)
    lo = min(max(pos - left, 0), kv_len)
    return lo, max(hi, 0)


def expected_walk(q_len, kv_len, off, nb, heads, causal, left, right, mask_len, bm=64, bn=128):
    j0 = nb * bn
    tiles = []
    if j0 >= kv_len:
        return tiles
    for hg in heads:
        for m in reversed(range((q_len + bm - 1) // bm)):
            first = visible_keys(m * bm + off, kv_len, causal, left, right, mask_len)
            last = visible_keys(min(m * bm + bm, q_len) - 1 + off, kv_len, causal, left, right,
                                mask_len)
            keys = (first[0], last[1], last[0], first[1])
            if keys[0] < keys[1] and keys[0] < j0 + bn and keys[1] > j0:
                tiles.append((hg, m) + keys)
    return tiles


WINDOWS = [(UNBOUNDED, UNBOUNDED), (50, UNBOUNDED), (UNBOUNDED, 0), (300, 0), (-3, 60),
           (10, -20), (0, 0), (1000, 1000)]


def cases():
    rng = random.Random(20261130)
    grid = list(itertools.product(
        [1, 37, 64, 65, 300, 1000],      # q_len
        [0, 1, 100, 128, 129, 300, 1000],  # kv_len
        [False, True],                   # causal
        range(len(WINDOWS)),
        [-1, 50, 200],                   # mask_len (-1: no mask tensor)
    ))
    for q_len, kv_len, causal, w, mask_len in rng.sample(grid, 400):
        # Offsets near the int32 ends too: score.h reads an unbounded window literally,
        # so rows there lose keys even without a causal mask or window.
        for off in {0, kv_len - q_len, rng.randint(-200, 400), UNBOUNDED - rng.randint(0, 300),
                    -UNBOUNDED - 1 + rng.randint(0, 300)}:
            yield q_len, kv_len, off, causal, WINDOWS[w], mask_len


@pytest.mark.parametrize("heads", [(0, 1), (0, 3), (2, 5)])
def test_walk_visits_the_blocks_a_scan_finds(heads):
    checked = 0
    for q_len, kv_len, off, causal, (left, right), mask_len in cases():
        for nb in range(max(1, (kv_len + 127) // 128) + 1):
            got = _ext.bwd_walk(q_len=q_len, kv_len=kv_len, query_offset=off, nb=nb,
                                hg_first=heads[0], hg_end=heads[1], is_causal=causal,
                                left_window=left, right_window=right, mask_len=mask_len)
            want = expected_walk(q_len, kv_len, off, nb, range(*heads), causal, left, right,
                                 mask_len)
            assert [tuple(t) for t in got] == want, (q_len, kv_len, off, nb, causal, left,
                                                     right, mask_len)
            checked += 1
    assert checked > 1000


def test_unbounded_windows_near_the_int32_ends_are_not_all_visible():
    """No causal mask and unbounded windows, but a query offset of INT_MAX - 10: row i
    sees keys from i - 10 on (score.h), so the blocks past the first are checked per
    key (all.lo > 0), not taken as seeing every key."""
    tiles = _ext.bwd_walk(q_len=64, kv_len=128, query_offset=UNBOUNDED - 10, nb=0)
    assert [tuple(t) for t in tiles] == [(0, 0, 0, 128, 53, 128)]


def test_causal_walk_stops_below_the_diagonal():
    """Causal, S 4096: key block 10 is seen by query blocks 20..63 only; the walk visits
    those, top down, for each head, and nothing below (the kernel once scanned every
    lower block for each head)."""
    tiles = _ext.bwd_walk(q_len=4096, kv_len=4096, query_offset=0, nb=10, hg_end=2,
                          is_causal=True)
    assert [(hg, m) for hg, m, *_ in tiles] == [(hg, m) for hg in range(2)
                                              for m in range(63, 19, -1)]

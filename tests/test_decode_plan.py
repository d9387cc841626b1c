"""The decode kernel's planner (cuda/kernels/decode_plan.h), run on the CPU.

The planner is a pure host function over the call's shapes and the kernel's and
device's facts, so its choices are checked here without a GPU: the number of kv
splits, the cluster merge, balanced splits, the MMA configuration and the workspace.
Facts default to an H200 (132 SMs, sm_90) and the TMA kernel at H128 (8 warps, one
CTA per SM, 128-key tiles).
"""

import pytest

from jax_mea import _ext
from jax_mea import primitives

# CTAs an H100 / H200 runs at once in clusters of each size (one CTA per SM).
H200_CLUSTERS = {2: 132, 3: 129, 4: 132, 5: 110, 6: 126, 8: 120, 16: 112}


def plan(batch, nq, nkv, capacity, h=128, hv=128, q_len=1, **kw):
    kw.setdefault("cluster_slots", H200_CLUSTERS)
    return _ext.decode_plan(batch=batch, num_heads=nq, num_kv_heads=nkv, q_len=q_len,
                            kv_capacity=capacity, head_size=h, v_head_size=hv, **kw)


@pytest.mark.parametrize("batch,nq,nkv", [(8, 32, 8), (8, 16, 4), (16, 16, 4), (1, 32, 8)])
@pytest.mark.parametrize("extra", [0, 1, 32, 64, 128, 2048])
def test_capacity_past_a_tile_multiple_keeps_long_splits(batch, nq, nkv, extra):
    """A decode loop's cache is larger than its contents. Capacity 4096 + 64 once gave
    33 one-tile splits (the cost model ignored what a CTA costs besides its keys) and
    ran at half speed on the H200; every split must keep a CTA's worth of keys."""
    capacity = 4096 + extra
    full = plan(batch, nq, nkv, 4096)
    p = plan(batch, nq, nkv, capacity)
    keys_per_split = capacity / p["num_splits"]
    assert keys_per_split >= 256, p
    # A little more capacity never multiplies the CTAs.
    assert p["num_splits"] <= 2 * full["num_splits"] + 1, (p, full)


def test_without_cta_cost_the_old_plan_was_one_tile_splits():
    """key_bytes = 0 turns the per-CTA cost off: the old model, which split
    B8 N32/8 at capacity 4160 into 33 CTAs of one tile each."""
    assert plan(8, 32, 8, 4160, key_bytes=0)["num_splits"] == 33
    assert plan(8, 32, 8, 4160)["num_splits"] == 2


def test_short_cache_few_groups_splits_finely():
    """B1 S1024 N32/8 H128: 8 groups on 132 SMs run fastest with 8 splits of one tile
    (H100, kernel alone: 4 splits 15.9 us, 8 splits 13.5 us), merged in clusters."""
    p = plan(1, 32, 8, 1024)
    assert p["num_splits"] == 8 and p["cluster_merge"]
    assert p["workspace_bytes"] == 0


def test_clusters_that_do_not_fit_merge_through_the_workspace():
    """B1 S32768 N32/8: 16 splits x 8 groups = 128 CTAs, but the GPU runs only 112 in
    clusters of 16: all 128 CTAs stream and merge through the workspace (half as many
    splits in clusters was 1.22x slower on the H200)."""
    p = plan(1, 32, 8, 32768)
    assert p["num_splits"] == 16 and not p["cluster_merge"]
    assert p["workspace_bytes"] > 0
    # Clusters that fit are taken: 8 groups x 16 splits on a GPU running 128 of them.
    fits = plan(1, 32, 8, 32768, cluster_slots={16: 128})
    assert fits["num_splits"] == 16 and fits["cluster_merge"] and fits["workspace_bytes"] == 0


def test_no_cluster_merge_before_sm90():
    p = plan(1, 32, 8, 32768, compute_major=8, config=2, tma=False, sm90_code=False)
    assert not p["cluster_merge"] and p["num_splits"] == 16


def test_balanced_splits_only_for_ragged_long_caches():
    assert plan(8, 32, 8, 32768, has_kv_lengths=True)["balanced"]
    assert not plan(8, 32, 8, 32768, has_kv_lengths=False)["balanced"]
    assert not plan(8, 32, 8, 8192, has_kv_lengths=True)["balanced"]
    assert not plan(8, 32, 8, 32768, has_kv_lengths=True, balance=False)["balanced"]
    assert not plan(1, 32, 8, 32768, has_kv_lengths=True)["balanced"]  # one row


def test_forced_splits_are_capped():
    assert plan(1, 32, 8, 32768, num_splits=5, cluster_merge=False)["num_splits"] == 5
    assert plan(1, 32, 8, 32768, num_splits=500)["num_splits"] == 64


def test_one_wave_of_long_caches_is_not_split():
    """B16 S8192 N32/8: 128 groups already fill the 132 SMs: one split each."""
    p = plan(16, 32, 8, 8192)
    assert p["num_splits"] == 1 and p["workspace_bytes"] == 0


def test_row_blocks_and_groups():
    p = plan(2, 32, 2, 4096, q_len=2)  # 16 query heads per kv head x 2 positions
    assert p["row_blocks"] == 2 and p["groups"] == 2 * 2 * 2


@pytest.mark.parametrize("major,want", [(9, 3), (8, 2)])
def test_default_config(major, want):
    assert plan(1, 32, 8, 32768, compute_major=major)["default_config"] == want
    # Many short CTAs: two 4-warp CTAs per SM.
    assert plan(64, 32, 8, 2048, compute_major=major)["default_config"] == 0


@pytest.mark.parametrize("batch", [1, 3, 8, 64])
@pytest.mark.parametrize("nq,nkv,q_len", [(32, 8, 1), (32, 32, 1), (8, 1, 2), (4, 4, 4)])
@pytest.mark.parametrize("capacity", [129, 1024, 5000, 32768, 131072])
@pytest.mark.parametrize("hv", [64, 128, 256])
def test_plan_workspace_fits_what_xla_hands_in(batch, nq, nkv, q_len, capacity, hv):
    """The workspace XLA allocates for a call (primitives.decode_workspace_bytes) must
    hold the plan's partials, else the call silently runs with fewer splits."""
    p = plan(batch, nq, nkv, capacity, h=128, hv=hv, q_len=q_len, cluster_merge=False)
    xla = primitives.decode_workspace_bytes(batch, nq, nkv, q_len, hv)
    assert p["workspace_bytes"] <= xla, (p, xla)


# Every cluster size up to 16 (the H200 table above, the rest as whole clusters of
# 132 SMs): what the device reports for the TMA kernel, near enough for the planner.
H200_ALL_CLUSTERS = {**{k: (132 // k) * k for k in range(2, 17)}, **H200_CLUSTERS}


def test_merge_cost_prefers_fewer_splits_merged_in_clusters():
    """The merge a group's last CTA runs costs ~2.9 us + 0.13 us per split through the
    workspace and ~1.5 + 0.1 us in a cluster (decode_check --trace, H200). Without
    those costs B1 S4096+64 N16/4 took 33 one-tile splits through the workspace
    (16.5 us); 11 merged in clusters took 14.5 us on the H200 (session 14)."""
    p = plan(1, 16, 4, 4096 + 64, cluster_slots=H200_ALL_CLUSTERS)
    assert p["cluster_merge"] and p["num_splits"] <= 16, p
    assert p["workspace_bytes"] == 0


def test_split_tolerance_keeps_the_sms_busy():
    """The planner takes the fewest splits within 2% of the best modelled time. At 5%,
    with the merge costs, B1 S32768+64 N32/8 took 15 splits (120 CTAs) instead of 16
    (128 CTAs) and ran 5% slower on the H200 (46.6 against 44.4 us, session 14)."""
    p = plan(1, 32, 8, 32768 + 64)
    assert p["num_splits"] == 16 and not p["cluster_merge"], p


def test_one_wave_through_the_workspace_spreads_the_merge():
    """B1 S32768 N16/4: 4 groups x 33 splits fill the H200's 132 SMs at once, so every
    split merges a slice of its group's out after a barrier on the group's counter
    (the last CTA merging all 33 took 5 us of a 26 us call, H200 2026-11-30)."""
    p = plan(1, 16, 4, 32768 + 32)
    assert not p["cluster_merge"] and p["spread_merge"], p
    assert p["groups"] * p["num_splits"] <= 132
    assert not plan(1, 16, 4, 32768 + 32, spread_merge=False)["spread_merge"]


@pytest.mark.parametrize("batch,nq,nkv,capacity,kw,spread", [
    (1, 16, 4, 32768 + 32, {}, True),         # 4 groups x 33 splits: one wave
    # 8 x 16 = 128 CTAs, which clusters of 16 do not hold (112 of them run at once)
    (2, 16, 4, 32768 + 32, dict(has_kv_lengths=False, cluster_slots=H200_CLUSTERS), True),
    (2, 16, 4, 32768 + 32, {}, False),        # rows of their own lengths: balanced splits
    (8, 16, 4, 4096 + 64, {}, False),         # 32 x 4 in clusters: merged in shared memory
    (64, 32, 8, 32768, {}, False),            # one split: nothing to merge
    (1, 16, 4, 32768 + 32, dict(num_splits=40, cluster_merge=False), False),  # 160 > 132
    (1, 16, 4, 32768 + 32, dict(config=0, ctas_per_sm=2), False),  # 4 warps: no such code
    (1, 16, 4, 32768 + 32, dict(config=-1, tma=False), False),     # SIMT: no such code
])
def test_spread_merge_only_split_through_the_workspace_in_one_wave(batch, nq, nkv, capacity,
                                                                   kw, spread):
    """The spread merge's CTAs wait for each other: only an 8-warp kernel's splits merging
    through the workspace, never with clusters (they merge in shared memory), one split,
    or more CTAs than the GPU runs at once."""
    p = plan(batch, nq, nkv, capacity, **{"cluster_slots": H200_ALL_CLUSTERS, **kw})
    assert p["spread_merge"] == spread, p
    if spread:
        assert not p["cluster_merge"] and p["num_splits"] > 1
        assert p["groups"] * p["num_splits"] <= 132, p


def test_spread_merge_only_where_the_partials_are_large():
    """Spreading the merge pays where the last CTA would read many partials: 16 splits
    of 4 rows x 128 floats (32 KB) 0.4-0.8 us faster on the H200, 16 x 4 x 64 (16 KB)
    0.4-0.5 us slower (kSpreadMergeMinBytes)."""
    assert plan(1, 32, 8, 32768 + 64)["spread_merge"]
    small = plan(1, 32, 8, 32768 + 64, h=64, hv=64, key_bytes=256)
    assert small["num_splits"] > 1 and not small["cluster_merge"], small
    assert not small["spread_merge"], small

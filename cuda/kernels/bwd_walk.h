// The backward's walk over query tiles for one block of keys (BwdKernel,
// attention_bwd.cuh): the heads of the CTA's part of the GQA group in order, each
// head's query blocks downward, only the blocks some row of which sees a key of the
// block. Plain C++ for the host and the device: the nanobind module exposes it
// (_ext.bwd_walk) and tests/test_backward_walk.py checks it against a scan of every
// block, on the CPU.
#pragma once

#include <cstdint>

#include "jax_mea/params.h"
#include "jax_mea/score.h"

namespace jax_mea {

// The keys of the query block of rows [m0, m0 + block_m) (score.h's BlockKeys).
MEA_HOST_DEVICE BlockKeys QueryBlockKeys(const AttentionParams& p, int block_m, int m0,
                                         int kv_len, int64_t off) {
  const int last_row = (m0 + block_m < p.q_len ? m0 + block_m : p.q_len) - 1;
  return RowBlockKeys(p, m0 + off, last_row + off, kv_len);
}

// A query tile of the walk: head hg of the group, query block m, the block's keys.
// hg == the walk's hg_end: past the last tile.
struct BwdTile {
  int hg, m;
  BlockKeys bk;
};

// Query block m contributes to key block [j0, j0 + block_n) when some of its rows
// sees one of those keys. Both ends of a block's `any` grow with m, and a block
// sees no key only below or above the blocks that see some, so the blocks that
// contribute are one run [m_lo, m_hi], the same for every head (VisibleKeys does not
// depend on the head): the walk finds m_hi once, learns m_lo on the first head, and
// computes one block's keys per tile; where AllRowsSeeAllKeys, every row sees
// [0, kv_len), without VisibleKeys. Make() builds it.
struct BwdWalk {
  const AttentionParams* p;
  int block_m, block_n;
  int kv_len;
  int64_t off;  // query_offset(b)
  int j0;       // the key block's first key
  int num_m_blocks;
  int hg_end;  // the walk's heads end here
  bool all_visible;  // AllRowsSeeAllKeys(*p, off, kv_len)
  int m_lo = -1;  // the run's lowest block, once the first head's walk has passed it
  int m_hi = -1;  // its highest, once found

  MEA_HOST_DEVICE static BwdWalk Make(const AttentionParams& p, int block_m, int block_n,
                                      int kv_len, int64_t off, int j0, int hg_end) {
    const int num_m_blocks = (p.q_len + block_m - 1) / block_m;
    return {&p, block_m, block_n, kv_len, off, j0, num_m_blocks, hg_end,
            AllRowsSeeAllKeys(p, off, kv_len)};
  }

  MEA_HOST_DEVICE BlockKeys Keys(int m) const {
    return all_visible ? BlockKeys{{0, kv_len}, {0, kv_len}}
                       : QueryBlockKeys(*p, block_m, m * block_m, kv_len, off);
  }
  MEA_HOST_DEVICE bool Contributes(const BlockKeys& bk) const {
    return !bk.any.empty() && bk.any.lo < j0 + block_n && bk.any.hi > j0;
  }
  // The first tile from head hg on.
  MEA_HOST_DEVICE BwdTile First(int hg) { return Next(hg, num_m_blocks); }
  // The tile after (hg, m) (m = num_m_blocks: before the head's first).
  MEA_HOST_DEVICE BwdTile Next(int hg, int m) {
    if (j0 >= kv_len) return {hg_end, 0, {}};  // no row sees a key of this block
    for (; hg < hg_end; ++hg, m = m_hi + 1) {
      if (m_hi < 0) {  // the highest block that contributes
        for (m = num_m_blocks - 1; m >= 0; --m) {
          const BlockKeys bk = Keys(m);
          if (Contributes(bk)) {
            m_hi = m;
            return {hg, m, bk};
          }
        }
        return {hg_end, 0, {}};  // none does
      }
      if (m - 1 >= (m_lo > 0 ? m_lo : 0)) {
        const BlockKeys bk = Keys(m - 1);
        if (m_lo >= 0 || Contributes(bk)) return {hg, m - 1, bk};
        m_lo = m;  // the run ends at m
      } else if (m_lo < 0) {
        m_lo = 0;
      }
    }
    return {hg_end, 0, {}};
  }
};

}  // namespace jax_mea

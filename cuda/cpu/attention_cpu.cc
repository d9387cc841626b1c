// CPU attention forward: tiled online softmax over key tiles, float32
// accumulation, never the full score matrix.
//
// One work item is (batch, kv head, block of query rows). The query heads of a
// GQA group are processed together so that each key/value tile is read (and,
// for 16-bit inputs, widened to float32) once for all of them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_types.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/tile_math.h"
#include "jax_mea/score.h"

namespace jax_mea::cpu {
namespace {

constexpr int kTargetRows = 64;  // query rows (heads x positions) per work item

// Per-worker buffers, sized once per call.
struct Scratch {
  std::vector<float> q, acc, scores, row_max, row_sum, k_tile, v_tile;
  std::vector<int> first, last;
  Scratch(int rows, int head_size, int v_head_size)
      : q(static_cast<size_t>(rows) * head_size),
        acc(static_cast<size_t>(rows) * RoundUp(v_head_size, kLanes)),
        scores(kKeyTile),
        row_max(rows),
        row_sum(rows),
        k_tile(static_cast<size_t>(kKeyTile) * head_size),
        v_tile(static_cast<size_t>(kKeyTile) * RoundUp(v_head_size, kLanes)),
        first(rows),
        last(rows) {}
};

template <typename T>
class AttentionWorkItem {
 public:
  // q is scaled first (below), so the logits apply only the softcap.
  AttentionWorkItem(const AttentionParams& p, int q_block_rows)
      : p_(p), logits_(MakeLogits(p, 1.f, /*q_scaled=*/true)), q_block_rows_(q_block_rows) {}

  void Run(int b, int kv_head, int q_begin, Scratch& s) const {
    const int group = p_.group_size();
    const int q_end = std::min(q_begin + q_block_rows_, p_.q_len);
    const int positions = q_end - q_begin;
    const int rows = group * positions;
    const int kv_len = p_.kv_length(b);
    const int offset = p_.query_offset(b);
    const int H = p_.head_size, Hv = p_.v_head_size, Hv_padded = RoundUp(Hv, kLanes);

    // Row r is query head kv_head * group + r / positions at position q_begin + r % positions.
    int block_first = kv_len, block_last = 0;
    for (int r = 0; r < rows; ++r) {
      const int head = kv_head * group + r / positions;
      const int i = q_begin + r % positions;
      const T* q = Ptr(p_.q) + b * p_.q_strides.batch + head * p_.q_strides.head +
                   static_cast<int64_t>(i) * p_.q_strides.seq;
      for (int d = 0; d < H; ++d) s.q[r * H + d] = ToFloat(q[d]) * p_.scale;
      std::fill_n(&s.acc[static_cast<size_t>(r) * Hv_padded], Hv_padded, 0.f);
      s.row_max[r] = kNegInf;
      s.row_sum[r] = 0.f;
      const KeyRange keys = VisibleKeys(p_, i + offset, kv_len);
      s.first[r] = keys.lo;
      s.last[r] = keys.hi;
      if (!keys.empty()) {
        block_first = std::min(block_first, s.first[r]);
        block_last = std::max(block_last, s.last[r]);
      }
    }

    const T* k_base = Ptr(p_.k) + b * p_.k_strides.batch + kv_head * p_.k_strides.head;
    const T* v_base = Ptr(p_.v) + b * p_.v_strides.batch + kv_head * p_.v_strides.head;
    for (int j0 = block_first; j0 < block_last; j0 += kKeyTile) {
      const int count = std::min(kKeyTile, block_last - j0);
      LoadKeysTransposed(k_base, p_.k_strides.seq, j0, count, H, s.k_tile.data());
      LoadValues(v_base, p_.v_strides.seq, j0, count, Hv, Hv_padded, s.v_tile.data());
      for (int r = 0; r < rows; ++r) {
        const int lo = std::max(s.first[r], j0) - j0;
        const int hi = std::min(s.last[r], j0 + count) - j0;
        if (lo >= hi) continue;
        UpdateRow(b, kv_head * group + r / positions, q_begin + r % positions, j0, lo, hi,
                  &s.q[static_cast<size_t>(r) * H], s.k_tile.data(), s.v_tile.data(), s.scores.data(),
                  &s.row_max[r], &s.row_sum[r], &s.acc[static_cast<size_t>(r) * Hv_padded]);
      }
    }

    for (int r = 0; r < rows; ++r) {
      const int head = kv_head * group + r / positions;
      const int i = q_begin + r % positions;
      // A row that saw no key (fully masked) has row_sum 0 and outputs zeros.
      const float inv = s.row_sum[r] > 0.f ? 1.f / s.row_sum[r] : 0.f;
      T* out = static_cast<T*>(p_.out) + b * p_.out_strides.batch + head * p_.out_strides.head +
               static_cast<int64_t>(i) * p_.out_strides.seq;
      const float* acc = &s.acc[static_cast<size_t>(r) * Hv_padded];
      for (int d = 0; d < Hv; ++d) out[d] = FromFloat<T>(acc[d] * inv);
      if (p_.lse != nullptr) {
        p_.lse[(static_cast<int64_t>(b) * p_.num_heads + head) * p_.q_len + i] =
            RowLogSumExp(s.row_max[r], s.row_sum[r]);
      }
    }
  }

 private:
  static const T* Ptr(const void* p) { return static_cast<const T*>(p); }

  // Folds keys [j0 + lo, j0 + hi) into one query row's running softmax state.
  void UpdateRow(int b, int head, int i, int j0, int lo, int hi, const float* __restrict q,
                 const float* __restrict keys_t, const float* __restrict values,
                 float* __restrict scores, float* row_max, float* row_sum, float* acc) const {
    const int Hv_padded = RoundUp(p_.v_head_size, kLanes);
    TileScores(q, keys_t, p_.head_size, scores);
    if (logits_.capped()) {
      for (int t = lo; t < hi; ++t) scores[t] = logits_.Capped(scores[t]);
    }
    if (p_.mask_kind != MaskKind::kNone) {
      const int64_t row = MaskRow(p_, b, head, i);
      for (int t = lo; t < hi; ++t) scores[t] = MaskLogit<T>(p_, logits_, scores[t], row, j0 + t);
    }
    float tile_max = kNegInf;
    for (int t = lo; t < hi; ++t) tile_max = std::max(tile_max, scores[t]);  // drops NaN
    // Every key of this tile dropped for this row: skip it, unless a NaN logit
    // must reach the output.
    if (tile_max == kNegInf && !AnyNaN(scores, lo, hi)) return;
    const float new_max = std::max(*row_max, tile_max);
    if (new_max > *row_max) {
      const float correction = std::exp(*row_max - new_max);  // exp(-inf) = 0 on the first tile
      *row_sum *= correction;
      Scale(correction, acc, Hv_padded);
      *row_max = new_max;
    }
    const float shift = SoftmaxShift(new_max);
    float sum = 0.f;
    for (int t = lo; t < hi; ++t) {
      scores[t] = std::exp(scores[t] - shift);
      sum += scores[t];
    }
    *row_sum += sum;
    AccumulateValues(scores, lo, hi, values, Hv_padded, acc);
  }

  static bool AnyNaN(const float* x, int lo, int hi) {
    for (int t = lo; t < hi; ++t) {
      if (x[t] != x[t]) return true;
    }
    return false;
  }

  const AttentionParams& p_;
  const Logits logits_;
  const int q_block_rows_;
};

template <typename T>
void RunAttention(const AttentionParams& p) {
  const int group = p.group_size();
  const int q_block = std::max(1, std::min(p.q_len, kTargetRows / group));
  const int num_q_blocks = (p.q_len + q_block - 1) / q_block;
  const int64_t items = static_cast<int64_t>(p.batch) * p.num_kv_heads * num_q_blocks;
  std::vector<Scratch> scratch;
  for (int w = 0; w < NumWorkers(items); ++w) scratch.emplace_back(group * q_block, p.head_size, p.v_head_size);
  const AttentionWorkItem<T> work(p, q_block);
  ParallelFor(items, [&](int worker, int64_t item) {
    const int q_blk = static_cast<int>(item % num_q_blocks);
    const int64_t bh = item / num_q_blocks;
    work.Run(static_cast<int>(bh / p.num_kv_heads), static_cast<int>(bh % p.num_kv_heads),
             q_blk * q_block, scratch[worker]);
  });
}

}  // namespace

void AttentionForward(const AttentionParams& p) {
  if (p.batch == 0 || p.num_heads == 0 || p.q_len == 0 || p.v_head_size == 0) return;
  DispatchDType(p.dtype, [&](auto tag) { RunAttention<decltype(tag)>(p); });
}

}  // namespace jax_mea::cpu

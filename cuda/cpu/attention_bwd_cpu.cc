// CPU attention backward, FlashAttention-2's algorithm: the probabilities are
// recomputed tile by tile from the forward's row log-sum-exp (never the full
// score matrix), through the same score layer (jax_mea/score.h) as the forward:
//
//   D_i  = sum_d dO_id O_id
//   P_ij = exp(logit_ij - lse_i)            (0 for keys the row does not see)
//   dV_j += P_ij dO_i                       dP_ij = dO_i . V_j
//   dS_ij = P_ij (dP_ij - D_i)              (= d loss / d logit_ij: dmask)
//   dS_ij *= d logit / d score              (the softcap's 1 - tanh^2)
//   dQ_i += dS_ij K_j                       dK_j += dS_ij Q_i
//
// One work item is (batch, kv head): all query rows of its GQA group against
// every key tile in order. dK and dV of a tile are complete once all rows have
// passed (the group sum included), and dQ is accumulated per row by one worker
// only, so the result is deterministic (no atomics) and needs no reduction pass.
// A row with no visible key (lse = -inf) gets zero gradients.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "cpu/cpu_types.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/tile_math.h"
#include "jax_mea/score.h"

namespace jax_mea::cpu {
namespace {

// Query rows whose P and dS columns are summed into dK / dV at once (a register
// block of AccumulateValues).
constexpr int kRowBlock = 16;

// Per-worker buffers: per item (all rows of a batch and kv head) and per key tile.
struct BwdScratch {
  std::vector<float> q, dout, dq, delta, lse;  // [rows][H | Hv padded], [rows]
  std::vector<int> first, last;                // each row's visible keys
  std::vector<float> k_t, v_t, k_rows, dk, dv;  // the tile: K^T, V^T, K rows; dK, dV sums
  std::vector<float> p_t, ds_t;                 // [kKeyTile][kRowBlock]: P, dS transposed
  std::vector<float> scores, dp, ds;            // [kKeyTile]: one row's
  BwdScratch(int rows, int head_size, int v_head_size) {
    const size_t hp = RoundUp(head_size, kLanes), hvp = RoundUp(v_head_size, kLanes);
    const size_t tile = kKeyTile;
    // (buffer, elements), all zeroed.
    const std::pair<std::vector<float>*, size_t> floats[] = {
        {&q, rows * hp},          {&dout, rows * hvp},        {&dq, rows * hp},
        {&delta, size_t(rows)},   {&lse, size_t(rows)},       {&k_t, tile * head_size},
        {&v_t, tile * v_head_size}, {&k_rows, tile * hp},     {&dk, tile * hp},
        {&dv, tile * hvp},        {&p_t, tile * kRowBlock},   {&ds_t, tile * kRowBlock},
        {&scores, tile},          {&dp, tile},                {&ds, tile}};
    for (const auto& [buffer, n] : floats) buffer->assign(n, 0.f);
    first.assign(rows, 0);
    last.assign(rows, 0);
  }
};

template <typename T>
class BackwardWorkItem {
 public:
  // q is scaled first (as in the forward), so the logits apply only the softcap.
  explicit BackwardWorkItem(const AttentionBackwardParams& bp)
      : bp_(bp), p_(bp.fwd), logits_(MakeLogits(bp.fwd, 1.f, /*q_scaled=*/true)) {}

  void Run(int b, int kv_head, BwdScratch& s) const {
    const int group = p_.group_size(), Sq = p_.q_len, rows = group * Sq;
    const int H = p_.head_size, Hv = p_.v_head_size;
    const int Hp = RoundUp(H, kLanes), Hvp = RoundUp(Hv, kLanes);
    const int kv_len = p_.kv_length(b);
    const int offset = p_.query_offset(b);

    // Keys no row sees get zero dK, dV.
    for (int j = 0; j < p_.kv_capacity; ++j) {
      std::fill_n(Row<T>(bp_.dk, bp_.dk_strides, b, kv_head, j), H, FromFloat<T>(0.f));
      std::fill_n(Row<T>(bp_.dv, bp_.dv_strides, b, kv_head, j), Hv, FromFloat<T>(0.f));
    }

    // Row r: query head kv_head * group + r / Sq at position r % Sq.
    int block_first = kv_len, block_last = 0;
    for (int r = 0; r < rows; ++r) {
      const int head = kv_head * group + r / Sq, i = r % Sq;
      const T* q = Row<const T>(p_.q, p_.q_strides, b, head, i);
      const T* out = Row<const T>(p_.out, p_.out_strides, b, head, i);
      const T* dout = Row<const T>(bp_.dout, bp_.dout_strides, b, head, i);
      float* qs = &s.q[static_cast<size_t>(r) * Hp];
      float* dos = &s.dout[static_cast<size_t>(r) * Hvp];
      for (int d = 0; d < H; ++d) qs[d] = ToFloat(q[d]) * p_.scale;
      float delta = 0.f;
      for (int d = 0; d < Hv; ++d) {
        dos[d] = ToFloat(dout[d]);
        delta += dos[d] * ToFloat(out[d]);
      }
      s.delta[r] = delta;
      std::fill_n(&s.dq[static_cast<size_t>(r) * Hp], Hp, 0.f);
      s.lse[r] = bp_.lse[(static_cast<int64_t>(b) * p_.num_heads + head) * Sq + i];
      if (bp_.dmask != nullptr) std::fill_n(DmaskRow(b, head, i), p_.mask_len, 0.f);
      KeyRange keys = VisibleKeys(p_, i + offset, kv_len);
      if (s.lse[r] == kNegInf) keys = {0, 0};  // sees no key: zero gradients
      s.first[r] = keys.lo;
      s.last[r] = keys.hi;
      if (!keys.empty()) {
        block_first = std::min(block_first, keys.lo);
        block_last = std::max(block_last, keys.hi);
      }
    }

    const T* k_base = Row<const T>(p_.k, p_.k_strides, b, kv_head, 0);
    const T* v_base = Row<const T>(p_.v, p_.v_strides, b, kv_head, 0);
    for (int j0 = block_first; j0 < block_last; j0 += kKeyTile) {
      const int count = std::min(kKeyTile, block_last - j0);
      LoadKeysTransposed(k_base, p_.k_strides.seq, j0, count, H, s.k_t.data());
      LoadKeysTransposed(v_base, p_.v_strides.seq, j0, count, Hv, s.v_t.data());
      LoadValues(k_base, p_.k_strides.seq, j0, count, H, Hp, s.k_rows.data());
      std::fill_n(s.dk.begin(), static_cast<size_t>(count) * Hp, 0.f);
      std::fill_n(s.dv.begin(), static_cast<size_t>(count) * Hvp, 0.f);
      for (int rb = 0; rb < rows; rb += kRowBlock) {
        const int nb = std::min(kRowBlock, rows - rb);
        bool any = false;
        for (int rr = 0; rr < nb; ++rr) {
          any |= RowGrads(b, kv_head, rb + rr, rr, j0, count, s);
        }
        if (!any) continue;
        // dV_t += sum_r P_rt dO_r, dK_t += sum_r dS_rt Q_r over the block's rows.
        for (int t = 0; t < count; ++t) {
          AccumulateValues(&s.p_t[t * kRowBlock], 0, nb, &s.dout[static_cast<size_t>(rb) * Hvp],
                           Hvp, &s.dv[static_cast<size_t>(t) * Hvp]);
          AccumulateValues(&s.ds_t[t * kRowBlock], 0, nb, &s.q[static_cast<size_t>(rb) * Hp], Hp,
                           &s.dk[static_cast<size_t>(t) * Hp]);
        }
      }
      for (int t = 0; t < count; ++t) {
        T* dk = Row<T>(bp_.dk, bp_.dk_strides, b, kv_head, j0 + t);
        T* dv = Row<T>(bp_.dv, bp_.dv_strides, b, kv_head, j0 + t);
        for (int d = 0; d < H; ++d) dk[d] = FromFloat<T>(s.dk[static_cast<size_t>(t) * Hp + d]);
        for (int d = 0; d < Hv; ++d) dv[d] = FromFloat<T>(s.dv[static_cast<size_t>(t) * Hvp + d]);
      }
    }

    // dq = scale * d(scaled q).
    for (int r = 0; r < rows; ++r) {
      T* dq = Row<T>(bp_.dq, bp_.dq_strides, b, kv_head * group + r / Sq, r % Sq);
      const float* acc = &s.dq[static_cast<size_t>(r) * Hp];
      for (int d = 0; d < H; ++d) dq[d] = FromFloat<T>(acc[d] * p_.scale);
    }
  }

 private:
  template <typename U, typename V>
  static U* Row(V* base, const TensorStrides& st, int b, int head, int i) {
    return static_cast<U*>(base) + b * st.batch + head * st.head + static_cast<int64_t>(i) * st.seq;
  }

  float* DmaskRow(int b, int head, int i) const {
    return bp_.dmask + ((static_cast<int64_t>(b) * p_.num_heads + head) * p_.q_len + i) *
                           static_cast<int64_t>(p_.mask_len);
  }

  // Row r (column rr of the block) against keys [j0, j0 + count): P and dS into
  // the block's columns (0 outside the row's visible keys), dQ_r += dS K, dmask.
  // False when the row sees none of these keys.
  bool RowGrads(int b, int kv_head, int r, int rr, int j0, int count, BwdScratch& s) const {
    const int lo = std::max(s.first[r], j0) - j0;
    const int hi = std::min(s.last[r], j0 + count) - j0;
    if (lo >= hi) {
      for (int t = 0; t < count; ++t) s.p_t[t * kRowBlock + rr] = s.ds_t[t * kRowBlock + rr] = 0.f;
      return false;
    }
    const int Sq = p_.q_len, head = kv_head * p_.group_size() + r / Sq, i = r % Sq;
    const int Hp = RoundUp(p_.head_size, kLanes), Hvp = RoundUp(p_.v_head_size, kLanes);
    TileScores(&s.q[static_cast<size_t>(r) * Hp], s.k_t.data(), p_.head_size, s.scores.data());
    TileScores(&s.dout[static_cast<size_t>(r) * Hvp], s.v_t.data(), p_.v_head_size, s.dp.data());
    const int64_t mask_row = p_.mask_kind != MaskKind::kNone ? MaskRow(p_, b, head, i) : 0;
    float* dmask = bp_.dmask != nullptr ? DmaskRow(b, head, i) : nullptr;
    const float lse = s.lse[r], delta = s.delta[r];
    for (int t = 0; t < count; ++t) {
      float p = 0.f, ds = 0.f;
      if (t >= lo && t < hi) {
        const Logits::WithSlope ls = logits_.Slope(s.scores[t]);  // slope: d logit / d score
        p = std::exp(MaskLogit<T>(p_, logits_, ls.logit, mask_row, j0 + t) - lse);
        ds = p * (s.dp[t] - delta);
        if (dmask != nullptr) dmask[j0 + t] = ds;  // d logit / d additive value = 1
        ds *= ls.slope;
      }
      s.p_t[t * kRowBlock + rr] = p;
      s.ds_t[t * kRowBlock + rr] = ds;
      s.ds[t] = ds;
    }
    AccumulateValues(s.ds.data(), lo, hi, s.k_rows.data(), Hp, &s.dq[static_cast<size_t>(r) * Hp]);
    return true;
  }

  const AttentionBackwardParams& bp_;
  const AttentionParams& p_;
  const Logits logits_;
};

template <typename T>
void RunBackward(const AttentionBackwardParams& bp) {
  const AttentionParams& p = bp.fwd;
  const int64_t items = static_cast<int64_t>(p.batch) * p.num_kv_heads;
  std::vector<BwdScratch> scratch;
  for (int w = 0; w < NumWorkers(items); ++w) {
    scratch.emplace_back(p.group_size() * p.q_len, p.head_size, p.v_head_size);
  }
  const BackwardWorkItem<T> work(bp);
  ParallelFor(items, [&](int worker, int64_t item) {
    work.Run(static_cast<int>(item / p.num_kv_heads), static_cast<int>(item % p.num_kv_heads),
             scratch[worker]);
  });
}

}  // namespace

void AttentionBackward(const AttentionBackwardParams& p) {
  if (p.fwd.batch == 0 || p.fwd.num_kv_heads == 0) return;
  DispatchDType(p.fwd.dtype, [&](auto tag) { RunBackward<decltype(tag)>(p); });
}

}  // namespace jax_mea::cpu

// The vector building blocks of the CPU attention kernels (forward and
// backward): tiles of keys / values widened to float32, scores of a row against
// a tile, and weighted sums of rows, on 8-float vectors.
#pragma once

#include <cstdint>

#include "cpu/cpu_types.h"

namespace jax_mea::cpu {

constexpr int kKeyTile = 64;

// Eight floats as one value (GCC/Clang vector extension: AVX registers where the
// target has them, plain code elsewhere). aligned(4): loads need no alignment.
typedef float Vec8 __attribute__((vector_size(32), aligned(4)));
constexpr int kLanes = 8;
constexpr int kTileVecs = kKeyTile / kLanes;

inline Vec8 Load8(const float* p) { return *reinterpret_cast<const Vec8*>(p); }
inline void Store8(float* p, Vec8 v) { *reinterpret_cast<Vec8*>(p) = v; }

inline int RoundUp(int n, int m) { return (n + m - 1) / m * m; }

inline void Scale(float alpha, float* __restrict y, int n) {
#pragma omp simd
  for (int d = 0; d < n; ++d) y[d] *= alpha;
}

// A tile of keys transposed to [dim][kKeyTile] float32, so that the scores of one
// query row against the whole tile are a sequence of vector FMAs over the keys.
template <typename T>
void LoadKeysTransposed(const T* base, int64_t seq_stride, int first, int count, int dim,
                        float* keys_t) {
  for (int t = 0; t < count; ++t) {
    const T* src = base + static_cast<int64_t>(first + t) * seq_stride;
    for (int d = 0; d < dim; ++d) keys_t[d * kKeyTile + t] = ToFloat(src[d]);
  }
}

// A tile of values as float32 rows of `padded_dim` (a multiple of kLanes, the
// padding zeroed) so the weighted sum runs on whole vectors.
template <typename T>
void LoadValues(const T* base, int64_t seq_stride, int first, int count, int dim, int padded_dim,
                float* values) {
  for (int t = 0; t < count; ++t) {
    const T* src = base + static_cast<int64_t>(first + t) * seq_stride;
    float* dst = values + static_cast<int64_t>(t) * padded_dim;
    for (int d = 0; d < dim; ++d) dst[d] = ToFloat(src[d]);
    for (int d = dim; d < padded_dim; ++d) dst[d] = 0.f;
  }
}

// scores[t] = q . key t for the whole tile: kTileVecs vector accumulators stay in
// registers while the head dimension streams by.
inline void TileScores(const float* __restrict q, const float* __restrict keys_t, int head_size,
                       float* __restrict scores) {
  Vec8 acc[kTileVecs] = {};
  for (int d = 0; d < head_size; ++d) {
    const Vec8 qd = Vec8{} + q[d];
    const float* kd = keys_t + d * kKeyTile;
    for (int c = 0; c < kTileVecs; ++c) acc[c] += qd * Load8(kd + c * kLanes);
  }
  for (int c = 0; c < kTileVecs; ++c) Store8(scores + c * kLanes, acc[c]);
}

// acc[0:padded_dim] += sum_t probs[t] * values[t], eight vectors of acc at a time
// held in registers across the keys.
inline void AccumulateValues(const float* __restrict probs, int lo, int hi,
                             const float* __restrict values, int padded_dim,
                             float* __restrict acc) {
  constexpr int kChunk = 8;  // vectors per register block
  int c0 = 0;
  for (; c0 + kChunk * kLanes <= padded_dim; c0 += kChunk * kLanes) {
    Vec8 a[kChunk];
    for (int c = 0; c < kChunk; ++c) a[c] = Load8(acc + c0 + c * kLanes);
    for (int t = lo; t < hi; ++t) {
      const Vec8 pt = Vec8{} + probs[t];
      const float* v = values + static_cast<int64_t>(t) * padded_dim + c0;
      for (int c = 0; c < kChunk; ++c) a[c] += pt * Load8(v + c * kLanes);
    }
    for (int c = 0; c < kChunk; ++c) Store8(acc + c0 + c * kLanes, a[c]);
  }
  for (; c0 < padded_dim; c0 += kLanes) {
    Vec8 a = Load8(acc + c0);
    for (int t = lo; t < hi; ++t) {
      a += (Vec8{} + probs[t]) * Load8(values + static_cast<int64_t>(t) * padded_dim + c0);
    }
    Store8(acc + c0, a);
  }
}

}  // namespace jax_mea::cpu

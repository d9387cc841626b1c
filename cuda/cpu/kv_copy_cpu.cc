// CPU KV concat / append: row copies (one row = one token of one head).
#include <algorithm>
#include <cstring>

#include "cpu/cpu_types.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace jax_mea::cpu {
namespace {

// Copies `count` rows of `row_elems` elements between two strided BNSH/BSNH views
// of one (batch, head), from sequence index src_first to dst_first.
void CopyRows(const void* src, const TensorStrides& ss, void* dst, const TensorStrides& ds, int b,
              int h, int src_first, int dst_first, int count, int row_elems, size_t elem) {
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (int t = 0; t < count; ++t) {
    const int64_t si = b * ss.batch + h * ss.head + static_cast<int64_t>(src_first + t) * ss.seq;
    const int64_t di = b * ds.batch + h * ds.head + static_cast<int64_t>(dst_first + t) * ds.seq;
    std::memcpy(d + di * elem, s + si * elem, row_elems * elem);
  }
}

}  // namespace

void KvCopy(const KvCopyParams& p) {
  const size_t elem = DTypeBytes(p.dtype);
  ParallelFor(static_cast<int64_t>(p.batch) * p.num_kv_heads, [&](int, int64_t item) {
    const int b = static_cast<int>(item / p.num_kv_heads);
    const int h = static_cast<int>(item % p.num_kv_heads);
    if (p.past_k != nullptr) {
      CopyRows(p.past_k, p.past_k_strides, p.dst_k, p.dst_k_strides, b, h, 0, 0, p.past_len,
               p.head_size, elem);
      CopyRows(p.past_v, p.past_v_strides, p.dst_v, p.dst_v_strides, b, h, 0, 0, p.past_len,
               p.v_head_size, elem);
    }
    // New tokens whose destination falls outside [0, dst_capacity) are dropped.
    const int start = p.dst_start(b);
    if (h == 0) MarkOverflow(p.overflowed, b, start, p.num_new, p.dst_capacity);
    const int first = std::max(0, -start);
    const int last = std::max(first, std::min(p.num_new, p.dst_capacity - start));
    CopyRows(p.new_k, p.new_k_strides, p.dst_k, p.dst_k_strides, b, h, first, start + first,
             last - first, p.head_size, elem);
    CopyRows(p.new_v, p.new_v_strides, p.dst_v, p.dst_v_strides, b, h, first, start + first,
             last - first, p.v_head_size, elem);
  });
}

}  // namespace jax_mea::cpu

// KV concat / append: the CUDA twin of cpu::KvCopy (cuda/cpu/kv_copy_cpu.cc).
//
// K and V are copied by one launch (blockIdx.z: 0 for K, 1 for V: a decode step
// pays one launch for its append, not two), each with its own row size
// (head_size, v_head_size), with the widest access (16, 8, 4 or 2 bytes) that
// both tensors' row sizes, base pointers and strides allow. One thread copies one
// access unit; blockIdx.y walks (batch, head), x walks (row, unit) of that head.
// Rows are the past rows (concat) followed by the new tokens; a new token whose
// destination lies outside [0, dst_capacity) is dropped.
#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/attention.h"

namespace jax_mea::cuda {
namespace {

struct CopyView {
  const char* past = nullptr;  // null: no past rows (append)
  TensorStrides past_s;        // in bytes
  const char* src = nullptr;   // new tokens
  TensorStrides src_s;
  char* dst = nullptr;
  TensorStrides dst_s;
  int units_per_row = 0;       // access units per row (0: nothing to copy)
};

struct CopyArgs {
  CopyView view[2];  // K, V
  int heads = 0;
  int batch_heads = 0;
  int past_rows = 0;  // 0 for append
  int num_new = 0;
  int dst_capacity = 0;
  const int32_t* dst_starts = nullptr;
  int default_start = 0;
  bool* overflowed = nullptr;  // a decode step's flags (KvCopyParams::overflowed)
};

template <typename W>
__global__ void KvCopyKernel(const __grid_constant__ CopyArgs a) {
  const CopyView& v = a.view[blockIdx.z];
  const int rows = a.past_rows + a.num_new;
  const int per_head = rows * v.units_per_row;
  for (int bh = blockIdx.y; bh < a.batch_heads; bh += gridDim.y) {
    const int b = bh / a.heads, h = bh % a.heads;
    const int start = a.dst_starts ? a.dst_starts[b] : a.default_start;
    if (h == 0 && blockIdx.x == 0 && blockIdx.z == 0 && threadIdx.x == 0) {
      MarkOverflow(a.overflowed, b, start, a.num_new, a.dst_capacity);
    }
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < per_head;
         idx += gridDim.x * blockDim.x) {
      const int r = idx / v.units_per_row, u = idx % v.units_per_row;
      const char* src;
      int64_t dst_pos;
      if (r < a.past_rows) {
        src = v.past + b * v.past_s.batch + h * v.past_s.head +
              static_cast<int64_t>(r) * v.past_s.seq;
        dst_pos = r;
      } else {
        const int t = r - a.past_rows;
        dst_pos = static_cast<int64_t>(start) + t;
        if (dst_pos < 0 || dst_pos >= a.dst_capacity) continue;
        src = v.src + b * v.src_s.batch + h * v.src_s.head + static_cast<int64_t>(t) * v.src_s.seq;
      }
      char* dst = v.dst + b * v.dst_s.batch + h * v.dst_s.head + dst_pos * v.dst_s.seq;
      reinterpret_cast<W*>(dst)[u] = reinterpret_cast<const W*>(src)[u];
    }
  }
}

TensorStrides Bytes(const TensorStrides& s, int64_t elem) {
  return {s.batch * elem, s.head * elem, s.seq * elem};
}

bool Aligned(int64_t width, const void* ptr, const TensorStrides& s) {
  return reinterpret_cast<uintptr_t>(ptr) % width == 0 && s.batch % width == 0 &&
         s.head % width == 0 && s.seq % width == 0;
}

// One tensor's view, strides in bytes.
CopyView ViewOf(const void* past, const TensorStrides& past_s, const void* src,
                const TensorStrides& src_s, void* dst, const TensorStrides& dst_s,
                int64_t elem) {
  CopyView v;
  v.past = static_cast<const char*>(past);
  v.past_s = Bytes(past_s, elem);
  v.src = static_cast<const char*>(src);
  v.src_s = Bytes(src_s, elem);
  v.dst = static_cast<char*>(dst);
  v.dst_s = Bytes(dst_s, elem);
  return v;
}

// True where rows of `row_bytes` of view `v` can be copied `w` bytes at a time.
bool WidthFits(int64_t w, const CopyView& v, int64_t row_bytes) {
  return row_bytes % w == 0 && Aligned(w, v.src, v.src_s) && Aligned(w, v.dst, v.dst_s) &&
         (v.past == nullptr || Aligned(w, v.past, v.past_s));
}

}  // namespace

std::string KvCopyUnsupported(const KvCopyParams& p) {
  if (p.batch < 0 || p.num_kv_heads < 0 || p.head_size < 0 || p.v_head_size < 0 ||
      p.num_new < 0 || p.dst_capacity < 0 || p.past_len < 0) {
    return "negative dimension";
  }
  const int64_t rows = static_cast<int64_t>(p.past_k ? p.past_len : 0) + p.num_new;
  const int64_t units = rows * (p.head_size > p.v_head_size ? p.head_size : p.v_head_size);
  if (units > INT32_MAX) return "too many elements per head (rows * head size >= 2^31)";
  if (static_cast<int64_t>(p.batch) * p.num_kv_heads > INT32_MAX) return "too many heads";
  return {};
}

cudaError_t LaunchKvCopy(const KvCopyParams& p, cudaStream_t stream) {
  const int64_t elem = DTypeBytes(p.dtype);
  CopyArgs a;
  a.view[0] = ViewOf(p.past_k, p.past_k_strides, p.new_k, p.new_k_strides, p.dst_k,
                     p.dst_k_strides, elem);
  a.view[1] = ViewOf(p.past_v, p.past_v_strides, p.new_v, p.new_v_strides, p.dst_v,
                     p.dst_v_strides, elem);
  const int64_t row_bytes[2] = {p.head_size * elem, p.v_head_size * elem};
  a.heads = p.num_kv_heads;
  a.batch_heads = p.batch * p.num_kv_heads;
  a.past_rows = p.past_k ? p.past_len : 0;
  a.num_new = p.num_new;
  a.dst_capacity = p.dst_capacity;
  a.dst_starts = p.dst_starts;
  a.default_start = p.past_len;
  a.overflowed = p.overflowed;
  const int64_t rows = a.past_rows + a.num_new;
  if (std::max(row_bytes[0], row_bytes[1]) == 0 || a.batch_heads == 0 || rows == 0) {
    return cudaSuccess;
  }
  int64_t width = elem;
  for (int64_t w : {16, 8, 4}) {
    if (w <= elem) break;
    if (WidthFits(w, a.view[0], row_bytes[0]) && WidthFits(w, a.view[1], row_bytes[1])) {
      width = w;
      break;
    }
  }
  for (int t = 0; t < 2; ++t) a.view[t].units_per_row = static_cast<int>(row_bytes[t] / width);
  const int64_t per_head = rows * std::max(a.view[0].units_per_row, a.view[1].units_per_row);
  constexpr int kThreads = 256;
  const int64_t x_blocks = std::min<int64_t>((per_head + kThreads - 1) / kThreads, 65535);
  const dim3 grid(static_cast<unsigned>(x_blocks),
                  static_cast<unsigned>(std::min<int64_t>(a.batch_heads, 65535)), 2);
  switch (width) {
    case 16: KvCopyKernel<uint4><<<grid, kThreads, 0, stream>>>(a); break;
    case 8: KvCopyKernel<uint2><<<grid, kThreads, 0, stream>>>(a); break;
    case 4: KvCopyKernel<uint32_t><<<grid, kThreads, 0, stream>>>(a); break;
    default: KvCopyKernel<uint16_t><<<grid, kThreads, 0, stream>>>(a); break;
  }
  return cudaGetLastError();
}

}  // namespace jax_mea::cuda

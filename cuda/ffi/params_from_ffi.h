// The one place that builds AttentionParams / KvCopyParams: from XLA FFI buffers
// and attributes, identically for the CPU and the CUDA handlers.
//
// Each check has one layer. User errors are caught at trace time, naming the
// argument (jax_mea/_checks.py, the primitives). The checks here guard the
// native boundary (shapes, dtypes, GQA, mask kind, softcap) and return an
// ffi::Error naming what is wrong instead of reading out of bounds; kernels
// assume what they establish and check only what they themselves cannot do
// (head-size limits, grid sizes).
#pragma once

#include <cstdint>
#include <algorithm>
#include <string>
#include <utility>

#include "jax_mea/params.h"
#include "xla/ffi/api/ffi.h"

namespace jax_mea {

namespace ffi = xla::ffi;

// Order of a rank-4 tensor's axes. A 3D ONNX input [B, S, N*H] is reshaped to
// [B, S, N, H] (BSNH) by the primitive, which costs nothing in XLA.
// kPackedQkv, a decode step's q_layout only (MakeDecodeStepParams): q is one BSNH
// buffer [B, T, Nq + 2 Nkv, H] holding the query heads, then the new keys', then
// the new values' (a model's fused QKV projection), and new_k / new_v are
// placeholders.
enum class Layout : int64_t { kBSNH = 0, kBNSH = 1, kPackedQkv = 2 };

// Attributes of the attention custom call (names match jax_mea/primitives.py).
struct AttentionAttrs {
  int64_t q_layout;
  int64_t k_layout;
  int64_t v_layout;
  int64_t out_layout;
  int64_t mask_kind;  // MaskKind
  bool has_kv_lengths;
  bool has_causal_offsets;
  int64_t causal_offset;
  bool is_causal;
  int64_t left_window;
  int64_t right_window;
  float scale;
  float softcap;
};

// Attributes of the KV copy custom calls.
struct KvCopyAttrs {
  int64_t new_layout;  // layout of the new K/V tokens
};

// Logical dims of a rank-4 tensor in (batch, heads, seq, head_dim) order, and
// its element strides.
struct Tensor4 {
  int64_t batch = 0, heads = 0, seq = 0, dim = 0;
  TensorStrides strides;
};

inline std::string DimsToString(ffi::AnyBuffer::Dimensions dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

inline ffi::ErrorOr<Tensor4> DescribeTensor(const char* name, ffi::AnyBuffer::Dimensions dims,
                                            int64_t layout) {
  if (dims.size() != 4) {
    return ffi::Unexpected(ffi::Error::InvalidArgument(
        std::string(name) + " must be rank 4, got " + DimsToString(dims)));
  }
  Tensor4 t;
  t.batch = dims[0];
  t.dim = dims[3];
  if (layout == static_cast<int64_t>(Layout::kBSNH)) {
    t.seq = dims[1];
    t.heads = dims[2];
    t.strides = {dims[1] * dims[2] * dims[3], dims[3], dims[2] * dims[3]};
  } else if (layout == static_cast<int64_t>(Layout::kBNSH)) {
    t.heads = dims[1];
    t.seq = dims[2];
    t.strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3]};
  } else {
    return ffi::Unexpected(ffi::Error::InvalidArgument(
        std::string(name) + ": unknown layout " + std::to_string(layout)));
  }
  return t;
}

inline ffi::ErrorOr<DType> ToDType(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F32: return DType::kFloat32;
    case ffi::DataType::F16: return DType::kFloat16;
    case ffi::DataType::BF16: return DType::kBFloat16;
    default:
      return ffi::Unexpected(ffi::Error::InvalidArgument(
          "jax-mea supports float32, float16 and bfloat16 inputs only"));
  }
}

inline ffi::Error Mismatch(const std::string& what) {
  return ffi::Error::InvalidArgument("jax-mea attention: " + what);
}

inline ffi::ErrorOr<AttentionParams> MakeAttentionParams(
    ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v, ffi::AnyBuffer mask,
    ffi::Buffer<ffi::S32> kv_lengths, ffi::Buffer<ffi::S32> causal_offsets,
    ffi::Result<ffi::AnyBuffer> out, const AttentionAttrs& a,
    ffi::AnyBuffer* lse = nullptr) {
  auto qt = DescribeTensor("q", q.dimensions(), a.q_layout);
  auto kt = DescribeTensor("k", k.dimensions(), a.k_layout);
  auto vt = DescribeTensor("v", v.dimensions(), a.v_layout);
  auto ot = DescribeTensor("out", out->dimensions(), a.out_layout);
  for (auto* t : {&qt, &kt, &vt, &ot}) {
    if (t->has_error()) return ffi::Unexpected(t->error());
  }
  auto dtype = ToDType(q.element_type());
  if (dtype.has_error()) return ffi::Unexpected(dtype.error());
  if (k.element_type() != q.element_type() || v.element_type() != q.element_type() ||
      out->element_type() != q.element_type()) {
    return ffi::Unexpected(Mismatch("q, k, v and out must share one dtype"));
  }

  AttentionParams p;
  p.dtype = *dtype;
  p.batch = static_cast<int>(qt->batch);
  p.num_heads = static_cast<int>(qt->heads);
  p.q_len = static_cast<int>(qt->seq);
  p.head_size = static_cast<int>(qt->dim);
  p.num_kv_heads = static_cast<int>(kt->heads);
  p.kv_capacity = static_cast<int>(kt->seq);
  p.v_head_size = static_cast<int>(vt->dim);
  if (kt->batch != p.batch || vt->batch != p.batch || ot->batch != p.batch) {
    return ffi::Unexpected(Mismatch("q, k, v, out batch sizes differ"));
  }
  if (p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0 || vt->heads != p.num_kv_heads) {
    return ffi::Unexpected(Mismatch("query heads must be a multiple of k/v heads"));
  }
  if (kt->dim != p.head_size || vt->seq != p.kv_capacity || ot->heads != p.num_heads ||
      ot->seq != p.q_len || ot->dim != p.v_head_size) {
    return ffi::Unexpected(Mismatch("inconsistent q " + DimsToString(q.dimensions()) + ", k " +
                                    DimsToString(k.dimensions()) + ", v " +
                                    DimsToString(v.dimensions()) + ", out " +
                                    DimsToString(out->dimensions())));
  }
  p.q = q.untyped_data();
  p.k = k.untyped_data();
  p.v = v.untyped_data();
  p.out = out->untyped_data();
  p.q_strides = qt->strides;
  p.k_strides = kt->strides;
  p.v_strides = vt->strides;
  p.out_strides = ot->strides;

  if (a.has_kv_lengths) {
    if (kv_lengths.element_count() != static_cast<size_t>(p.batch)) {
      return ffi::Unexpected(Mismatch("kv_lengths must have one entry per batch"));
    }
    p.kv_lengths = kv_lengths.typed_data();
  }
  if (a.has_causal_offsets) {
    if (causal_offsets.element_count() != static_cast<size_t>(p.batch)) {
      return ffi::Unexpected(Mismatch("causal_offsets must have one entry per batch"));
    }
    p.causal_offsets = causal_offsets.typed_data();
  }
  p.causal_offset = static_cast<int>(a.causal_offset);
  p.is_causal = a.is_causal;
  // Window sizes past the int range bound nothing (or everything) all the same.
  auto window = [](int64_t w) {
    return static_cast<int>(w > kUnboundedWindow ? kUnboundedWindow
                                                 : (w < -kUnboundedWindow ? -kUnboundedWindow : w));
  };
  p.left_window = window(a.left_window);
  p.right_window = window(a.right_window);
  p.scale = a.scale;
  if (!(a.softcap >= 0.f)) {
    return ffi::Unexpected(Mismatch("softcap must be >= 0 (0: off), got " +
                                    std::to_string(a.softcap)));
  }
  p.softcap = a.softcap;

  if (a.mask_kind < static_cast<int64_t>(MaskKind::kNone) ||
      a.mask_kind > static_cast<int64_t>(MaskKind::kAdditive)) {
    return ffi::Unexpected(Mismatch("unknown mask kind " + std::to_string(a.mask_kind)));
  }
  p.mask_kind = static_cast<MaskKind>(a.mask_kind);
  if (p.mask_kind != MaskKind::kNone) {
    auto md = mask.dimensions();
    bool kind_ok = p.mask_kind == MaskKind::kBool ? mask.element_type() == ffi::DataType::PRED
                                                  : mask.element_type() == q.element_type();
    if (!kind_ok || md.size() != 4) {
      return ffi::Unexpected(Mismatch("mask must be rank 4, bool or of the input dtype"));
    }
    const int64_t want[3] = {p.batch, p.num_heads, p.q_len};
    for (int i = 0; i < 3; ++i) {
      if (md[i] != 1 && md[i] != want[i]) {
        return ffi::Unexpected(Mismatch("mask " + DimsToString(md) + " does not broadcast"));
      }
    }
    p.mask = mask.untyped_data();
    p.mask_len = static_cast<int>(md[3]);
    p.mask_q_stride = md[2] == 1 ? 0 : md[3];
    p.mask_head_stride = md[1] == 1 ? 0 : md[2] * md[3];
    p.mask_batch_stride = md[0] == 1 ? 0 : md[1] * md[2] * md[3];
  }
  // The log-sum-exp result: empty when not asked for (the primitive's with_lse).
  if (lse != nullptr && lse->element_count() != 0) {
    const size_t rows = static_cast<size_t>(p.batch) * p.num_heads * p.q_len;
    if (lse->element_type() != ffi::DataType::F32 || lse->element_count() != rows) {
      return ffi::Unexpected(Mismatch("lse must be float32 [B, Nq, Sq], got " +
                                      DimsToString(lse->dimensions())));
    }
    p.lse = static_cast<float*>(lse->untyped_data());
  }
  return p;
}

// The backward call: the forward's operands and results (q, k, v, mask,
// kv_lengths, causal_offsets, out, lse), dout -> dq, dk, dv (in q's, k's and
// v's layouts and dtype) and dmask (float32 [B, Nq, Sq, mask_len] with an
// additive mask, empty otherwise).
inline ffi::ErrorOr<AttentionBackwardParams> MakeAttentionBackwardParams(
    ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v, ffi::AnyBuffer mask,
    ffi::Buffer<ffi::S32> kv_lengths, ffi::Buffer<ffi::S32> causal_offsets, ffi::AnyBuffer out,
    ffi::AnyBuffer lse, ffi::AnyBuffer dout, ffi::AnyBuffer& dq, ffi::AnyBuffer& dk,
    ffi::AnyBuffer& dv, ffi::AnyBuffer& dmask, const AttentionAttrs& a) {
  auto fwd = MakeAttentionParams(q, k, v, mask, kv_lengths, causal_offsets, out, a);
  if (fwd.has_error()) return ffi::Unexpected(fwd.error());
  AttentionBackwardParams p;
  p.fwd = *fwd;
  const size_t rows = static_cast<size_t>(p.fwd.batch) * p.fwd.num_heads * p.fwd.q_len;
  if (lse.element_type() != ffi::DataType::F32 || lse.element_count() != rows) {
    return ffi::Unexpected(Mismatch("backward: lse must be float32 [B, Nq, Sq], got " +
                                    DimsToString(lse.dimensions())));
  }
  p.lse = static_cast<const float*>(lse.untyped_data());
  // The gradients and dout have the shapes and dtype of q, k, v and out.
  const std::pair<ffi::AnyBuffer*, ffi::AnyBuffer*> same[] = {
      {&dq, &q}, {&dk, &k}, {&dv, &v}, {&dout, &out}};
  for (auto [grad, like] : same) {
    auto gd = grad->dimensions(), ld = like->dimensions();
    if (grad->element_type() != like->element_type() || gd.size() != ld.size() ||
        !std::equal(gd.begin(), gd.end(), ld.begin())) {
      return ffi::Unexpected(Mismatch("backward: a gradient " + DimsToString(gd) +
                                      " does not match its operand " + DimsToString(ld)));
    }
  }
  p.dout = dout.untyped_data();
  p.dout_strides = p.fwd.out_strides;
  p.dq = dq.untyped_data();
  p.dk = dk.untyped_data();
  p.dv = dv.untyped_data();
  p.dq_strides = p.fwd.q_strides;
  p.dk_strides = p.fwd.k_strides;
  p.dv_strides = p.fwd.v_strides;
  if (p.fwd.mask_kind == MaskKind::kAdditive) {
    if (dmask.element_type() != ffi::DataType::F32 ||
        dmask.element_count() != rows * static_cast<size_t>(p.fwd.mask_len)) {
      return ffi::Unexpected(Mismatch("backward: dmask must be float32 [B, Nq, Sq, mask_len], "
                                      "got " + DimsToString(dmask.dimensions())));
    }
    p.dmask = static_cast<float*>(dmask.untyped_data());
  }
  return p;
}

// `past` buffers are null for append (the destination already holds the past).
inline ffi::ErrorOr<KvCopyParams> MakeKvCopyParams(
    const ffi::AnyBuffer* past_k, const ffi::AnyBuffer* past_v, ffi::AnyBuffer new_k,
    ffi::AnyBuffer new_v, const ffi::Buffer<ffi::S32>* dst_starts, ffi::AnyBuffer& dst_k,
    ffi::AnyBuffer& dst_v, const KvCopyAttrs& a) {
  const int64_t bnsh = static_cast<int64_t>(Layout::kBNSH);
  auto nk = DescribeTensor("new key", new_k.dimensions(), a.new_layout);
  auto nv = DescribeTensor("new value", new_v.dimensions(), a.new_layout);
  auto dk = DescribeTensor("key cache", dst_k.dimensions(), bnsh);
  auto dv = DescribeTensor("value cache", dst_v.dimensions(), bnsh);
  for (auto* t : {&nk, &nv, &dk, &dv}) {
    if (t->has_error()) return ffi::Unexpected(t->error());
  }
  auto dtype = ToDType(new_k.element_type());
  if (dtype.has_error()) return ffi::Unexpected(dtype.error());
  for (ffi::DataType t : {new_v.element_type(), dst_k.element_type(), dst_v.element_type()}) {
    if (t != new_k.element_type()) return ffi::Unexpected(Mismatch("KV copy dtypes differ"));
  }
  KvCopyParams p;
  p.dtype = *dtype;
  p.batch = static_cast<int>(dk->batch);
  p.num_kv_heads = static_cast<int>(dk->heads);
  p.head_size = static_cast<int>(dk->dim);
  p.v_head_size = static_cast<int>(dv->dim);
  p.dst_capacity = static_cast<int>(dk->seq);
  p.num_new = static_cast<int>(nk->seq);
  bool same = nk->batch == p.batch && nv->batch == p.batch && dv->batch == p.batch &&
              nk->heads == p.num_kv_heads && nv->heads == p.num_kv_heads &&
              dv->heads == p.num_kv_heads && nk->dim == p.head_size &&
              nv->dim == p.v_head_size && nv->seq == p.num_new && dv->seq == p.dst_capacity;
  if (!same) {
    return ffi::Unexpected(Mismatch("KV copy: new key " + DimsToString(new_k.dimensions()) +
                                    " / value " + DimsToString(new_v.dimensions()) +
                                    " do not match the cache " +
                                    DimsToString(dst_k.dimensions()) + " / " +
                                    DimsToString(dst_v.dimensions())));
  }
  p.new_k = new_k.untyped_data();
  p.new_v = new_v.untyped_data();
  p.new_k_strides = nk->strides;
  p.new_v_strides = nv->strides;
  p.dst_k = dst_k.untyped_data();
  p.dst_v = dst_v.untyped_data();
  p.dst_k_strides = dk->strides;
  p.dst_v_strides = dv->strides;

  if (past_k != nullptr) {
    auto pk = DescribeTensor("past key", past_k->dimensions(), bnsh);
    auto pv = DescribeTensor("past value", past_v->dimensions(), bnsh);
    if (pk.has_error()) return ffi::Unexpected(pk.error());
    if (pv.has_error()) return ffi::Unexpected(pv.error());
    if (pk->batch != p.batch || pk->heads != p.num_kv_heads || pk->dim != p.head_size ||
        pv->batch != p.batch || pv->heads != p.num_kv_heads || pv->dim != p.v_head_size ||
        pv->seq != pk->seq || pk->seq + p.num_new != p.dst_capacity) {
      return ffi::Unexpected(Mismatch("KV concat: past does not match present"));
    }
    p.past_k = past_k->untyped_data();
    p.past_v = past_v->untyped_data();
    p.past_k_strides = pk->strides;
    p.past_v_strides = pv->strides;
    p.past_len = static_cast<int>(pk->seq);
  }
  if (dst_starts != nullptr) {
    if (dst_starts->element_count() != static_cast<size_t>(p.batch)) {
      return ffi::Unexpected(Mismatch("KV append: lengths must have one entry per batch"));
    }
    p.dst_starts = dst_starts->typed_data();
  }
  return p;
}

// KV concat: present = concat(past, new).
inline ffi::ErrorOr<KvCopyParams> MakeKvConcatParams(ffi::AnyBuffer past_k, ffi::AnyBuffer past_v,
                                                     ffi::AnyBuffer new_k, ffi::AnyBuffer new_v,
                                                     ffi::AnyBuffer& present_k,
                                                     ffi::AnyBuffer& present_v,
                                                     const KvCopyAttrs& a) {
  return MakeKvCopyParams(&past_k, &past_v, new_k, new_v, nullptr, present_k, present_v, a);
}

// KV append: the outputs must alias the cache inputs (input_output_aliases), so
// only the new tokens are written; without donation XLA has copied the cache.
inline ffi::ErrorOr<KvCopyParams> MakeKvAppendParams(
    ffi::AnyBuffer cache_k, ffi::AnyBuffer cache_v, ffi::AnyBuffer new_k, ffi::AnyBuffer new_v,
    ffi::Buffer<ffi::S32> starts, ffi::AnyBuffer& out_k, ffi::AnyBuffer& out_v,
    const KvCopyAttrs& a) {
  if (out_k.untyped_data() != cache_k.untyped_data() ||
      out_v.untyped_data() != cache_v.untyped_data()) {
    return ffi::Unexpected(
        ffi::Error::Internal("jax-mea KV append: the outputs must alias the cache inputs"));
  }
  return MakeKvCopyParams(nullptr, nullptr, new_k, new_v, &starts, out_k, out_v, a);
}

}  // namespace jax_mea

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(
    jax_mea::AttentionAttrs, ::xla::ffi::StructMember<int64_t>("q_layout"),
    ::xla::ffi::StructMember<int64_t>("k_layout"), ::xla::ffi::StructMember<int64_t>("v_layout"),
    ::xla::ffi::StructMember<int64_t>("out_layout"),
    ::xla::ffi::StructMember<int64_t>("mask_kind"),
    ::xla::ffi::StructMember<bool>("has_kv_lengths"),
    ::xla::ffi::StructMember<bool>("has_causal_offsets"),
    ::xla::ffi::StructMember<int64_t>("causal_offset"),
    ::xla::ffi::StructMember<bool>("is_causal"), ::xla::ffi::StructMember<int64_t>("left_window"),
    ::xla::ffi::StructMember<int64_t>("right_window"), ::xla::ffi::StructMember<float>("scale"),
    ::xla::ffi::StructMember<float>("softcap"));

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_mea::KvCopyAttrs,
                                      ::xla::ffi::StructMember<int64_t>("new_layout"));

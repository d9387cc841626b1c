// Host side of the sm_90a attention forward (attention_fwd_sm90.cuh): what it
// takes, its tensor maps and its launch. Compiled for sm_90a only
// (-gencode=arch=compute_90a,code=sm_90a, CMakeLists.txt); LaunchAttentionForward
// (attention_fwd.cu) calls it on a compute capability 9.x device when
// Sm90ForwardUnsupported is empty (unless JAX_MEA_SM90_FORWARD=0).
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "kernels/attention.h"
#include "kernels/attention_fwd_sm90.cuh"
#include "kernels/head_dims.h"
#include "kernels/launch_utils.h"
#include "kernels/tensor_map.h"

namespace jax_mea::cuda {
namespace {

// GQA with few query rows (q_len <= 64, no mask tensor): a CTA takes several query
// heads of one kv group, each in head_rows rows (Sm90Segment), instead of one head
// whose q_len rows leave most of the CTA's kBlockM empty (the empty rows cost as
// much tensor time as full ones). head_rows: the smallest power of two >= q_len,
// at least 8 (a swizzle atom), doubled while a CTA still holds the whole group at
// the doubled size; packs: CTAs per kv head. Unpacked: {64, 0}. With
// Pack::kWhereFewerWaves, only where the packed grid needs fewer waves of CTAs on
// `sm_count` SMs (one CTA per SM) than the unpacked one.
struct Sm90Packing {
  int head_rows = 64, packs = 0;
};
Sm90Packing PackingOf(const AttentionParams& p, int block_m, Sm90Config::Pack mode,
                      int sm_count) {
  Sm90Packing r;
  const int group = p.group_size();
  if (mode == Sm90Config::Pack::kOff || group < 2 || p.q_len > 64 ||
      p.mask_kind != MaskKind::kNone) {
    return r;
  }
  Sm90Packing packed;
  packed.head_rows = 8;
  while (packed.head_rows < p.q_len) packed.head_rows *= 2;
  // (Halving the heads per CTA only while they still hold the group: a group of 3 at
  // q_len 16 takes 32-row segments, 4 per CTA, one CTA per kv head.)
  while (packed.head_rows < 64 && block_m / (2 * packed.head_rows) >= group) {
    packed.head_rows *= 2;
  }
  const int heads_per_cta = block_m / packed.head_rows;
  packed.packs = (group + heads_per_cta - 1) / heads_per_cta;
  if (mode == Sm90Config::Pack::kWhereFewerWaves) {
    const int64_t sms = std::max(sm_count, 1);
    auto waves = [&](int64_t ctas) { return (ctas + sms - 1) / sms; };
    const int64_t unpacked_ctas = int64_t{p.batch} * p.num_heads;  // q_len <= 64 < block_m
    const int64_t packed_ctas = int64_t{p.batch} * p.num_kv_heads * packed.packs;
    if (waves(packed_ctas) >= waves(unpacked_ctas)) return r;
  }
  return packed;
}

// CTAs of a persistent grid; 0 where the SM count cannot be read (no persistence).
int PersistentCtas(const Sm90Config& c) {
  return c.persistent_ctas > 0 ? c.persistent_ctas : CurrentDeviceSmCount();
}

// A persistent grid (the kernel's kPersistent: one CTA per SM walks the blocks)
// where every block has the same work, every row seeing every key (no causal mask,
// window, lengths, per-batch offsets or mask tensor, and an offset within the
// windows' reach), and there is more than one wave of blocks:
// the producer then loads a block's Q and first tiles while the consumers finish
// the previous one. H200, B2 N32 H128 bf16: see Sm90FwdTraits::kPersistentFits.
bool PersistentFits(const AttentionParams& p, int64_t blocks, const Sm90Config& c) {
  const int ctas = PersistentCtas(c);
  // Every block sees every key (one that saw none would break the persistent
  // kernel's walk; score.h reads an unbounded window literally, so a query offset near
  // the int32 ends can still cut keys).
  return c.persistent && ctas > 0 && blocks > ctas && p.kv_lengths == nullptr &&
         p.causal_offsets == nullptr && AllRowsSeeAllKeys(p, p.causal_offset, p.kv_capacity);
}

// One instance's launch; kPacked: `pack` holds packs > 0; kPersistent: at most
// one CTA per SM (separate instances, so that the others keep their code).
template <typename T, int kD, int kDv, int kConsumerWGs, bool kPipelined, bool kMask,
          bool kPingPong, bool kPacked, bool kPersistent = false>
cudaError_t LaunchSm90Instance(const AttentionParams& p, cudaStream_t stream,
                               const Sm90Packing& pack, int persistent_ctas = 0) {
  using Tr = Sm90FwdTraits<kD, kDv, kConsumerWGs>;
  auto kernel = AttentionFwdSm90Kernel<T, kD, kDv, kConsumerWGs, kPipelined, kMask, kPingPong,
                                       kPacked, kPersistent>;
  constexpr int kSmem = kPersistent ? Tr::kSmemBytesPersistent : Tr::kSmemBytes;
  static DeviceFlags smem_set;
  if (cudaError_t err = EnsureDynamicSmem(kernel, kSmem, smem_set); err != cudaSuccess) {
    return err;
  }
  Sm90FwdArgs a;
  a.head_rows = pack.head_rows;
  a.packs = pack.packs;
  if (!EncodeBoxMap(&a.tmap_q, p.dtype, p.q, p.batch, p.num_heads, p.q_len, p.head_size,
                    p.q_strides, kPacked ? a.head_rows : Tr::kBlockM) ||
      !EncodeBoxMap(&a.tmap_k, p.dtype, p.k, p.batch, p.num_kv_heads, p.kv_capacity,
                    p.head_size, p.k_strides, Tr::kBlockN) ||
      !EncodeBoxMap(&a.tmap_v, p.dtype, p.v, p.batch, p.num_kv_heads, p.kv_capacity,
                    p.v_head_size, p.v_strides, Tr::kBlockN) ||
      !EncodeBoxMap(&a.tmap_o, p.dtype, p.out, p.batch, p.num_heads, p.q_len, p.v_head_size,
                    p.out_strides, kPacked ? a.head_rows : 64)) {
    return cudaErrorNotSupported;  // the caller falls back to the sm_80 kernel
  }
  a.grid = MakeFwdGrid(p, Tr::kBlockM);
  a.logits = MakeLogits(p, kLog2e, /*q_scaled=*/false);
  int64_t blocks = kPacked ? int64_t{p.batch} * p.num_kv_heads * a.packs : a.grid.blocks;
  if (blocks <= 0) return cudaSuccess;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  if constexpr (kPersistent) blocks = std::min<int64_t>(blocks, persistent_ctas);
  kernel<<<static_cast<unsigned>(blocks), Tr::kThreads, kSmem, stream>>>(p, a);
  return cudaGetLastError();
}

// The packed instance where PackingOf packs the call, the persistent one where
// PersistentFits, else the one CTA per block.
template <typename T, int kD, int kDv, int kConsumerWGs, bool kPipelined, bool kMask,
          bool kPingPong>
cudaError_t LaunchSm90(const AttentionParams& p, cudaStream_t stream, const Sm90Config& c) {
  using Tr = Sm90FwdTraits<kD, kDv, kConsumerWGs>;
  // (PackingOf never packs a call with a mask tensor; kMask is that call's instance.)
  const Sm90Packing pack = PackingOf(p, Tr::kBlockM, c.pack_gqa, CurrentDeviceSmCount());
  if constexpr (!kMask) {
    if (pack.packs > 0) {
      return LaunchSm90Instance<T, kD, kDv, kConsumerWGs, kPipelined, false, kPingPong, true>(
          p, stream, pack);
    }
  }
  // (Pipelined only: sm90_check --simple checks the one-step-at-a-time kernel, not
  // a persistent version of it.)
  if constexpr (!kMask && !kPingPong && kPipelined && Tr::kPersistentFits) {
    if (PersistentFits(p, MakeFwdGrid(p, Tr::kBlockM).blocks, c)) {
      return LaunchSm90Instance<T, kD, kDv, kConsumerWGs, kPipelined, false, false, false,
                                true>(p, stream, pack, PersistentCtas(c));
    }
  }
  return LaunchSm90Instance<T, kD, kDv, kConsumerWGs, kPipelined, kMask, kPingPong, false>(
      p, stream, pack);
}

template <typename T, int kD, int kDv, int kConsumerWGs, bool kPipelined, bool kPingPong>
cudaError_t LaunchSm90Masked(const AttentionParams& p, cudaStream_t stream, const Sm90Config& c) {
  return p.mask_kind != MaskKind::kNone
             ? LaunchSm90<T, kD, kDv, kConsumerWGs, kPipelined, true, kPingPong>(p, stream, c)
             : LaunchSm90<T, kD, kDv, kConsumerWGs, kPipelined, false, kPingPong>(p, stream, c);
}

// The rows the ping-pong speeds up: H192/Hv128 (bf16, B2 S4096 N32 on the H200,
// session 12: causal 0.581 against 0.604 ms); at H128 it measured 1-3% slower,
// at H256 4-5% slower, at H64 level.
template <typename Row>
constexpr bool kPingPongByRow = Row::kHP == 192;

// The first SM90 row of the head-dim table (kernels/head_dims.h) that holds (H, Hv);
// the 64x64 row with c.h64_consumers consumer warpgroups, the others with 2.
template <typename T, bool kPipelined>
cudaError_t DispatchSm90(const AttentionParams& p, cudaStream_t stream, const Sm90Config& c) {
  using PingPong = Sm90Config::PingPong;
  cudaError_t err = cudaErrorInvalidValue;  // no row holds (H, Hv)
  HeadDimSwitch(p.head_size, p.v_head_size, [&](auto row) {
    using Row = decltype(row);
    if constexpr (Row::kSm90) {
      // Three consumers without a mask tensor only: its loads spill at 160 registers.
      constexpr bool kH64 = Row::kHP == 64 && Row::kHVP == 64;
      if (kH64 && c.h64_consumers == 3 && p.mask_kind == MaskKind::kNone) {
        err = LaunchSm90<T, Row::kHP, Row::kHVP, kH64 ? 3 : 2, kPipelined, false, false>(
            p, stream, c);
      } else if (kPipelined && (c.pingpong == PingPong::kOn ||
                                (c.pingpong == PingPong::kByRow && kPingPongByRow<Row>))) {
        err = LaunchSm90Masked<T, Row::kHP, Row::kHVP, 2, kPipelined, kPipelined>(p, stream, c);
      } else {
        err = LaunchSm90Masked<T, Row::kHP, Row::kHVP, 2, kPipelined, false>(p, stream, c);
      }
      return true;
    } else {
      return false;
    }
  });
  return err;
}

template <bool kPipelined>
cudaError_t DispatchDtype(const AttentionParams& p, cudaStream_t stream, const Sm90Config& c) {
  switch (p.dtype) {
    case DType::kFloat16: return DispatchSm90<__half, kPipelined>(p, stream, c);
    case DType::kBFloat16: return DispatchSm90<__nv_bfloat16, kPipelined>(p, stream, c);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

std::string Sm90ForwardUnsupported(const AttentionParams& p) {
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return "float16 / bfloat16 only";
  }
  const bool has_row = HeadDimSwitch(p.head_size, p.v_head_size,
                                     [](auto row) { return decltype(row)::kSm90; });
  if (!has_row || p.head_size % 8 != 0 || p.v_head_size % 8 != 0 || p.head_size <= 0 ||
      p.v_head_size <= 0) {
    return "head sizes: multiples of 8 within an SM90 row of the head-dim table (got q/k " +
           std::to_string(p.head_size) + ", v " + std::to_string(p.v_head_size) + ")";
  }
  if (p.kv_capacity <= 0) return "an empty key sequence runs on the sm_80 kernel";
  if (!Aligned16Strided(p.q, p.q_strides) || !Aligned16Strided(p.k, p.k_strides) ||
      !Aligned16Strided(p.v, p.v_strides) || !Aligned16Strided(p.out, p.out_strides)) {
    return "q, k, v and out need 16-byte aligned addresses and strides";
  }
  const int64_t blocks = static_cast<int64_t>((p.q_len + 127) / 128) * p.num_heads * p.batch;
  if (blocks > INT_MAX) return "too many query blocks";
  return {};
}

// The defaults, with the environment's overrides (read once): JAX_MEA_SM90_H64_CONSUMERS=2
// (the previous H64 configuration, kept for A/B and as an escape hatch),
// JAX_MEA_SM90_PINGPONG=1 / =0 (the ping-pong on every row / none),
// JAX_MEA_SM90_PACK=0 / =1 (one query head per CTA, also for GQA with q_len <= 64 /
// packing wherever the group allows it, also where it saves no wave),
// JAX_MEA_SM90_PERSISTENT=0 (one CTA per block also where PersistentFits).
Sm90Config Sm90EnvConfig() {
  static const Sm90Config c = [] {
    auto is = [](const char* name, const char* value) {
      const char* v = std::getenv(name);
      return v != nullptr && std::string(v) == value;
    };
    Sm90Config r;
    r.h64_consumers = is("JAX_MEA_SM90_H64_CONSUMERS", "2") ? 2 : 3;
    r.pingpong = is("JAX_MEA_SM90_PINGPONG", "1")   ? Sm90Config::PingPong::kOn
                 : is("JAX_MEA_SM90_PINGPONG", "0") ? Sm90Config::PingPong::kOff
                                                    : Sm90Config::PingPong::kByRow;
    r.persistent = !is("JAX_MEA_SM90_PERSISTENT", "0");
    r.pack_gqa = is("JAX_MEA_SM90_PACK", "0")   ? Sm90Config::Pack::kOff
                 : is("JAX_MEA_SM90_PACK", "1") ? Sm90Config::Pack::kAlways
                                                : Sm90Config::Pack::kWhereFewerWaves;
    return r;
  }();
  return c;
}

cudaError_t LaunchAttentionForwardSm90(const AttentionParams& p, cudaStream_t stream) {
  return DispatchDtype<true>(p, stream, Sm90EnvConfig());
}

cudaError_t LaunchAttentionForwardSm90With(const AttentionParams& p, cudaStream_t stream,
                                           const Sm90Config& c) {
  return DispatchDtype<true>(p, stream, c);
}

cudaError_t LaunchAttentionForwardSm90Simple(const AttentionParams& p, cudaStream_t stream) {
  return DispatchDtype<false>(p, stream, Sm90EnvConfig());
}

}  // namespace jax_mea::cuda

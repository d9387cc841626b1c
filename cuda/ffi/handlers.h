// Declarations of the FFI handler symbols, per platform. module.cc hands them to
// Python as capsules; jax_mea/_ffi.py registers them with XLA.
#pragma once

#include "xla/ffi/api/c_api.h"

namespace jax_mea {

// Custom-call target names (the Python side uses the same strings).
inline constexpr const char* kAttentionTarget = "jax_mea_attention";
inline constexpr const char* kAttentionBackwardTarget = "jax_mea_attention_bwd";
inline constexpr const char* kKvConcatTarget = "jax_mea_kv_concat";
inline constexpr const char* kDecodeStepTarget = "jax_mea_decode_step";

}  // namespace jax_mea

extern "C" {
XLA_FFI_Error* JaxMeaAttentionCpu(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaAttentionBackwardCpu(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaKvConcatCpu(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaDecodeStepCpu(XLA_FFI_CallFrame* call_frame);
#ifdef JAX_MEA_WITH_CUDA
XLA_FFI_Error* JaxMeaAttentionCuda(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaAttentionBackwardCuda(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaKvConcatCuda(XLA_FFI_CallFrame* call_frame);
XLA_FFI_Error* JaxMeaDecodeStepCuda(XLA_FFI_CallFrame* call_frame);
#endif
}

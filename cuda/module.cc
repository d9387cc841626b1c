// nanobind module jax_mea._ext: hands the FFI handlers to Python as capsules
// and reports what was built.
#include <nanobind/nanobind.h>

#include "ffi/handlers.h"
#include "kernels/head_dims.h"

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule Capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

}  // namespace

NB_MODULE(_ext, m) {
  m.doc() = "jax-mea native kernels (XLA FFI handlers)";
  m.def("cpu_targets", []() {
    nb::dict d;
    d[jax_mea::kAttentionTarget] = Capsule(JaxMeaAttentionCpu);
    d[jax_mea::kKvConcatTarget] = Capsule(JaxMeaKvConcatCpu);
    d[jax_mea::kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCpu);
    return d;
  });
  m.def("cuda_targets", []() {
    nb::dict d;
#ifdef JAX_MEA_WITH_CUDA
    d[jax_mea::kAttentionTarget] = Capsule(JaxMeaAttentionCuda);
    d[jax_mea::kKvConcatTarget] = Capsule(JaxMeaKvConcatCuda);
    d[jax_mea::kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCuda);
#endif
    return d;
  });
  // Python checks it when lowering for CUDA (the CPU kernel takes any head size).
  m.attr("cuda_max_head_size") = jax_mea::cuda::kMaxHeadSize;
#ifdef JAX_MEA_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}

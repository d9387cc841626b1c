// nanobind module jax_mea._ext: hands the FFI handlers to Python as capsules,
// and owns the facts both sides of the language boundary use (target names,
// enum values, limits, the decode workspace bound): jax_mea/_ffi.py reads them
// here instead of typing them again.
#include <nanobind/nanobind.h>

#include "ffi/handlers.h"
#include "ffi/params_from_ffi.h"
#include "jax_mea/params.h"
#include "jax_mea/workspace.h"

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule Capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

template <typename E>
int64_t Value(E e) {
  return static_cast<int64_t>(e);
}

}  // namespace

NB_MODULE(_ext, m) {
  using namespace jax_mea;
  m.doc() = "jax-mea native kernels (XLA FFI handlers)";
  m.def("cpu_targets", []() {
    nb::dict d;
    d[kAttentionTarget] = Capsule(JaxMeaAttentionCpu);
    d[kKvConcatTarget] = Capsule(JaxMeaKvConcatCpu);
    d[kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCpu);
    return d;
  });
  m.def("cuda_targets", []() {
    nb::dict d;
#ifdef JAX_MEA_WITH_CUDA
    d[kAttentionTarget] = Capsule(JaxMeaAttentionCuda);
    d[kKvConcatTarget] = Capsule(JaxMeaKvConcatCuda);
    d[kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCuda);
#endif
    return d;
  });

  nb::dict targets;
  targets["attention"] = kAttentionTarget;
  targets["kv_concat"] = kKvConcatTarget;
  targets["decode_step"] = kDecodeStepTarget;
  m.attr("targets") = targets;

  nb::dict layouts;  // the layout attributes (params_from_ffi.h)
  layouts["BSNH"] = Value(Layout::kBSNH);
  layouts["BNSH"] = Value(Layout::kBNSH);
  m.attr("layouts") = layouts;

  nb::dict mask_kinds;  // the mask_kind attribute (params.h)
  mask_kinds["NONE"] = Value(MaskKind::kNone);
  mask_kinds["BOOL"] = Value(MaskKind::kBool);
  mask_kinds["ADDITIVE"] = Value(MaskKind::kAdditive);
  m.attr("mask_kinds") = mask_kinds;

  nb::dict limits;  // workspace.h
  limits["decode_max_splits"] = kDecodeMaxSplits;
  limits["decode_max_rows_per_kv_head"] = kDecodeMaxRowsPerKvHead;
  limits["decode_workspace_cap"] = kDecodeWorkspaceCap;
  m.attr("limits") = limits;

  m.def("decode_workspace_bytes", &DecodeWorkspaceBound, nb::arg("batch"), nb::arg("num_heads"),
        nb::arg("num_kv_heads"), nb::arg("q_len"), nb::arg("v_head_size"),
        "Bytes of workspace a CUDA attention call asks XLA for: an upper bound from the\n"
        "shapes alone, 0 where the decode kernel never takes the call. A dimension < 0 is\n"
        "unknown (a symbolic batch): the cap, unless the known ones rule the kernel out.");

#ifdef JAX_MEA_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}

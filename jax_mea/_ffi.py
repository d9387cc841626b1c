"""Loads the native extension and registers its XLA FFI targets.

The extension always carries the CPU kernels; the CUDA kernels are there when the
package was built with a CUDA toolkit (`built_with_cuda`). Registration happens
once, at import.
"""

from __future__ import annotations

import jax

from jax_mea import _ext

ATTENTION_TARGET = "jax_mea_attention"
KV_CONCAT_TARGET = "jax_mea_kv_concat"
DECODE_STEP_TARGET = "jax_mea_decode_step"

built_with_cuda: bool = bool(_ext.built_with_cuda)
# The largest head_size / v_head_size the CUDA kernels take (kMaxHeadSize in
# cuda/kernels/head_dims.h); the CPU kernel takes any.
cuda_max_head_size: int = int(_ext.cuda_max_head_size)

# Platforms (as jax's lowering registry names them) whose targets are registered.
lowering_platforms: list[str] = []


def _register() -> None:
    for name, capsule in _ext.cpu_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    lowering_platforms.append("cpu")
    if built_with_cuda:
        try:
            for name, capsule in _ext.cuda_targets().items():
                jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
        except Exception:  # a jaxlib without the CUDA plugin: the CPU path still works
            return
        lowering_platforms.append("cuda")


_register()

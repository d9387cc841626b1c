"""Loads the native extension, reads the facts it owns, registers its XLA FFI targets.

The extension always carries the CPU kernels; the CUDA kernels are there when the
package was built with a CUDA toolkit (`built_with_cuda`). Target names, enum
values, limits and the decode workspace bound come from the extension
(cuda/module.cc), so that C++ and Python cannot disagree. Registration happens
once, at import.
"""

from __future__ import annotations

import os

import jax

from jax_mea import _ext

ATTENTION_TARGET: str = _ext.targets["attention"]
ATTENTION_BWD_TARGET: str = _ext.targets["attention_bwd"]
KV_CONCAT_TARGET: str = _ext.targets["kv_concat"]
DECODE_STEP_TARGET: str = _ext.targets["decode_step"]
TARGETS: tuple[str, ...] = tuple(_ext.targets.values())

LAYOUTS: dict[str, int] = dict(_ext.layouts)
MASK_KINDS: dict[str, int] = dict(_ext.mask_kinds)
LIMITS: dict[str, int] = dict(_ext.limits)
decode_workspace_bytes = _ext.decode_workspace_bytes

built_with_cuda: bool = bool(_ext.built_with_cuda)
# The largest head_size / v_head_size the CUDA kernels take (kMaxHeadSize in
# cuda/kernels/head_dims.h); the CPU kernel takes any.
cuda_max_head_size: int = int(_ext.cuda_max_head_size)

# The CUDA backward kernel (cuda/kernels/attention_bwd.cuh) takes the backward of
# float16 / bfloat16 calls without an additive mask at the head dims below; other
# calls' CUDA backward is XLA (_unfused.py). JAX_MEA_CUDA_BACKWARD=0 at import sends
# every call to XLA (an escape hatch, and the A/B of the benchmarks).
cuda_backward_kernel: bool = os.environ.get("JAX_MEA_CUDA_BACKWARD", "1") != "0"
cuda_backward_head_dims: tuple[tuple[int, int], ...] = tuple(
    tuple(row) for row in _ext.cuda_backward_head_dims)
attention_bwd_workspace_bytes = _ext.attention_bwd_workspace_bytes

# Platforms (as jax's lowering registry names them) where the kernels are
# registered with XLA and can run. The lowerings exist for "cpu" and "cuda"
# either way, so that a CPU-only machine can export for both.
registered_platforms: list[str] = []


def _register() -> None:
    for name, capsule in _ext.cpu_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    registered_platforms.append("cpu")
    if built_with_cuda:
        try:
            for name, capsule in _ext.cuda_targets(backward=cuda_backward_kernel).items():
                jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
        except Exception:  # a jaxlib without the CUDA plugin: the CPU path still works
            return
        registered_platforms.append("cuda")


_register()

"""jax-mea: memory-efficient attention with KV-cache decode for JAX.

XLA FFI custom calls backed by CUDA kernels on NVIDIA GPUs and C++ kernels on
the CPU, with the semantics of the ONNX Attention operator (opset 24).
"""

from jax_mea import reference
from jax_mea.attention import dot_product_attention, onnx_attention
from jax_mea.cache import KVCache, decode_attention
from jax_mea.primitives import cuda_available, export_disabled_checks

__version__ = "0.1.0"

__all__ = [
    "KVCache",
    "cuda_available",
    "decode_attention",
    "export_disabled_checks",
    "dot_product_attention",
    "onnx_attention",
    "reference",
]

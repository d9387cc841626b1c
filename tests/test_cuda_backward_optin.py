"""The CUDA backward kernel's lowering (for CUDA, no GPU needed): on by default, off
with JAX_MEA_CUDA_BACKWARD=0, and only for the calls it takes (float16 / bfloat16,
its head-dim rows, no float bias); XLA otherwise."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import jax_mea
from jax_mea import _ffi


def _bwd_uses_kernel(dtype, head_size, bias=False):
    def f(q, k, v, b):
        out = jax_mea.dot_product_attention(q, k, v, bias=b if bias else None, is_causal=True)
        return out.astype(jnp.float32).sum()

    q = jax.ShapeDtypeStruct((2, 16, 4, head_size), dtype)
    k = jax.ShapeDtypeStruct((2, 16, 2, head_size), dtype)
    b = jax.ShapeDtypeStruct((2, 4, 16, 16), dtype)
    text = jax.jit(jax.grad(f, argnums=(0, 1, 2))).trace(q, k, k, b).lower(
        lowering_platforms=("cuda",)).as_text()
    return _ffi.ATTENTION_BWD_TARGET in text


@pytest.mark.parametrize("env,enabled", [(None, True), ("1", True), ("0", False)])
def test_on_by_default_and_off_with_the_escape_hatch(env, enabled):
    environ = {k: v for k, v in os.environ.items() if k != "JAX_MEA_CUDA_BACKWARD"}
    if env is not None:
        environ["JAX_MEA_CUDA_BACKWARD"] = env
    out = subprocess.run(
        [sys.executable, "-c", "from jax_mea import _ffi; print(_ffi.cuda_backward_kernel)"],
        env=environ, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(enabled)


def test_lowers_to_the_kernel_unless_turned_off(monkeypatch):
    monkeypatch.setattr(_ffi, "cuda_backward_kernel", True)
    assert _bwd_uses_kernel(jnp.bfloat16, 64)
    assert _bwd_uses_kernel(jnp.float16, 128)
    monkeypatch.setattr(_ffi, "cuda_backward_kernel", False)
    assert not _bwd_uses_kernel(jnp.bfloat16, 64)


@pytest.mark.parametrize("dtype,head_size,bias", [
    (jnp.float32, 64, False),   # float32: XLA
    (jnp.bfloat16, 192, False),  # no such row
    (jnp.bfloat16, 64, True),   # the bias gradient is XLA's
])
def test_calls_the_kernel_does_not_take_stay_on_xla(monkeypatch, dtype, head_size, bias):
    monkeypatch.setattr(_ffi, "cuda_backward_kernel", True)
    assert not _bwd_uses_kernel(dtype, head_size, bias)

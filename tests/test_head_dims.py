"""The head-dim table's limit (cuda/kernels/head_dims.h): the CPU kernel takes any
head size, and lowering for CUDA past the CUDA kernels' limit is an error naming it."""

import jax
import jax.numpy as jnp
import pytest

import jax_mea
from jax_mea import _ffi, reference
from jax_mea.primitives import check_cuda_head_sizes
from conftest import assert_close


def test_limit_comes_from_the_extension():
    assert _ffi.cuda_max_head_size == 256
    check_cuda_head_sizes(256, 256)
    with pytest.raises(ValueError, match=r"head sizes up to 256 .*head_size=264, v_head_size=8"):
        check_cuda_head_sizes(264, 8)


def test_cpu_takes_any_head_size(rng):
    with jax.default_device(jax.devices("cpu")[0]):
        q = jnp.asarray(rng.standard_normal((1, 3, 2, 320)), jnp.float32)
        k = jnp.asarray(rng.standard_normal((1, 5, 2, 320)), jnp.float32)
        v = jnp.asarray(rng.standard_normal((1, 5, 2, 300)), jnp.float32)
        assert_close(jax_mea.dot_product_attention(q, k, v),
                     reference.dot_product_attention(q, k, v), "float32")


@pytest.mark.gpu
def test_cuda_limit_is_a_lowering_error():
    x = jnp.ones((1, 3, 2, 264), jnp.bfloat16)
    with pytest.raises(ValueError, match="head sizes up to 256"):
        jax.jit(jax_mea.dot_product_attention)(x, x, x)

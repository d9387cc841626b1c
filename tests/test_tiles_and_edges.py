"""Past the CPU kernel's tiles, and edge values.

The CPU kernel works on tiles of 64 keys and on blocks of 64 query rows (heads
of a GQA group x positions); the cases here have several of each, partial last
ones included, so the online-softmax rescale between key tiles and every row of
every block are exercised (the rest of the suite stays under one tile). Then the
values at the edges: lengths past the keys given or negative, output rounding
ties, and options that must change nothing (softmax_precision).
"""

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jax_mea
from conftest import (DpaCase, OnnxCase, assert_same, call_onnx_attention, check_dpa_case,
                      check_onnx_case, make_onnx_inputs, np_dtype)

BIG = pytest.mark.parametrize("dtype", ["float32", "bfloat16"])

ONNX_TILES = {
    # GQA 4:1: 16 positions per block, 9 blocks; 60 + 150 keys, 4 tiles.
    "gqa-3d-past-causal-mask": OnnxCase(
        rank=3, batch=2, q_heads=8, kv_heads=2, q_len=130, kv_len=150, past_len=60,
        head_size=64, v_head_size=48, is_causal=True, mask="bool:B1Qt"),
    # MHA: a block of 64 positions and a partial one; ragged kv lengths.
    "mha-nonpad-float-mask-softcap": OnnxCase(
        batch=2, q_heads=2, kv_heads=2, q_len=100, kv_len=200, nonpad=(200, 77),
        mask="float:1NQT", softcap=2.0, head_size=32, v_head_size=32),
}


@BIG
@pytest.mark.parametrize("name", list(ONNX_TILES))
def test_onnx_past_the_tiles(rng, name, dtype):
    """Against onnx.reference."""
    check_onnx_case(jax_mea.onnx_attention, ONNX_TILES[name].replace(dtype=dtype), rng)


DPA_TILES = {
    # MQA 4:1, causal with a 150-key left window, one sequence cut at 131 keys.
    "mqa-causal-window-lengths": DpaCase(
        batch=2, q_len=200, kv_len=260, q_heads=4, kv_heads=1, head_size=64, v_head_size=64,
        is_causal=True, kv_lengths=(260, 131), window=(150, 0)),
    # MHA, Hv != H, softcap and bias over 300 keys, padded query rows.
    "mha-bias-softcap-asym": DpaCase(
        batch=1, q_len=70, kv_len=300, q_heads=2, kv_heads=2, head_size=32, v_head_size=80,
        bias="1NTS", softcap=5.0, q_lengths=(65,)),
}


@BIG
@pytest.mark.parametrize("name", list(DPA_TILES))
def test_dot_product_attention_past_the_tiles(rng, name, dtype):
    """Against jax.nn.dot_product_attention, or the float64 oracle."""
    check_dpa_case(jax_mea.dot_product_attention, DPA_TILES[name].replace(dtype=dtype), rng)


# --- Lengths out of range: clamped to [0, keys given] -----------------------------
# Sequence 0 gets the length past its keys: in BNSH its next keys in memory are
# another head's, real data, so a kernel reading past the length shows.


@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
def test_nonpad_kv_seqlen_out_of_range(rng, is_causal):
    """nonpad_kv_seqlen 9 with 7 keys reads the 7; -2 reads none (rows of 0)."""
    check_onnx_case(jax_mea.onnx_attention,
                    OnnxCase(nonpad=(9, -2), q_len=4, kv_len=7, is_causal=is_causal), rng)


@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
def test_dpa_lengths_out_of_range(rng, is_causal):
    check_dpa_case(jax_mea.dot_product_attention,
                   DpaCase(q_len=6, kv_len=8, kv_lengths=(11, -3), q_lengths=(9, -1),
                           is_causal=is_causal), rng)


# --- Output rounding ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_output_rounds_to_nearest_even(rng, dtype):
    """Two keys of equal score: each output is the exact mean of two values (float32
    holds it), here two neighbours in the dtype, so an exact tie, across the
    exponent range (float16 subnormals included). Rounding to the dtype must be to
    nearest, ties to even, as numpy's cast: bit for bit. (Not float32 subnormals,
    bfloat16's: XLA runs CPU code with denormals flushed to zero, its own too.)"""
    dt = np_dtype(dtype)
    info = ml_dtypes.finfo(dt)
    lowest = max(info.minexp - info.nmant, np.finfo(np.float32).minexp)
    exponents = rng.integers(lowest, info.maxexp - 2, 256)
    lo = (rng.uniform(1, 2, 256) * np.exp2(exponents) * rng.choice([-1, 1], 256)).astype(dt)
    bits = lo.view(np.uint16)
    hi = (bits + 1).astype(np.uint16).view(dt)  # the next value away from zero
    value = np.stack([lo, hi])[None, :, None, :]  # [B=1, S=2, K=1, Hv=256]
    key = np.zeros((1, 2, 1, 8), dt)  # every score 0
    query = rng.standard_normal((1, 3, 1, 8)).astype(dt)
    out = jax_mea.dot_product_attention(jnp.asarray(query), jnp.asarray(key), jnp.asarray(value))
    mean = (lo.astype(np.float64) + hi.astype(np.float64)) / 2
    assert_same(out, np.broadcast_to(mean.astype(dt), out.shape))


# --- Options that change nothing --------------------------------------------------


def test_softmax_precision_changes_nothing(rng):
    """softmax_precision (ONNX: the softmax's type) is accepted; the softmax is
    float32 always, so every value gives the output of None, bit for bit."""
    case = OnnxCase(dtype="float16", is_causal=True, mask="float:1NQT")
    inputs, attrs = make_onnx_inputs(case, rng)
    want = call_onnx_attention(jax_mea.onnx_attention, inputs, attrs)
    for precision in (1, 10, 11, 16):  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
        got = call_onnx_attention(jax_mea.onnx_attention, inputs,
                                  dict(attrs, softmax_precision=precision))
        for g, w in zip(got, want):
            assert_same(g, w, f"softmax_precision={precision}")

"""The score layer (cuda/include/jax_mea/score.h) against jax.nn.dot_product_attention:
window sizes read literally (negative ones too), and NaN at visible positions
reaching the output as in jax.nn.

Two documented differences: a row with no visible key gives 0 (jax.nn averages the
values), and keys past the kv length are never read, so a NaN there does not reach
the output (jax.nn multiplies them by 0).

The unmarked tests run on jax's default device; the `gpu` ones add shapes that take
each CUDA kernel (tensor-core and float32 forward, the split-KV decode kernel with
several splits, decode_attention's step)."""

import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
import jax_mea.reference
from conftest import (DpaCase, assert_close, check_dpa_case, f32, jax_dpa_oracle,
                      make_dpa_inputs, to_jnp)


def check(case, rng):
    return check_dpa_case(jax_mea.dot_product_attention, case, rng)


# ----------------------------------------------------------------------------
# Window sizes, read literally
# ----------------------------------------------------------------------------

WINDOWS = [(2, -1), (-1, 3), (1, -1), (-2, 4), (0, 0), 3, (5, -3)]


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
def test_window_literal(rng, window, is_causal):
    visible = check(DpaCase(q_len=9, kv_len=11, window=window, is_causal=is_causal), rng)
    if window == (2, -1):  # right = -1 excludes the diagonal: row 0 sees nothing
        assert not visible[:, 0].any() and visible[:, 1:].all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("q_len,kv_len", [(1, 300), (150, 300)], ids=["decode", "prefill"])
@pytest.mark.parametrize("window", [(40, -1), (-3, 60), (100, -30)], ids=str)
def test_window_literal_gpu(rng, window, q_len, kv_len, dtype):
    check(DpaCase(q_len=q_len, kv_len=kv_len, window=window, head_size=64, v_head_size=64,
                  dtype=dtype), rng)


def test_onnx_window_minus_one_is_unbounded(rng):
    """onnx_attention keeps ONNX's -1 = unbounded (read literally it would drop keys)."""
    q, k, v = (rng.standard_normal((1, 2, 5, 8)).astype(np.float32) for _ in range(3))
    free, _, _ = jax_mea.onnx_attention(q, k, v)
    minus_one, _, _ = jax_mea.onnx_attention(q, k, v, left_window_size=-1, right_window_size=-1)
    np.testing.assert_array_equal(np.asarray(minus_one), np.asarray(free))


# ----------------------------------------------------------------------------
# NaN at visible positions
# ----------------------------------------------------------------------------


def nan_parity(rng, case, poison):
    """Puts NaN into the inputs (poison(q, k, v) edits the numpy arrays) and checks
    that the output is NaN exactly where jax.nn's is, and close to it elsewhere;
    rows with no visible key must be 0."""
    args, kwargs = make_dpa_inputs(case, rng)
    q, k, v = (np.array(a) for a in args)
    poison(q, k, v)
    out = f32(jax_mea.dot_product_attention(*to_jnp((q, k, v)), **to_jnp(kwargs)))
    expected = jax_dpa_oracle((q, k, v), kwargs)
    nan = np.isnan(expected)
    assert nan.any(), "the case puts no NaN where jax.nn sees it"
    np.testing.assert_array_equal(np.isnan(out), nan)
    assert_close(np.where(nan, 0, out), np.where(nan, 0, expected), case.dtype)
    return out


NAN_CASES = {
    # Row 3 of query head 1 (any NaN in q: that row is NaN in every column).
    "q-row": lambda q, k, v: q.__setitem__((0, 3, 1, 5), np.nan),
    # Key 4 of kv head 0: with causal, rows >= 4 of its query heads see it.
    "k-visible": lambda q, k, v: k.__setitem__((1, 4, 0, 0), np.nan),
    # Value 2 of kv head 1, column 3: NaN in that column of every row seeing it.
    "v-visible": lambda q, k, v: v.__setitem__((0, 2, 1, 3), np.nan),
}


# Not a NaN value with causal: jax.nn spreads it to rows that do not see its key
# (0 * NaN), and so may the GPU's tensor cores, but not the CPU, which never reads it.
@pytest.mark.parametrize("what,is_causal", [
    ("q-row", False), ("q-row", True), ("k-visible", False), ("k-visible", True),
    ("v-visible", False)])
def test_nan_propagates(rng, what, is_causal):
    nan_parity(rng, DpaCase(batch=2, q_len=9, kv_len=9, is_causal=is_causal), NAN_CASES[what])


def test_nan_in_a_row_with_no_visible_key_gives_zero(rng):
    """A NaN query row with no key to see still gives 0 (no score is computed)."""
    case = DpaCase(batch=2, q_len=5, kv_len=7, kv_lengths=(0, 7))
    args, kwargs = make_dpa_inputs(case, rng)
    q = np.array(args[0])
    q[...] = np.nan
    out = f32(jax_mea.dot_product_attention(*to_jnp((q,) + args[1:]), **to_jnp(kwargs)))
    np.testing.assert_array_equal(out[0], 0)
    assert np.isnan(out[1]).all()


def test_nan_dropped_by_the_mask(rng):
    """A NaN score of a key a False mask entry drops stays dropped (jax.nn: where)."""
    case = DpaCase(q_len=4, kv_len=6, mask="11TS")
    args, kwargs = make_dpa_inputs(case, rng)
    k = np.array(args[1])
    k[:, 2] = np.nan
    kwargs["mask"] = np.ones((1, 1, 4, 6), bool)
    kwargs["mask"][..., 2] = False
    out = f32(jax_mea.dot_product_attention(*to_jnp((args[0], k, args[2])), **to_jnp(kwargs)))
    expected = jax_dpa_oracle((args[0], k, args[2]), kwargs)
    assert np.isfinite(expected).all()
    assert_close(out, expected, case.dtype)


def nan_past_length(rng, case):
    """Keys and values past the kv length are NaN: never read, so the output is
    jax.nn's with them zeroed (jax.nn itself gives NaN: 0 * NaN)."""
    args, kwargs = make_dpa_inputs(case, rng)
    q, k, v = (np.array(a) for a in args)
    lengths = kwargs["key_value_seq_lengths"]
    for b, n in enumerate(lengths):
        k[b, n:] = v[b, n:] = 0
    expected = jax_dpa_oracle((q, k, v), kwargs)
    for b, n in enumerate(lengths):
        k[b, n:] = v[b, n:] = np.nan
    out = f32(jax_mea.dot_product_attention(*to_jnp((q, k, v)), **to_jnp(kwargs)))
    assert_close(out, expected, case.dtype)


def test_nan_past_the_kv_length_is_never_read(rng):
    nan_past_length(rng, DpaCase(batch=3, q_len=4, kv_len=9, kv_lengths=(9, 5, 1)))


# ----------------------------------------------------------------------------
# The same on the GPU kernels
# ----------------------------------------------------------------------------

GPU_SHAPES = {  # q_len, kv_len, heads: the kernel each takes
    "decode-splits": dict(q_len=1, kv_len=700, q_heads=8, kv_heads=2),
    "decode-t4": dict(q_len=4, kv_len=300, q_heads=8, kv_heads=2),
    "forward": dict(q_len=70, kv_len=300, q_heads=4, kv_heads=2),
}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("shape", GPU_SHAPES.values(), ids=GPU_SHAPES.keys())
@pytest.mark.parametrize("where", ["q", "k", "v"])
def test_nan_propagates_gpu(rng, where, shape, dtype):
    case = DpaCase(batch=2, head_size=64, v_head_size=64, dtype=dtype, **shape)
    late = shape["kv_len"] - 5  # a key in the last split / tile

    def poison(q, k, v):
        if where == "q":
            q[1, shape["q_len"] - 1, 3, 7] = np.nan
        elif where == "k":
            k[0, late, 1, 9] = np.nan
        else:
            v[0, late, 1, 9] = np.nan

    nan_parity(rng, case, poison)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", GPU_SHAPES.values(), ids=GPU_SHAPES.keys())
def test_nan_past_the_kv_length_gpu(rng, shape, dtype):
    kv = shape["kv_len"]
    nan_past_length(rng, DpaCase(batch=3, head_size=64, v_head_size=64, dtype=dtype,
                                 kv_lengths=(kv, kv // 2 + 3, 1), **shape))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_nan_decode_step_gpu(rng, dtype):
    """decode_attention: a NaN query row is NaN, the other rows are not."""
    cache = jax_mea.KVCache.create(2, 512, 2, 64, dtype=dtype)
    k = jnp.asarray(rng.standard_normal((2, 300, 2, 64)), dtype)
    _, cache = jax_mea.decode_attention(jnp.zeros((2, 300, 8, 64), dtype), k, k, cache)
    q = np.asarray(rng.standard_normal((2, 1, 8, 64)), np.float32)
    q[0, 0, 5] = np.nan
    out, _ = jax_mea.decode_attention(jnp.asarray(q, dtype), k[:, :1], k[:, :1], cache)
    nan_rows = np.isnan(f32(out)).any(-1)
    expected = np.zeros_like(nan_rows)
    expected[0, 0, 5] = True
    np.testing.assert_array_equal(nan_rows, expected)


@pytest.mark.parametrize("fn", [jax_mea.dot_product_attention,
                                jax_mea.reference.dot_product_attention], ids=["jax_mea", "reference"])
def test_negative_softcap_is_an_error(fn):
    x = jnp.ones((1, 2, 2, 8), jnp.float32)
    with pytest.raises(ValueError, match="softcap must be >= 0"):
        fn(x, x, x, softcap=-1.0)

"""jax_mea.dot_product_attention gives jax.nn.dot_product_attention's answer for
the inputs jax.nn accepts, apart from the documented differences (README): rows
with no visible key give 0 (jax.nn averages the values), masked keys and values
are never read (a NaN there does not propagate), and the extra arguments.

One test per parity point of issue 16; test_dot_product_attention.py holds the
shape/mask/length grids."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
from conftest import (TOLERANCE, DpaCase, assert_close, check_dpa_case, f32, jax_dpa_oracle,
                      make_dpa_inputs, np_dtype, randn, to_jnp)

def check(case, rng, fn=jax_mea.dot_product_attention, edit=None):
    return check_dpa_case(fn, case, rng, edit=edit)


# --- scale -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_traced_scale(rng, dtype):
    """A traced scale (jax.nn accepts one) is folded into the query in float32 and
    rounded once to its dtype: in bfloat16 that rounding adds to the error (about
    1.2-1.7x jax.nn's own in bfloat16, mean over the output), within 2x of it."""
    case = DpaCase(q_len=16, kv_len=24, head_size=64, v_head_size=64, is_causal=True,
                   bias="B1TS", scale=0.3, dtype=dtype)
    args, kwargs = make_dpa_inputs(case, rng)
    scale = kwargs.pop("scale")

    @jax.jit
    def traced(q, k, v, scale, bias):
        return jax_mea.dot_product_attention(q, k, v, bias=bias, scale=scale, is_causal=True)

    out = traced(*to_jnp(args), jnp.float32(scale), jnp.asarray(kwargs["bias"]))
    static = jax_mea.dot_product_attention(*to_jnp(args), **to_jnp(kwargs), scale=scale)
    expected = jax_dpa_oracle(args, dict(kwargs, scale=scale))
    in_dtype = jax.nn.dot_product_attention(*to_jnp(args), **to_jnp(kwargs), scale=scale)
    assert out.dtype == np_dtype(dtype)
    assert_close(out, expected, dtype, "traced scale")

    def err(x):
        return float(np.mean(np.abs(f32(x) - expected)))

    assert err(out) <= 2 * max(err(in_dtype), err(static)) + 1e-6, (
        f"traced scale error {err(out):.3g}, jax.nn in {dtype} {err(in_dtype):.3g}, "
        f"static scale {err(static):.3g}")


def test_vmapped_scale(rng):
    """A scale vmapped over (a batched tracer) works as jax.nn's does."""
    args, _ = make_dpa_inputs(DpaCase(is_causal=True), rng)
    scales = jnp.asarray([0.1, 0.5, 2.0], jnp.float32)
    out = jax.vmap(lambda s: jax_mea.dot_product_attention(*to_jnp(args), scale=s,
                                                           is_causal=True))(scales)
    for i, s in enumerate(np.asarray(scales)):
        assert_close(out[i], jax_dpa_oracle(args, dict(scale=float(s), is_causal=True)),
                     "float32", f"scale {s}")


@pytest.mark.parametrize("scale", [-0.4, 0.0, 1e-50], ids=["negative", "zero", "tiny"])
def test_scale_any_sign(rng, scale):
    """jax.nn accepts any scale; a negative one is an exact sign flip of the query,
    zero (or one that is 0 in float32) gives the average of the visible values."""
    check(DpaCase(scale=scale, is_causal=True, mask="B1TS"), rng)


# --- empty sizes -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [
    dict(head_size=0, v_head_size=0), dict(q_heads=0), dict(q_len=0), dict(batch=0)],
    ids=["H=Hv=0", "N=0", "T=0", "B=0"])
def test_empty_sizes(rng, shape):
    """jax.nn accepts H = Hv = 0 (and other empty axes) with an empty result."""
    case = DpaCase(**shape)
    args, kwargs = make_dpa_inputs(case, rng)
    kwargs["scale"] = 1.0  # jax.nn's default 1/sqrt(0) warns
    out = jax_mea.dot_product_attention(*to_jnp(args), **to_jnp(kwargs))
    want = jax.nn.dot_product_attention(*to_jnp(args), **to_jnp(kwargs))
    assert out.shape == want.shape and out.dtype == want.dtype and out.size == 0
    jitted = jax.jit(jax_mea.dot_product_attention)(*to_jnp(args))
    assert jitted.shape == want.shape


# --- windows ---------------------------------------------------------------------


@pytest.mark.parametrize("window", [(2.5, 1.0), (0.7, 3.2), (math.inf, 1.0), (1.0, math.inf)],
                         ids=str)
def test_float_window(rng, window):
    """jax.nn keeps key j iff i - left <= j <= i + right, floats included (so a
    size counts as its floor; inf is unbounded)."""
    check(DpaCase(window=window, q_len=9, kv_len=11), rng)


@pytest.mark.parametrize("window", [(2, -1), (-1, 3), (-2, 4), (3.0, -1.0)], ids=str)
def test_negative_window_is_literal(rng, window):
    """jax.nn reads negative sizes literally: right = -1 excludes the diagonal."""
    check(DpaCase(window=window, q_len=9, kv_len=11), rng)


# --- masks of low rank -----------------------------------------------------------


@pytest.mark.parametrize("edit", ["mask-rank-1", "bias-rank-2", "mask-rank-0"])
def test_low_rank_mask_and_bias(rng, edit):
    """jax.nn prepends unit axes to masks and biases of rank < 4."""
    case = DpaCase(mask="BNTS", bias="BNTS", is_causal=True)

    def lower(kwargs):
        if edit == "mask-rank-1":
            kwargs["mask"] = kwargs["mask"][0, 0, 0]
            kwargs.pop("bias")
        elif edit == "bias-rank-2":
            kwargs["bias"] = kwargs["bias"][0, 0]
            kwargs.pop("mask")
        else:
            kwargs["mask"] = np.asarray(True)

    check(case, rng, edit=lower)


# --- NaN -------------------------------------------------------------------------


def _nan_case(rng, where: str, **case_args):
    """(args, kwargs) with one NaN in head 0 of batch 0: in query row 1, or at
    key/value position 2."""
    case = DpaCase(**{**dict(batch=2, q_len=5, kv_len=6, q_heads=2, kv_heads=2), **case_args})
    args, kwargs = make_dpa_inputs(case, rng)
    q, k, v = (a.copy() for a in args)
    {"query": q, "key": k, "value": v}[where][0, 1 if where == "query" else 2, 0, 3] = np.nan
    return (q, k, v), kwargs


def _check_nan_parity(args, kwargs):
    """NaN exactly where jax.nn has it (per output row), the finite rows close."""
    out = f32(jax_mea.dot_product_attention(*to_jnp(args), **to_jnp(kwargs)))
    expected = jax_dpa_oracle(args, kwargs)
    nan_rows = np.isnan(expected).any(-1)
    assert nan_rows.any(), "the case has no NaN row in jax.nn"
    np.testing.assert_array_equal(np.isnan(out).any(-1), nan_rows, err_msg="NaN rows")
    assert_close(out[~nan_rows], expected[~nan_rows], "float32")


def test_nan_in_query_propagates(rng):
    _check_nan_parity(*_nan_case(rng, "query"))


@pytest.mark.parametrize("where", ["key", "value"])
def test_nan_in_visible_key_or_value_propagates(rng, where):
    _check_nan_parity(*_nan_case(rng, where))


def _check_masked_nan_not_read(args, kwargs):
    """The output with a NaN at a masked key/value equals the output with 0 there."""
    out = f32(jax_mea.dot_product_attention(*to_jnp(args), **to_jnp(kwargs)))
    clean = tuple(np.nan_to_num(a, nan=0.0) for a in args)
    want = f32(jax_mea.dot_product_attention(*to_jnp(clean), **to_jnp(kwargs)))
    assert np.isfinite(out).all(), "a NaN at a masked key reached the output"
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("where,masking", [
    ("key", "causal"), ("key", "kv-lengths"), ("key", "window"), ("value", "kv-lengths")])
def test_nan_at_position_masked_key_is_not_read(rng, where, masking):
    """Documented difference: a masked key's score is dropped whatever it is, and keys
    past the kv length are never read, values included (jax.nn propagates a NaN in a
    masked value: it multiplies it by a zero weight). A NaN value of a key masked
    otherwise may reach the row on the GPU's tensor-core kernels, which multiply whole
    tiles, as in jax.nn: not tested."""
    case_args = {"causal": dict(is_causal=True, q_len=2),
                 "kv-lengths": dict(kv_lengths=(2, 6)),
                 "window": dict(window=(0, 0), q_len=2)}[masking]
    _check_masked_nan_not_read(*_nan_case(rng, where, **case_args))


def test_nan_at_mask_masked_key_is_not_read(rng):
    args, kwargs = _nan_case(rng, "key", mask="11TS")
    kwargs["mask"][..., 2] = False
    _check_masked_nan_not_read(args, kwargs)

"""jax_mea.dot_product_attention against jax.nn.dot_product_attention (xla) and,
where jax has no equivalent (value head size != key head size, softcap), against
the float64 oracle of conftest. Rows with no
visible key are compared only with 0: jax gives them a uniform average (it masks
with a large finite negative), jax-mea gives 0."""

import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
from jax_mea import reference
from conftest import (DTYPES, DpaCase, assert_close, check_dpa_case, jax_dpa_oracle,
                      make_dpa_inputs, to_jnp)

DTYPE = pytest.mark.parametrize("dtype", DTYPES)


def check(case, rng, oracle=None, edit=None):
    return check_dpa_case(jax_mea.dot_product_attention, case, rng, oracle, edit)


@DTYPE
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("q_len,kv_len", [(1, 9), (9, 13), (13, 5)])
@pytest.mark.parametrize("q_heads,kv_heads,head_size,scale", [
    (4, 4, 64, None), (4, 2, 16, 0.3), (4, 1, 40, None),
    # Hopper: GQA with q_len <= 64 packs several query heads into a CTA (4 of H128,
    # 3 of H64's 192 rows)
    (8, 2, 128, None), (6, 2, 64, 0.2)], ids=["mha", "gqa", "mqa", "gqa4-h128", "gqa3-h64"])
def test_shapes(rng, q_heads, kv_heads, head_size, scale, q_len, kv_len, is_causal, dtype):
    check(DpaCase(q_heads=q_heads, kv_heads=kv_heads, head_size=head_size,
                  v_head_size=head_size, scale=scale, q_len=q_len, kv_len=kv_len,
                  is_causal=is_causal, dtype=dtype), rng)


@DTYPE
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("bias,mask", [
    ("BNTS", None), ("B1TS", None), ("11TS", None), (None, "BNTS"), (None, "B1TS"),
    (None, "1N1S"), ("1NTS", "11TS"), ("B11S", "BNTS"),
    # ranks 2 and 3 (leading axes implied), and size-1 key axes (broadcast, not padded)
    ("TS", None), (None, "NTS"), ("NT1", "1S"), ("BNT1", "B11S"), (None, "1NT1")], ids=str)
def test_bias_and_mask(rng, bias, mask, is_causal, dtype):
    check(DpaCase(bias=bias, mask=mask, is_causal=is_causal, dtype=dtype), rng)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("window", [None, 2, (3, 0), (0, 2), (1, 4)], ids=str)
@pytest.mark.parametrize("q_lengths,kv_lengths", [
    (None, None), ((3, 6), None), (None, (5, 8)), ((2, 6), (0, 7))], ids=str)
def test_lengths_and_window(rng, q_lengths, kv_lengths, window, is_causal, dtype):
    check(DpaCase(q_lengths=q_lengths, kv_lengths=kv_lengths, window=window,
                  is_causal=is_causal, mask="B1TS", dtype=dtype), rng)


@DTYPE
@pytest.mark.parametrize("options", [
    {}, dict(is_causal=True, mask="BNTS", bias="1NTS"),
    dict(q_lengths=(4, 6), kv_lengths=(3, 8), window=(2, 1))], ids=["plain", "masked", "lengths"])
@pytest.mark.parametrize("softcap", [0.0, 2.0])
@pytest.mark.parametrize("head_size,v_head_size", [(48, 24), (64, 32), (24, 80)])
def test_value_head_size_and_softcap(rng, head_size, v_head_size, softcap, options, dtype):
    """Beyond jax.nn: compared with the float64 oracle."""
    check(DpaCase(head_size=head_size, v_head_size=v_head_size, softcap=softcap, dtype=dtype,
                  **options), rng)


@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("window", [(-1, 2), (3, -1), (-1, -1)], ids=str)
def test_window_negative_side(rng, window, is_causal):
    """A negative side is read literally, as jax.nn reads it: (3, -1) excludes the
    diagonal, (-1, 2) the key at the row's own position and those before it."""
    check(DpaCase(window=window, is_causal=is_causal, q_len=9, kv_len=7,
                  kv_lengths=(7, 5)), rng)


def _false_rows(kwargs):
    kwargs["mask"][0, :, 2] = False


FULLY_MASKED = {
    "mask-rows": (DpaCase(mask="BNTS"), _false_rows),
    "kv-length-zero": (DpaCase(kv_lengths=(0, 8), is_causal=True), None),
    "window-beyond-keys": (DpaCase(q_len=9, kv_len=4, window=(1, 1)), None),
    "padded-queries": (DpaCase(q_lengths=(2, 0)), None),
}


@DTYPE
@pytest.mark.parametrize("name", list(FULLY_MASKED))
def test_fully_masked_rows_are_zero(rng, name, dtype):
    case, edit = FULLY_MASKED[name]
    visible = check(case.replace(dtype=dtype), rng, edit=edit)
    assert (~visible).any(), "no fully masked row built"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_unbatched(rng, dtype):
    """Like jax.nn.dot_product_attention, [T, N, H] inputs (no batch axis) work."""
    case = DpaCase(batch=1, is_causal=True, bias="1NTS", mask="11TS", dtype=dtype)
    args, kwargs = make_dpa_inputs(case, rng)
    args = tuple(a[0] for a in args)
    kwargs.update(bias=kwargs["bias"][0], mask=kwargs["mask"][0])
    out = jax_mea.dot_product_attention(*to_jnp(args), **to_jnp(kwargs))
    assert out.shape == args[0].shape and out.dtype == args[0].dtype
    assert_close(out, jax_dpa_oracle(args, kwargs), dtype)



@pytest.mark.parametrize("window,bounded", [((2**31 - 2, 2**31 - 2), None),
                                            ((3, 2**31 - 5), (3, 10**6)),
                                            ((2**40, 0), (10**6, 0))], ids=str)
def test_huge_window_is_unbounded(rng, window, bounded):
    """Window sides near or past int32's range mean no bound, in the kernel and in the
    reference alike (no overflow in pos + window)."""
    q, k, v = (jnp.asarray(rng.standard_normal((1, 6, 2, 8)), jnp.float32) for _ in range(3))
    want = reference.dot_product_attention(q, k, v, local_window_size=bounded)
    for fn in (jax_mea.dot_product_attention, reference.dot_product_attention):
        got = fn(q, k, v, local_window_size=window)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-6, atol=2e-6)

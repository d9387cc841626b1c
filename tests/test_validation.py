"""Trace-time argument errors: ValueError (TypeError for dtypes) whose message names
the offending argument, both called directly and under jax.jit."""

import jax
import ml_dtypes
import numpy as np
import pytest

import jax_mea
from conftest import DpaCase, OnnxCase, assert_close, dpa_f64_oracle, onnx_reference, y_rows

B, NQ, NKV, SQ, SKV, P, H, HV = 2, 4, 2, 3, 5, 4, 8, 6


def arr(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


ONNX_BASES = {
    "4d": dict(Q=arr(B, NQ, SQ, H), K=arr(B, NKV, SKV, H), V=arr(B, NKV, SKV, HV)),
    "3d": dict(Q=arr(B, SQ, NQ * H), K=arr(B, SKV, NKV * H), V=arr(B, SKV, NKV * HV),
               q_num_heads=NQ, kv_num_heads=NKV),
    "past": dict(Q=arr(B, NQ, SQ, H), K=arr(B, NKV, SKV, H), V=arr(B, NKV, SKV, HV),
                 past_key=arr(B, NKV, P, H), past_value=arr(B, NKV, P, HV)),
}

# name: (base, changes (None deletes), exception, message pattern)
ONNX_ERRORS = {
    "Q-rank-2": ("4d", dict(Q=arr(B, SQ)), ValueError, r"\bQ\b"),
    "Q-rank-5": ("4d", dict(Q=arr(B, NQ, SQ, H, 1)), ValueError, r"\bQ\b"),
    "K-rank": ("4d", dict(K=arr(B, SKV, NKV * H)), ValueError, r"\bK\b"),
    "V-rank": ("4d", dict(V=arr(B, SKV, NKV * HV)), ValueError, r"\bV\b"),
    "3d-no-q_num_heads": ("3d", dict(q_num_heads=None), ValueError, "q_num_heads"),
    "3d-no-kv_num_heads": ("3d", dict(kv_num_heads=None), ValueError, "kv_num_heads"),
    "3d-Q-hidden": ("3d", dict(Q=arr(B, SQ, NQ * H + 2)), ValueError, r"q_num_heads|\bQ\b"),
    "3d-K-hidden": ("3d", dict(K=arr(B, SKV, NKV * H + 1)), ValueError, r"kv_num_heads|\bK\b"),
    "3d-V-hidden": ("3d", dict(V=arr(B, SKV, NKV * HV + 1)), ValueError, r"kv_num_heads|\bV\b"),
    "heads-not-multiple": ("4d", dict(Q=arr(B, 3, SQ, H)), ValueError, "heads"),
    "4d-q_num_heads-mismatch": ("4d", dict(q_num_heads=NQ + 1), ValueError, r"\bQ\b.*heads"),
    "4d-kv_num_heads-mismatch": ("4d", dict(kv_num_heads=NKV * 2), ValueError,
                                 r"\bK\b.*heads"),
    "3d-heads-not-multiple": ("3d", dict(Q=arr(B, SQ, 3 * H), q_num_heads=3), ValueError,
                              "heads"),
    "K-head-size": ("4d", dict(K=arr(B, NKV, SKV, H + 1)), ValueError, r"\bK\b"),
    "K-batch": ("4d", dict(K=arr(B + 1, NKV, SKV, H), V=arr(B + 1, NKV, SKV, HV)), ValueError,
                r"\bK\b"),
    "V-heads": ("4d", dict(V=arr(B, NKV + 1, SKV, HV)), ValueError, r"\bV\b"),
    "V-length": ("4d", dict(V=arr(B, NKV, SKV + 1, HV)), ValueError, r"\bV\b"),
    "past_key-head-size": ("past", dict(past_key=arr(B, NKV, P, H + 1)), ValueError, "past_key"),
    "past_value-head-size": ("past", dict(past_value=arr(B, NKV, P, HV + 2)), ValueError,
                             "past_value"),
    "past_key-heads": ("past", dict(past_key=arr(B, NKV + 1, P, H)), ValueError, "past_key"),
    "past_key-rank": ("past", dict(past_key=arr(B, P, NKV * H)), ValueError, "past_key"),
    "past_value-length": ("past", dict(past_value=arr(B, NKV, P - 1, HV)), ValueError,
                          "past_value"),
    "past_key-alone": ("past", dict(past_value=None), ValueError, "past_value"),
    "past_value-alone": ("past", dict(past_key=None), ValueError, "past_key"),
    "mask-rank-1": ("4d", dict(attn_mask=arr(SKV, dtype=bool)), ValueError, "attn_mask"),
    "mask-rank-5": ("4d", dict(attn_mask=arr(1, B, NQ, SQ, SKV, dtype=bool)), ValueError,
                    "attn_mask"),
    "mask-batch": ("4d", dict(attn_mask=arr(B + 1, NQ, SQ, SKV, dtype=bool)), ValueError,
                   "attn_mask"),
    "mask-heads": ("4d", dict(attn_mask=arr(B, NKV, SQ, SKV, dtype=bool)), ValueError,
                   "attn_mask"),
    "mask-heads-rank-3": ("4d", dict(attn_mask=arr(B + 1, SQ, SKV)), ValueError, "attn_mask"),
    "mask-query": ("4d", dict(attn_mask=arr(SQ + 1, SKV, dtype=bool)), ValueError, "attn_mask"),
    "mask-too-long": ("4d", dict(attn_mask=arr(SQ, SKV + 1, dtype=bool)), ValueError,
                      "attn_mask"),
    "mask-too-long-past": ("past", dict(attn_mask=arr(SQ, P + SKV + 1)), ValueError,
                           "attn_mask"),
    "nonpad-with-past": ("past", dict(nonpad_kv_seqlen=np.full(B, SKV, np.int32)), ValueError,
                         "nonpad_kv_seqlen"),
    "nonpad-shape": ("4d", dict(nonpad_kv_seqlen=np.full(B + 1, SKV, np.int32)), ValueError,
                     "nonpad_kv_seqlen"),
    "scale-zero": ("4d", dict(scale=0.0), ValueError, "scale"),
    "scale-negative": ("4d", dict(scale=-0.5), ValueError, "scale"),
    "Q-int": ("4d", dict(Q=arr(B, NQ, SQ, H, dtype=np.int32), K=arr(B, NKV, SKV, H, dtype=np.int32),
                         V=arr(B, NKV, SKV, HV, dtype=np.int32)), TypeError, r"\bQ\b"),
    "K-dtype": ("4d", dict(K=arr(B, NKV, SKV, H, dtype=np.float16)), TypeError, r"\bK\b"),
    "V-dtype": ("4d", dict(V=arr(B, NKV, SKV, HV, dtype=ml_dtypes.bfloat16)), TypeError,
                r"\bV\b"),
    "past_key-dtype": ("past", dict(past_key=arr(B, NKV, P, H, dtype=np.float16)), TypeError,
                       "past_key"),
    "past_value-dtype": ("past", dict(past_value=arr(B, NKV, P, HV, dtype=np.float16)),
                         TypeError, "past_value"),
    "mask-int": ("4d", dict(attn_mask=arr(SQ, SKV, dtype=np.int32)), TypeError, "attn_mask"),
    "nonpad-float": ("4d", dict(nonpad_kv_seqlen=np.full(B, SKV, np.float32)), TypeError,
                     "nonpad_kv_seqlen"),
}

def _call(fn, positional, args, use_jit):
    """fn(*positional, **rest) with the arrays traced (under jit) or not."""
    args = {k: v for k, v in args.items() if v is not None}
    arrays = {k: v for k, v in args.items() if isinstance(v, np.ndarray)}
    static = {k: v for k, v in args.items() if k not in arrays}

    def call(arrays):
        rest = dict(arrays)
        first = [rest.pop(k) for k in positional]
        return fn(*first, **rest, **static)

    return jax.jit(call)(arrays) if use_jit else call(arrays)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(ONNX_ERRORS))
def test_onnx_attention_errors(name, use_jit):
    base, changes, exc, pattern = ONNX_ERRORS[name]
    with pytest.raises(exc, match=pattern):
        _call(jax_mea.onnx_attention, ("Q", "K", "V"), {**ONNX_BASES[base], **changes}, use_jit)


def _random_like(args, rng):
    """The float arrays of `args` filled with random data (same shapes and dtypes)."""
    return {k: rng.standard_normal(v.shape).astype(v.dtype)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for k, v in args.items()}


@pytest.mark.parametrize("base", list(ONNX_BASES))
def test_onnx_attention_valid_bases(base, rng):
    """The bases above are valid (only the change makes a case fail) and compute
    ONNX Attention: random data against onnx.reference."""
    args = _random_like(ONNX_BASES[base], rng)
    y, present_key, present_value = _call(jax_mea.onnx_attention, ("Q", "K", "V"), args, False)
    attrs = {k: v for k, v in args.items() if not isinstance(v, np.ndarray)}
    want = onnx_reference({k: v for k, v in args.items() if k not in attrs}, attrs)
    assert_close(y_rows(y, OnnxCase(rank=y.ndim, q_heads=NQ, v_head_size=HV)),
                 y_rows(want[0], OnnxCase(rank=y.ndim, q_heads=NQ, v_head_size=HV)), "float32")
    np.testing.assert_array_equal(present_key, want[1])
    np.testing.assert_array_equal(present_value, want[2])


DPA_BASE = dict(query=arr(B, SQ, NQ, H), key=arr(B, SKV, NKV, H), value=arr(B, SKV, NKV, HV))

DPA_ERRORS = {
    "query-rank": (dict(query=arr(B, SQ, NQ * H)), ValueError, "query"),
    "key-head-size": (dict(key=arr(B, SKV, NKV, H + 1)), ValueError, r"\bkey\b"),
    "value-length": (dict(value=arr(B, SKV + 1, NKV, HV)), ValueError, "value"),
    "value-heads": (dict(value=arr(B, SKV, NKV + 1, HV)), ValueError, "value"),
    "heads-not-multiple": (dict(query=arr(B, SQ, 3, H)), ValueError, "heads"),
    "bias-shape": (dict(bias=arr(B, NQ, SQ + 1, SKV)), ValueError, "bias"),
    "mask-shape": (dict(mask=arr(B + 1, 1, SQ, SKV, dtype=bool)), ValueError, "mask"),
    "query_seq_lengths-shape": (dict(query_seq_lengths=np.full(B + 1, SQ, np.int32)),
                                ValueError, "query_seq_lengths"),
    "key_value_seq_lengths-shape": (dict(key_value_seq_lengths=np.full((B, 1), SKV, np.int32)),
                                    ValueError, "key_value_seq_lengths"),
    "scale-zero": (dict(scale=0.0), ValueError, "scale"),
    "query-int": (dict(query=arr(B, SQ, NQ, H, dtype=np.int32),
                       key=arr(B, SKV, NKV, H, dtype=np.int32),
                       value=arr(B, SKV, NKV, HV, dtype=np.int32)), TypeError, "query"),
    "key-dtype": (dict(key=arr(B, SKV, NKV, H, dtype=np.float16)), TypeError, r"\bkey\b"),
    # Like jax.nn.dot_product_attention: an additive mask goes in bias, never in mask.
    "mask-float": (dict(mask=arr(SQ, SKV)), TypeError, "mask"),
    "key_value_seq_lengths-float": (dict(key_value_seq_lengths=np.full(B, SKV, np.float32)),
                                    TypeError, "key_value_seq_lengths"),
}


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(DPA_ERRORS))
def test_dot_product_attention_errors(name, use_jit):
    changes, exc, pattern = DPA_ERRORS[name]
    with pytest.raises(exc, match=pattern):
        _call(jax_mea.dot_product_attention, ("query", "key", "value"),
              {**DPA_BASE, **changes}, use_jit)


def test_dot_product_attention_valid_base(rng):
    """The base is valid and computes attention: random data against the float64
    oracle (Hv != H: jax.nn has no equivalent)."""
    args = _random_like(DPA_BASE, rng)
    out = _call(jax_mea.dot_product_attention, ("query", "key", "value"), args, False)
    case = DpaCase(batch=B, q_len=SQ, kv_len=SKV, q_heads=NQ, kv_heads=NKV, head_size=H,
                   v_head_size=HV)
    want = dpa_f64_oracle(case, (args["query"], args["key"], args["value"]), {})
    assert_close(out, want, "float32")

"""Trace-time argument errors: ValueError (TypeError for dtypes) whose message names
the offending argument, both called directly and under jax.jit."""

import jax
import jax.numpy as jnp
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
    "mask-rank-0": ("4d", dict(attn_mask=np.zeros((), bool)), ValueError, "attn_mask"),
    "mask-rank-1-too-long": ("4d", dict(attn_mask=arr(SKV + 1, dtype=bool)), ValueError,
                             "attn_mask"),
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
    # Issue 16: each of these used to fail without naming the argument, or not at all.
    "scale-overflows-float32": ("4d", dict(scale=1e39), ValueError,
                                r"scale = 1e\+39 overflows float32"),
    "scale-underflows-float32": ("4d", dict(scale=1e-50), ValueError,
                                 r"scale = 1e-50 underflows to 0 in float32"),
    "scale-nan": ("4d", dict(scale=float("nan")), ValueError, "scale must be finite"),
    "softcap-inf": ("4d", dict(softcap=float("inf")), ValueError,
                    r"softcap must be finite \(0 disables it\), got inf"),
    "softcap-overflows-float32": ("4d", dict(softcap=1e40), ValueError,
                                  r"softcap = 1e\+40 overflows float32"),
    "head-size-zero": ("4d", dict(Q=arr(B, NQ, SQ, 0), K=arr(B, NKV, SKV, 0)), ValueError,
                       r"Q: the head size is 0, must be positive"),
    "v-head-size-zero": ("4d", dict(V=arr(B, NKV, SKV, 0)), ValueError,
                         r"V: the head size is 0, must be positive"),
    "kv-heads-zero": ("4d", dict(K=arr(B, 0, SKV, H), V=arr(B, 0, SKV, HV)), ValueError,
                      r"K: the number of heads \(kv_num_heads\) is 0, must be positive"),
    "q-heads-zero": ("4d", dict(Q=arr(B, 0, SQ, H)), ValueError,
                     r"Q: the number of heads is 0, must be positive"),
    "3d-kv_num_heads-zero": ("3d", dict(kv_num_heads=0), ValueError,
                             r"kv_num_heads: the number of key/value heads is 0"),
    "3d-head-size-zero": ("3d", dict(Q=arr(B, SQ, 0), K=arr(B, SKV, 0)), ValueError,
                          r"Q: the head size is 0, must be positive"),
    "left-window-float": ("4d", dict(left_window_size=2.5), ValueError,
                          r"left_window_size must be an integer \(an ONNX int attribute\), "
                          r"got 2\.5"),
    "right-window-float": ("4d", dict(right_window_size=0.5), ValueError,
                           r"right_window_size must be an integer"),
    "left-window-below-minus-1": ("4d", dict(left_window_size=-2), ValueError,
                                  r"left_window_size must be >= -1 \(-1: unbounded\)"),
    "qk_matmul_output_mode": ("4d", dict(qk_matmul_output_mode=4), ValueError,
                              "qk_matmul_output_mode must be None or one of"),
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
    "scale-overflows-float32": (dict(scale=-1e39), ValueError,
                                r"scale = -1e\+39 overflows float32"),
    "scale-not-scalar": (dict(scale=np.ones(2, np.float32)), ValueError,
                         "scale must be a scalar"),
    "softcap-inf": (dict(softcap=float("inf")), ValueError, "softcap must be finite"),
    "kv-heads-zero": (dict(query=arr(B, SQ, 0, H), key=arr(B, SKV, 0, H),
                           value=arr(B, SKV, 0, HV)), ValueError,
                      "key: the number of heads is 0, must be positive"),
    "head-size-zero-value-not": (dict(query=arr(B, SQ, NQ, 0), key=arr(B, SKV, NKV, 0)),
                                 ValueError, "value's head size must be 0 too"),
    "window-nan": (dict(local_window_size=(float("nan"), 1)), ValueError,
                   r"local_window_size sizes must be finite or \+inf"),
    "window-triple": (dict(local_window_size=(1, 2, 3)), ValueError,
                      r"local_window_size must be a number or a pair"),
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


def _cache(num_kv_heads=NKV, head_size=H, v_head_size=HV, length=8):
    return jax_mea.KVCache(key=np.zeros((B, num_kv_heads, length, head_size), np.float32),
                           value=np.zeros((B, num_kv_heads, length, v_head_size), np.float32),
                           lengths=np.zeros(B, np.int32), overflowed=np.zeros(B, bool))


def _decode_args(nq=NQ, nkv=NKV, h=H, hv=HV):
    return dict(query=arr(B, 1, nq, h), key=arr(B, 1, nkv, h), value=arr(B, 1, nkv, hv),
                cache=_cache(nkv, h, hv))


# name: (arguments, message pattern); all ValueError.
DECODE_ERRORS = {
    "scale-overflows-float32": (dict(scale=3.5e38), r"scale = 3\.5e\+38 overflows float32"),
    "scale-negative": (dict(scale=-1.0), "scale must be positive"),
    "softcap-inf": (dict(softcap=float("inf")), "softcap must be finite"),
    "softcap-negative": (dict(softcap=-1.0), "softcap must be >= 0"),
    "kv-heads-zero": (_decode_args(nkv=0),
                      "cache.key: the number of key/value heads is 0, must be positive"),
    "q-heads-zero": (_decode_args(nq=0), "query: the number of heads is 0, must be positive"),
    "head-size-zero": (_decode_args(h=0), "cache.key: the head size is 0, must be positive"),
    "v-head-size-zero": (_decode_args(hv=0),
                         "cache.value: the head size is 0, must be positive"),
    "window-nan": (dict(local_window_size=float("nan")),
                   r"local_window_size sizes must be finite or \+inf"),
}


@pytest.mark.parametrize("name", list(DECODE_ERRORS))
def test_decode_attention_errors(name):
    changes, pattern = DECODE_ERRORS[name]
    args = {**_decode_args(), **changes}
    with pytest.raises(ValueError, match=pattern):
        jax_mea.decode_attention(args.pop("query"), args.pop("key"), args.pop("value"),
                                 args.pop("cache"), **args)


def test_decode_attention_valid_base():
    args = _decode_args()
    out, _ = jax_mea.decode_attention(args.pop("query"), args.pop("key"), args.pop("value"),
                                      args.pop("cache"), **args)
    assert out.shape == (B, 1, NQ, HV)


@pytest.mark.parametrize("offset,ok", [(2**31 - 5, True), (2**31 - 4, False),
                                       (2**31 - 1, False), (7 - 2**31, True),
                                       (6 - 2**31, False)])
def test_bind_attention_query_positions_stay_in_int32(offset, ok):
    """The kernels read UNBOUNDED_WINDOW as a number (score.h): it bounds nothing only
    while the query positions offset + i stay in [kv_len - 2**31, 2**31 - 1]. A static
    causal_offset outside is refused, naming it, instead of cutting keys that the XLA
    path and the reference keep (here q_len 5, kv_len 7). At the range's ends every
    row still sees every key: the result is offset 0's."""
    from jax_mea import primitives as P
    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.standard_normal((1, 5, 2, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.standard_normal((1, 7, 2, 8)), jnp.float32) for _ in range(2))

    def attend(off):
        return P.bind_attention(q, k, v, q_layout=P.Layout.BSNH, kv_layout=P.Layout.BSNH,
                                out_layout=P.Layout.BSNH, causal_offset=off, scale=0.35)

    if ok:
        np.testing.assert_allclose(np.asarray(attend(offset)), np.asarray(attend(0)),
                                   rtol=0, atol=0)
    else:
        with pytest.raises(ValueError, match=r"causal_offset=.*query positions"):
            attend(offset)

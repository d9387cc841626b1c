"""jax_mea.reference against the outside oracles (onnx.reference for onnx_attention
and decode_attention; jax.nn.dot_product_attention, and the float64 oracle where
jax.nn has no equivalent: softcap, Hv != H, an unbounded window side), on a small
grid: the oracle chain holds without the kernels."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_mea import reference
from conftest import (DTYPES, DpaCase, OnnxCase, assert_close, check_dpa_case, check_onnx_case,
                      f32, np_dtype, onnx_reference, randn, reference_dot_product_attention,
                      reference_onnx_attention)

ONNX_CASES = {
    "mha-4d": OnnxCase(q_heads=2, kv_heads=2),
    "gqa-3d-asym": OnnxCase(rank=3, q_heads=6, kv_heads=2, head_size=48, v_head_size=24),
    "mqa-past-causal": OnnxCase(q_heads=3, kv_heads=1, past_len=5, is_causal=True,
                                head_size=24, v_head_size=80),
    "decode-sq1-past": OnnxCase(q_len=1, past_len=9, is_causal=True, mask="bool:B1Qt"),
    "bool-mask-2d-short": OnnxCase(mask="bool:Qt"),
    "float-mask-3d": OnnxCase(mask="float:NQT", is_causal=True),
    "float-mask-4d-bcast-q": OnnxCase(mask="float:B11t", is_causal=True, past_len=3),
    "bool-mask-4d-bcast": OnnxCase(mask="bool:1NQT", rank=3),
    "nonpad": OnnxCase(nonpad=(3, 7), is_causal=True),
    "nonpad-zero-mask": OnnxCase(nonpad=(0, 5), mask="bool:BNQT"),
    "nonpad-short-q": OnnxCase(nonpad=(2, 6), q_len=4, is_causal=True),
    "softcap-scale": OnnxCase(softcap=1.5, scale=0.4, mask="float:BNQT", is_causal=True),
    "window-past": OnnxCase(window=(2, 1), past_len=4, is_causal=True),
    "window-nonpad": OnnxCase(window=(1, 2), nonpad=(4, 7), mask="bool:QT"),
    "window-right-only": OnnxCase(window=(-1, 0), q_len=7, kv_len=7),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ONNX_CASES))
def test_onnx_attention(rng, name, dtype):
    check_onnx_case(reference_onnx_attention, ONNX_CASES[name].replace(dtype=dtype), rng)


DPA_CASES = {
    "plain-gqa": DpaCase(),
    "causal-bias-mask": DpaCase(is_causal=True, bias="1NTS", mask="B1TS"),
    "lengths-window": DpaCase(q_lengths=(4, 6), kv_lengths=(0, 8), window=(2, 1)),
    "window-int-causal": DpaCase(window=2, is_causal=True, q_len=9, kv_len=5),
    # The float64 oracle: jax.nn has no softcap, no Hv != H, no unbounded side.
    "softcap-asym": DpaCase(softcap=2.0, head_size=48, v_head_size=24, is_causal=True,
                            bias="1NTS", mask="B1TS", kv_lengths=(5, 8)),
    "window-negative-left": DpaCase(window=(-1, 1), q_lengths=(6, 3), bias="BN1S"),
    "window-negative-right-asym": DpaCase(window=(2, -1), softcap=1.0, v_head_size=40),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", list(DPA_CASES))
def test_dot_product_attention(rng, name, dtype):
    check_dpa_case(reference_dot_product_attention, DPA_CASES[name].replace(dtype=dtype), rng)


# --- decode_attention, with a stand-in for jax_mea.KVCache ---------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Cache:
    key: jax.Array
    value: jax.Array
    lengths: jax.Array
    overflowed: jax.Array

    def replace(self, **kw) -> "Cache":
        return dataclasses.replace(self, **kw)


def decode_oracle(q, new_cache, lengths, window):
    """onnx.reference over the cache after the append: token t of batch b at
    position lengths[b] + t sees j <= that position (and j >= it - window) via an
    explicit bool mask, and j < new length via nonpad_kv_seqlen."""
    batch, steps = q.shape[:2]
    capacity = new_cache.key.shape[2]
    pos = np.asarray(lengths)[:, None, None, None] + np.arange(steps)[:, None]
    j = np.arange(capacity)
    mask = j <= pos
    if window is not None:
        mask &= j >= pos - window
    inputs = dict(Q=f32(q).transpose(0, 2, 1, 3), K=f32(new_cache.key),
                  V=f32(new_cache.value), attn_mask=mask,
                  nonpad_kv_seqlen=np.asarray(new_cache.lengths))
    y, _, _ = onnx_reference(inputs, {})
    return y.transpose(0, 2, 1, 3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("steps,lengths,window", [
    (1, (0, 5), None), (3, (2, 9), None), (1, (6, 11), 3), (4, (0, 7), 2),
    (4, (9, 12), None),  # overflow: capacity 12
], ids=["decode", "prefill-chunk", "decode-window", "chunk-window", "overflow"])
def test_decode_attention(rng, steps, lengths, window, dtype):
    batch, nq, nkv, h, hv, capacity = 2, 4, 2, 16, 24, 12
    cache = Cache(key=jnp.asarray(randn(rng, (batch, nkv, capacity, h), dtype)),
                  value=jnp.asarray(randn(rng, (batch, nkv, capacity, hv), dtype)),
                  lengths=jnp.asarray(lengths, jnp.int32),
                  overflowed=jnp.zeros(batch, bool))
    q = randn(rng, (batch, steps, nq, h), dtype)
    k = randn(rng, (batch, steps, nkv, h), dtype)
    v = randn(rng, (batch, steps, nkv, hv), dtype)
    decode = jax.jit(reference.decode_attention, static_argnames="local_window_size")
    out, new = decode(q, k, v, cache, local_window_size=window)

    want_lengths = np.minimum(np.asarray(lengths) + steps, capacity)
    np.testing.assert_array_equal(new.lengths, want_lengths)
    np.testing.assert_array_equal(new.overflowed, np.asarray(lengths) + steps > capacity)
    want_k, want_v = f32(cache.key).copy(), f32(cache.value).copy()
    for b in range(batch):
        for t in range(steps):
            if lengths[b] + t < capacity:
                want_k[b, :, lengths[b] + t] = f32(k[b, t])
                want_v[b, :, lengths[b] + t] = f32(v[b, t])
    np.testing.assert_array_equal(f32(new.key), want_k)
    np.testing.assert_array_equal(f32(new.value), want_v)
    assert out.dtype == np_dtype(dtype) and out.shape == (batch, steps, nq, hv)
    assert_close(out, decode_oracle(q, new, lengths, window), dtype)

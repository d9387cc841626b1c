"""Large shapes on the GPU (skipped elsewhere): long sequences, large batches,
head sizes 64/128/256 and Hv != H, GQA 8:1, against the float32 reference run on
the same device (the forward, decode, and the backward's gradients). Fresh random
data per case; NaN never passes."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
from conftest import TOLERANCE

pytestmark = pytest.mark.gpu


def _random(key, shape, dtype):
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def _check(out, ref, dtype, what, factor=1):
    """Max |out - ref| within factor x TOLERANCE[dtype] of max |ref|; no NaN / inf."""
    out = np.asarray(out.astype(jnp.float32))
    ref = np.asarray(ref)
    assert np.isfinite(out).all(), f"{what}: non-finite output"
    rel = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-6)
    assert rel <= factor * TOLERANCE[dtype], f"{what}: max error {rel:.2e} of max |ref|"


PREFILL = [
    # (B, S, Nq, Nkv, H, Hv, causal)
    (1, 8192, 8, 1, 128, 128, True),
    (2, 4096, 16, 2, 64, 64, True),
    (2, 2048, 8, 8, 256, 256, False),
    (1, 4096, 16, 2, 192, 128, True),
    (4, 1024, 8, 8, 128, 64, False),
    (16, 512, 8, 1, 80, 80, True),
]


def _sequence_inputs(shape, dtype):
    """q, k, v of a (B, S, Nq, Nkv, H, Hv, causal) shape, fresh per shape."""
    B, S, Nq, Nkv, H, Hv, _ = shape
    kq, kk, kv = jax.random.split(jax.random.key(hash(shape) % 2**31), 3)
    return (_random(kq, (B, S, Nq, H), dtype), _random(kk, (B, S, Nkv, H), dtype),
            _random(kv, (B, S, Nkv, Hv), dtype))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", PREFILL, ids=str)
def test_large_prefill(dtype, shape):
    causal = shape[-1]
    q, k, v = _sequence_inputs(shape, dtype)
    out = jax.jit(lambda q, k, v: jax_mea.dot_product_attention(q, k, v, is_causal=causal))(q, k, v)
    ref = jax.jit(lambda q, k, v: jax_mea.reference.dot_product_attention(
        q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32),
        is_causal=causal))(q, k, v)
    _check(out, ref, dtype, f"prefill {shape}")


BACKWARD = [
    # (B, S, Nq, Nkv, H, Hv, causal): the sm_90a kernel's 128 and 64 instances on Hopper
    # (plain, GQA 8:1 split over CTAs, causal, H 80), and Hv != H (the sm_80 kernel).
    (2, 2048, 8, 8, 128, 128, False),
    (1, 2048, 16, 2, 128, 128, True),
    (2, 1024, 8, 2, 64, 64, True),
    (1, 1024, 8, 8, 80, 80, False),
    (2, 512, 4, 2, 128, 64, True),
]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", BACKWARD, ids=str)
def test_large_backward(dtype, shape):
    """dq, dk, dv of a random cotangent against the float32 reference's, within twice
    the forward's tolerance (issue 14's bound)."""
    B, S, Nq, Nkv, H, Hv, causal = shape
    q, k, v = _sequence_inputs(shape, dtype)
    w = jax.random.normal(jax.random.key(hash(shape) % 2**31 + 1), (B, S, Nq, Hv), jnp.float32)

    def grads(fn, *args):
        loss = lambda q, k, v: (fn(q, k, v, is_causal=causal).astype(jnp.float32) * w).sum()
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)

    got = grads(jax_mea.dot_product_attention, q, k, v)
    want = grads(jax_mea.reference.dot_product_attention,
                 *(x.astype(jnp.float32) for x in (q, k, v)))
    for name, g, r in zip(("dq", "dk", "dv"), got, want):
        _check(g, r, dtype, f"{name} {shape}", factor=2)


DECODE = [
    # (B, cache length, Nq, Nkv, H, Hv)
    (16, 8192, 32, 4, 128, 128),
    (1, 8192, 64, 8, 128, 128),
    (8, 4096, 32, 32, 64, 64),
    (4, 4096, 32, 8, 256, 256),
    (16, 2048, 32, 8, 192, 128),
    # One wave through the workspace on an H100/H200 (132 SMs): the spread merge, its
    # splits meeting at a barrier (4 groups x 33 splits; 8 x 16).
    (1, 32768 + 32, 16, 4, 128, 128),
    (1, 32768, 32, 8, 128, 128),
]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("shape", DECODE, ids=str)
def test_large_decode(dtype, shape):
    """One decode step over a long ragged cache (lengths from 1 to full)."""
    B, L, Nq, Nkv, H, Hv = shape
    keys = jax.random.split(jax.random.key(hash(shape) % 2**31), 5)
    cache = jax_mea.KVCache.create(B, L, Nkv, H, Hv, dtype=dtype).replace(
        key=_random(keys[0], (B, Nkv, L, H), dtype),
        value=_random(keys[1], (B, Nkv, L, Hv), dtype),
        lengths=jax.random.randint(keys[2], (B,), 0, L).at[0].set(L - 1).astype(jnp.int32))
    q = _random(keys[3], (B, 1, Nq, H), dtype)
    kv_new = _random(keys[4], (B, 1, Nkv, max(H, Hv)), dtype)
    k_new, v_new = kv_new[..., :H], kv_new[..., :Hv]
    out, new = jax.jit(jax_mea.decode_attention)(q, k_new, v_new, cache)
    ref, ref_cache = jax.jit(lambda *a: jax_mea.reference.decode_attention(
        *(x.astype(jnp.float32) for x in a[:3]),
        a[3].replace(key=a[3].key.astype(jnp.float32), value=a[3].value.astype(jnp.float32))))(
            q, k_new, v_new, cache)
    _check(out, ref, dtype, f"decode {shape}")
    np.testing.assert_array_equal(np.asarray(new.lengths), np.asarray(ref_cache.lengths))
    np.testing.assert_array_equal(np.asarray(new.key.astype(jnp.float32)),
                                  np.asarray(ref_cache.key))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_programs_of_many_calls(dtype):
    """Programs of many attention calls and decode steps, which XLA records into a
    command buffer (CUDA graph) with the handler run under stream capture: every
    call's output against the reference, then again on fresh buffers (XLA
    re-records), so a plan or workspace baked into the graph would show. Ragged
    long caches (split, balanced splits, the fused combine's counters) and B1 (the
    cluster merge)."""
    n = 8
    shapes = [(8, 16384, 32, 8, 128, 128), (1, 8192, 32, 8, 64, 64)]
    for B, L, Nq, Nkv, H, Hv in shapes:
        def inputs(seed):
            keys = jax.random.split(jax.random.key(seed), 4 * n)
            sets = []
            for i in range(n):
                kq, kk, kv, kl = keys[4 * i:4 * i + 4]
                lens = jax.random.randint(kl, (B,), 0, L + 1).at[0].set(L).astype(jnp.int32)
                sets.append((_random(kq, (B, 1, Nq, H), dtype), _random(kk, (B, L, Nkv, H), dtype),
                             _random(kv, (B, L, Nkv, Hv), dtype), lens))
            return sets

        program = jax.jit(lambda sets: [jax_mea.dot_product_attention(
            q, k, v, key_value_seq_lengths=lens) for q, k, v, lens in sets])
        reference = jax.jit(lambda q, k, v, lens: jax_mea.reference.dot_product_attention(
            q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32),
            key_value_seq_lengths=lens))
        for seed in (1, 2):
            sets = inputs(seed + B)
            for i, out in enumerate(program(sets)):
                _check(out, reference(*sets[i]), dtype, f"call {i} of {n}, B{B} S{L}, seed {seed}")

    # Decode steps in one program: each appends a token and attends (aliased cache).
    B, L, Nq, Nkv, H = 4, 4096, 16, 4, 128
    keys = jax.random.split(jax.random.key(7), 4)
    cache = jax_mea.KVCache.create(B, L, Nkv, H, dtype=dtype).replace(
        key=_random(keys[0], (B, Nkv, L, H), dtype), value=_random(keys[1], (B, Nkv, L, H), dtype),
        lengths=jnp.array([L - n, 0, 1000, 3], jnp.int32))
    qs = _random(keys[2], (n, B, 1, Nq, H), dtype)
    kvs = _random(keys[3], (n, B, 1, Nkv, H), dtype)

    def steps(step, cache):
        outs = []
        for i in range(n):
            out, cache = step(qs[i], kvs[i], kvs[i], cache)
            outs.append(out)
        return outs, cache

    outs, new = jax.jit(partial(steps, jax_mea.decode_attention))(cache)
    f32 = lambda c: c.replace(key=c.key.astype(jnp.float32), value=c.value.astype(jnp.float32))
    ref_outs, ref_new = steps(lambda q, k, v, c: jax_mea.reference.decode_attention(
        q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32), c), f32(cache))
    for i in range(n):
        _check(outs[i], ref_outs[i], dtype, f"decode step {i} of {n}")
    np.testing.assert_array_equal(np.asarray(new.lengths), np.asarray(ref_new.lengths))

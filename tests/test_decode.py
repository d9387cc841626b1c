"""KVCache and decode_attention: every step against a numpy model of the cache
(the tokens appended, the ones past max_seq_len dropped) and full attention in
float64 over what that model holds, both independent of the kernels and of
jax_mea.reference; cache contents after every step; ragged lengths, 200+ cached
keys, a cache filled exactly to capacity and past it, chunked prefill, vmap,
donation (in place, checked from the compiled step) and no recompilation per step."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
from jax_mea import reference
from conftest import (DTYPES, assert_close, assert_same, assert_same_kernel, attention_f64, f32,
                      np_dtype, on_gpu, randn)


class CacheModel:
    """What a KVCache must hold after each step, kept in numpy: key/value
    [B, Nkv, L, H|Hv] float32, lengths, overflowed."""

    def __init__(self, cache: jax_mea.KVCache):
        self.key = np.array(cache.key.astype(jnp.float32))
        self.value = np.array(cache.value.astype(jnp.float32))
        self.lengths = np.asarray(cache.lengths).astype(np.int64)
        self.overflowed = np.asarray(cache.overflowed).copy()

    @property
    def capacity(self) -> int:
        return self.key.shape[2]

    def set_lengths(self, cache: jax_mea.KVCache, lengths) -> jax_mea.KVCache:
        """Sets the lengths of both the model and `cache` (ragged starts)."""
        self.lengths = np.asarray(lengths, np.int64)
        return cache.replace(lengths=jnp.asarray(lengths, jnp.int32))

    def append(self, k, v) -> np.ndarray:
        """Stores k [B, T, Nkv, H] / v at lengths[b] + t (dropping positions past
        capacity); returns the lengths before the step."""
        starts = self.lengths.copy()
        steps = k.shape[1]
        for b in range(k.shape[0]):
            for t in range(steps):
                if starts[b] + t < self.capacity:
                    self.key[b, :, starts[b] + t] = f32(k[b, t])
                    self.value[b, :, starts[b] + t] = f32(v[b, t])
        self.lengths = np.minimum(starts + steps, self.capacity)
        self.overflowed |= starts + steps > self.capacity
        return starts

    def attend(self, q, starts, *, scale, softcap=0.0, window=None) -> np.ndarray:
        """float64 [B, T, Nq, Hv]: token t of sequence b sits at p = starts[b] + t and
        sees the stored keys j < lengths[b] with j <= p (and j >= p - window)."""
        steps = q.shape[1]
        pos = starts[:, None, None, None] + np.arange(steps)[:, None]
        j = np.arange(self.capacity)
        allowed = (j <= pos) & (j < self.lengths[:, None, None, None])
        if window is not None:
            allowed &= j >= pos - window
        out = attention_f64(np.swapaxes(f32(q), 1, 2), self.key, self.value, scale=scale,
                            softcap=softcap, allowed=allowed)
        return np.swapaxes(out, 1, 2)

    def check(self, cache: jax_mea.KVCache):
        """The cache holds exactly what the model does."""
        np.testing.assert_array_equal(f32(cache.key.astype(jnp.float32)), self.key, "cache.key")
        np.testing.assert_array_equal(f32(cache.value.astype(jnp.float32)), self.value,
                                      "cache.value")
        np.testing.assert_array_equal(np.asarray(cache.lengths), self.lengths, "cache.lengths")
        np.testing.assert_array_equal(np.asarray(cache.overflowed), self.overflowed,
                                      "cache.overflowed")


def run_step(step, model, cache, q, k, v, dtype, **options):
    """One step: the output against the model's float64 attention, the returned
    cache against the model. options: decode_attention's keywords."""
    starts = model.append(k, v)
    out, cache = step(q, k, v, cache, **options)
    model.check(cache)
    window = options.get("local_window_size")
    window = window[0] if isinstance(window, tuple) else window
    scale = options.get("scale") or q.shape[-1] ** -0.5
    want = model.attend(q, starts, scale=scale, softcap=options.get("softcap", 0.0),
                        window=window)
    assert out.dtype == np_dtype(dtype) and out.shape == want.shape
    assert_close(out, want, dtype)
    return out, cache


class Stream:
    """Random tokens for a batch."""

    def __init__(self, rng, batch, num_heads, num_kv, head_size, v_head_size, dtype):
        self.rng, self.dtype = rng, dtype
        self.shape = (batch, num_heads, num_kv, head_size, v_head_size)

    def tokens(self, steps):
        b, n, nkv, h, hv = self.shape
        return (randn(self.rng, (b, steps, n, h), self.dtype),
                randn(self.rng, (b, steps, nkv, h), self.dtype),
                randn(self.rng, (b, steps, nkv, hv), self.dtype))


def random_cache(rng, batch, capacity, num_kv, head_size, v_head_size, dtype, lengths):
    """A cache whose every slot holds random data (stale slots included)."""
    cache = jax_mea.KVCache.create(batch, capacity, num_kv, head_size, v_head_size,
                                   dtype=np_dtype(dtype))
    return cache.replace(
        key=jnp.asarray(randn(rng, cache.key.shape, dtype)),
        value=jnp.asarray(randn(rng, cache.value.shape, dtype)),
        lengths=jnp.asarray(lengths, jnp.int32))


CONFIGS = [
    # (Nq, Nkv, H, Hv)
    (4, 4, 16, 16),    # MHA
    (8, 2, 32, 32),    # GQA 4:1
    (6, 1, 24, 8),     # MQA, Hv != H, sizes not powers of two
    (4, 2, 40, 72),    # Hv > H
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", CONFIGS, ids=str)
def test_decode_steps_match_history(rng, dtype, heads):
    """Ragged prompts (prefill as T > 1), then T = 1 steps: each step equals full
    attention over the history, and the cache holds exactly the tokens given."""
    num_heads, num_kv, head_size, v_head_size = heads
    batch, capacity = 3, 48
    stream = Stream(rng, batch, num_heads, num_kv, head_size, v_head_size, dtype)
    cache = jax_mea.KVCache.create(batch, capacity, num_kv, head_size, v_head_size,
                                   dtype=np_dtype(dtype))
    model = CacheModel(cache)
    step = jax.jit(jax_mea.decode_attention)
    # Ragged start: sequence b gets a prompt of its own length (0 allowed), by
    # resetting the other sequences' lengths after a shared prefill.
    _, cache = run_step(step, model, cache, *stream.tokens(9), dtype)
    cache = model.set_lengths(cache, [9, 4, 0])
    for _ in range(6):
        _, cache = run_step(step, model, cache, *stream.tokens(1), dtype)
    np.testing.assert_array_equal(np.asarray(cache.lengths), [15, 10, 6])


@pytest.mark.parametrize("dtype,options", [
    ("float32", dict(softcap=5.0)),
    ("float32", dict(scale=0.3)),
    ("float32", dict(local_window_size=3)),
    ("float32", dict(local_window_size=(2, 0))),
    ("float16", dict(local_window_size=3)),
    ("float16", dict(softcap=5.0)),
    ("bfloat16", dict(softcap=2.0, local_window_size=4)),
], ids=str)
def test_decode_options(rng, dtype, options):
    batch, num_heads, num_kv, head_size, v_head_size = 2, 4, 2, 16, 24
    stream = Stream(rng, batch, num_heads, num_kv, head_size, v_head_size, dtype)
    cache = random_cache(rng, batch, 32, num_kv, head_size, v_head_size, dtype, [0, 5])
    model = CacheModel(cache)
    for steps in (7, 1, 3, 1):
        _, cache = run_step(jax_mea.decode_attention, model, cache, *stream.tokens(steps),
                            dtype, **options)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("options", [{}, dict(local_window_size=100, softcap=3.0)],
                         ids=["plain", "window-softcap"])
def test_decode_past_the_tiles(rng, dtype, options):
    """Several CPU key tiles (64 keys) and query blocks (64 rows of heads x
    positions): ragged lengths up to 250, a 70-token chunk (overflowing the
    first sequence), then a decode step."""
    batch, num_heads, num_kv, head_size, v_head_size = 3, 8, 2, 64, 48
    stream = Stream(rng, batch, num_heads, num_kv, head_size, v_head_size, dtype)
    cache = random_cache(rng, batch, 300, num_kv, head_size, v_head_size, dtype,
                         [250, 63, 0])
    model = CacheModel(cache)
    step = jax.jit(jax_mea.decode_attention, static_argnames=("local_window_size", "softcap"))
    for steps in (70, 1):
        _, cache = run_step(step, model, cache, *stream.tokens(steps), dtype, **options)
    assert model.overflowed[0] and not model.overflowed[1:].any()


def test_cache_filled_exactly_to_capacity(rng):
    """lengths + T == max_seq_len fits (no overflow); one token more overflows."""
    stream = Stream(rng, 2, 4, 2, 16, 16, "float32")
    cache = random_cache(rng, 2, 10, 2, 16, 16, "float32", [7, 0])
    model = CacheModel(cache)
    _, cache = run_step(jax_mea.decode_attention, model, cache, *stream.tokens(3), "float32")
    np.testing.assert_array_equal(np.asarray(cache.lengths), [10, 3])
    np.testing.assert_array_equal(np.asarray(cache.overflowed), [False, False])
    np.testing.assert_array_equal(np.asarray(cache.remaining()), [0, 7])
    _, cache = run_step(jax_mea.decode_attention, model, cache, *stream.tokens(1), "float32")
    np.testing.assert_array_equal(np.asarray(cache.overflowed), [True, False])


def test_chunked_prefill_equals_one_shot(rng):
    """A prompt fed as chunks 5 + 3 + 1 gives the outputs of a single T = 9 call,
    bit for bit (the same rows, the same key tiles), and the same cache."""
    stream = Stream(rng, 2, 8, 2, 32, 32, "float32")
    q, k, v = stream.tokens(9)
    empty = jax_mea.KVCache.create(2, 16, 2, 32, dtype=jnp.float32)
    whole, whole_cache = jax_mea.decode_attention(q, k, v, empty)
    pieces, cache = [], empty
    for a, b in ((0, 5), (5, 8), (8, 9)):
        out, cache = jax_mea.decode_attention(q[:, a:b], k[:, a:b], v[:, a:b], cache)
        pieces.append(out)
    assert_same_kernel(np.concatenate(pieces, axis=1), whole, "float32")
    assert_same(cache.key, whole_cache.key)
    assert_same(cache.value, whole_cache.value)
    np.testing.assert_array_equal(cache.lengths, [9, 9])


def test_scan_decode_loop(rng):
    """The cache as a lax.scan carry: bit for bit the outputs of a Python loop of
    steps (the same kernel on the same shapes)."""
    stream = Stream(rng, 2, 4, 2, 16, 16, "float32")
    q, k, v = stream.tokens(6)
    cache = jax_mea.KVCache.create(2, 8, 2, 16, dtype=jnp.float32)

    def body(c, qkv):
        out, c = jax_mea.decode_attention(*(x[:, None] for x in qkv), c)
        return c, out[:, 0]

    xs = tuple(jnp.moveaxis(x, 1, 0) for x in (q, k, v))
    final, outs = jax.jit(lambda c, xs: jax.lax.scan(body, c, xs))(cache, xs)
    loop_cache, loop_outs = cache, []
    for t in range(6):
        out, loop_cache = jax_mea.decode_attention(q[:, t:t + 1], k[:, t:t + 1], v[:, t:t + 1],
                                                   loop_cache)
        loop_outs.append(out[:, 0])
    assert_same(outs, np.stack(loop_outs))
    assert_same(final.key, loop_cache.key)
    assert_same(final.value, loop_cache.value)


def test_vmap_over_per_sequence_caches(rng):
    """vmap over a stack of caches equals calling each cache on its own, the overflow
    flags (set inside the call, folded into its batch) included: row 2 overflows."""
    stream = Stream(rng, 3, 4, 2, 16, 8, "float32")
    caches = [jax_mea.KVCache.create(3, 12, 2, 16, 8, dtype=jnp.float32).replace(
        lengths=jnp.asarray([i, 2, 11], jnp.int32)) for i in range(4)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *caches)
    qs, ks, vs = zip(*(stream.tokens(2) for _ in caches))
    out, new = jax.vmap(jax_mea.decode_attention)(jnp.stack(qs), jnp.stack(ks), jnp.stack(vs),
                                                  stacked)
    for i, c in enumerate(caches):
        o, c = jax_mea.decode_attention(qs[i], ks[i], vs[i], c)
        assert_same_kernel(out[i], o, "float32")
        assert_same(new.key[i], c.key)
        assert_same(new.value[i], c.value)
        np.testing.assert_array_equal(new.lengths[i], c.lengths)
        np.testing.assert_array_equal(new.overflowed[i], c.overflowed)
        np.testing.assert_array_equal(new.overflowed[i], [False, False, True])


def _decode_step(cache, q, k, v):
    out, cache = jax_mea.decode_attention(q, k, v, cache)
    return out, cache


def test_donated_cache_is_updated_in_place(rng):
    """With the cache donated, the compiled step aliases it (no second cache in
    the step's memory), the returned cache lives in the same buffers, and the
    step is right: a token appended after 300 and 511 stored ones."""
    batch, capacity, num_kv, head_size = 2, 512, 2, 32
    cache = random_cache(rng, batch, capacity, num_kv, head_size, head_size, "float32",
                         [300, 511])
    model = CacheModel(cache)
    q, k, v = Stream(rng, batch, 4, num_kv, head_size, head_size, "float32").tokens(1)
    cache_bytes = cache.key.nbytes + cache.value.nbytes

    step = jax.jit(_decode_step, donate_argnums=0)
    memory = step.lower(cache, q, k, v).compile().memory_analysis()
    assert memory.alias_size_in_bytes >= cache_bytes
    assert memory.temp_size_in_bytes < cache.key.nbytes

    pointers = (cache.key.unsafe_buffer_pointer(), cache.value.unsafe_buffer_pointer())
    starts = model.append(k, v)
    out, new = step(cache, q, k, v)
    assert (new.key.unsafe_buffer_pointer(), new.value.unsafe_buffer_pointer()) == pointers
    assert cache.key.is_deleted()
    model.check(new)
    assert_close(out, model.attend(q, starts, scale=head_size ** -0.5), "float32")


def test_undonated_cache_is_left_intact(rng):
    """Without donation the input cache keeps its contents (XLA copies it)."""
    cache = jax_mea.KVCache.create(1, 8, 1, 8, dtype=jnp.float32)
    q, k, v = Stream(rng, 1, 2, 1, 8, 8, "float32").tokens(3)
    _, new = jax.jit(_decode_step)(cache, q, k, v)
    assert not np.asarray(cache.key).any() and int(cache.lengths[0]) == 0
    np.testing.assert_array_equal(new.key[0, :, :3], np.swapaxes(k[0], 0, 1))


def test_capacity_overflow_drops_tokens_and_flags(rng):
    """A step past max_seq_len writes nothing out of bounds: the tokens that fit
    are stored, the rest dropped, lengths saturate and `overflowed` is set; the
    outputs of every sequence, overflowing ones included, attend over what the
    cache holds."""
    batch, capacity, num_kv, head_size = 3, 10, 1, 8
    cache = jax_mea.KVCache.create(batch, capacity, num_kv, head_size, dtype=jnp.float32)
    sentinel = jnp.full_like(cache.key, 7.0)
    cache = cache.replace(key=sentinel, value=sentinel - 9.0,
                          lengths=jnp.asarray([8, 10, 2], jnp.int32))
    model = CacheModel(cache)
    q, k, v = Stream(rng, batch, 2, num_kv, head_size, head_size, "float32").tokens(4)
    _, new = run_step(jax.jit(jax_mea.decode_attention), model, cache, q, k, v, "float32")

    np.testing.assert_array_equal(new.lengths, [10, 10, 6])
    np.testing.assert_array_equal(new.overflowed, [True, True, False])
    key = np.asarray(new.key)
    np.testing.assert_array_equal(key[0, 0, 8:10], k[0, :2, 0])  # the two that fit
    np.testing.assert_array_equal(key[1], 7.0)                    # full: nothing written
    # The flag is sticky (sequence 0, shortened, then a step that fits, keeps it) and
    # reset(which) clears it for those sequences only (sequence 1).
    which = np.array([False, True, False])
    new = model.set_lengths(new, [5, 10, 6])
    model.lengths[which], model.overflowed[which] = 0, False
    _, again = run_step(jax_mea.decode_attention, model, new.reset(jnp.asarray(which)),
                        *(x[:, :1] for x in (q, k, v)), "float32")
    np.testing.assert_array_equal(again.overflowed, [True, False, False])
    np.testing.assert_array_equal(again.lengths, [6, 1, 7])
    assert np.asarray(new.reset().overflowed).sum() == 0
    assert int(new.reset().lengths.sum()) == 0


def test_step_compiles_once(rng):
    """A jitted step traced once serves every later step (lengths are data)."""
    traces = []

    def step(cache, q, k, v):
        traces.append(1)
        return jax_mea.decode_attention(q, k, v, cache)

    step = jax.jit(step, donate_argnums=0)
    cache = jax_mea.KVCache.create(2, 16, 2, 8, dtype=jnp.float32)
    stream = Stream(rng, 2, 2, 2, 8, 8, "float32")
    for _ in range(5):
        _, cache = step(cache, *stream.tokens(1))
    assert len(traces) == 1
    np.testing.assert_array_equal(cache.lengths, [5, 5])


def test_cache_helpers():
    cache = jax_mea.KVCache.create(2, 16, 4, 32, v_head_size=8, dtype=jnp.float16)
    assert (cache.batch_size, cache.max_seq_len, cache.num_kv_heads) == (2, 16, 4)
    assert (cache.head_size, cache.v_head_size, cache.dtype) == (32, 8, jnp.float16)
    assert cache.capacity == 16
    np.testing.assert_array_equal(cache.remaining(), [16, 16])
    leaves = jax.tree_util.tree_leaves(cache)
    assert len(leaves) == 4
    moved = jax.device_put(cache)
    assert isinstance(moved, jax_mea.KVCache)


@pytest.mark.parametrize("bad, match", [
    (dict(query=(2, 1, 4, 16)), "query"),
    (dict(key=(2, 2, 2, 8)), "key"),
    (dict(value=(2, 1, 2, 4)), "value"),
    (dict(query=(2, 1, 3, 8)), "multiple"),
    (dict(steps=20), "max_seq_len"),
], ids=str)
def test_decode_validation(bad, match):
    cache = jax_mea.KVCache.create(2, 16, 2, 8, dtype=jnp.float32)
    steps = bad.get("steps", 1)
    shapes = dict(query=(2, steps, 4, 8), key=(2, steps, 2, 8), value=(2, steps, 2, 8))
    shapes.update({k: v for k, v in bad.items() if k != "steps"})
    args = [jnp.zeros(shapes[n], jnp.float32) for n in ("query", "key", "value")]
    with pytest.raises(ValueError, match=match):
        jax_mea.decode_attention(*args, cache)


def test_decode_dtype_mismatch():
    cache = jax_mea.KVCache.create(1, 4, 1, 8, dtype=jnp.bfloat16)
    q = jnp.zeros((1, 1, 1, 8), jnp.float32)
    with pytest.raises(TypeError, match="cache.key"):
        jax_mea.decode_attention(q, q, q, cache)
    with pytest.raises(ValueError, match="max_seq_len"):
        jax_mea.KVCache.create(1, 0, 1, 8)


def test_traced_scale(rng):
    """A traced scale is folded into the query: the step matches the oracle."""
    stream = Stream(rng, 2, 4, 2, 16, 16, "float32")
    cache = jax_mea.KVCache.create(2, 8, 2, 16, dtype=jnp.float32)
    model = CacheModel(cache)
    q, k, v = stream.tokens(3)
    step = jax.jit(lambda q, k, v, cache, scale: jax_mea.decode_attention(q, k, v, cache,
                                                                          scale=scale))
    run_step(lambda q, k, v, cache, scale: step(q, k, v, cache, jnp.float32(scale)), model,
             cache, q, k, v, "float32", scale=0.7)


def test_decode_bad_arguments():
    """KVCache.create's dtype and decode_attention's cache argument are checked."""
    with pytest.raises(TypeError, match="dtype"):
        jax_mea.KVCache.create(1, 4, 1, 8, dtype=jnp.int32)
    cache = jax_mea.KVCache.create(1, 4, 1, 8, dtype=jnp.float32)
    q = jnp.zeros((1, 1, 1, 8), jnp.float32)
    as_tuple = (cache.key, cache.value, cache.lengths, cache.overflowed)
    with pytest.raises(TypeError, match="KVCache"):
        jax_mea.decode_attention(q, q, q, as_tuple)


@pytest.mark.parametrize("fn", [jax_mea.decode_attention, reference.decode_attention],
                         ids=["jax_mea", "reference"])
def test_decode_window_right_side(rng, fn):
    """decode_attention is causal: a window's right side may be 0, None or +inf (all
    mean what causality already says) and gives the int window's result; any other
    right side is an error (-1 too: read literally, as jax.nn reads it, it would drop
    the diagonal), in jax_mea and in the reference alike."""
    cache = random_cache(rng, 2, 16, 2, 8, 8, "float32", [5, 9])
    q, k, v = Stream(rng, 2, 4, 2, 8, 8, "float32").tokens(3)
    fn = jax.jit(fn, static_argnames="local_window_size")
    want, _ = fn(q, k, v, cache, local_window_size=2)
    for window in ((2, 0), (2, None), (2, float("inf"))):
        got, _ = fn(q, k, v, cache, local_window_size=window)
        assert_same(got, want, f"local_window_size={window}")
    for window in ((2, 1), (2, -1), (2, -2)):
        with pytest.raises(ValueError, match="local_window_size"):
            fn(q, k, v, cache, local_window_size=window)


def _pack(q, k, v):
    """A fused QKV projection's output [B, T, Nq + 2 Nkv, H]: query, key, value heads."""
    return jnp.concatenate([jnp.asarray(x) for x in (q, k, v)], axis=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads,steps", [((4, 4, 16), 1), ((8, 2, 32), 1), ((6, 2, 24), 3),
                                         ((8, 1, 128), 1), ((4, 2, 72), 2), ((3, 1, 12), 2),
                                         ((4, 2, 20), 1), ((8, 2, 128), 33)], ids=str)
def test_packed_qkv_step(rng, dtype, heads, steps):
    """key and value None, query packed [B, T, Nq + 2 Nkv, H]: the kernel reads the
    three head ranges of the one array through its strides. Each step matches the
    float64 model and is bit-identical to the same step with q, k, v apart (the same
    kernel on the same values), on ragged lengths, an empty row and one that
    overflows; the reference takes the packed form too. On the GPU, float16 and
    bfloat16 steps take the tensor-core decode kernel (float32 its SIMT one; H 12 and
    20 its unaligned loads), and T = 33 with 4 query heads a kv head (132 rows) the
    forward kernel after the append."""
    num_heads, num_kv, head_size = heads
    batch, capacity = 3, 40 + steps
    cache = random_cache(rng, batch, capacity, num_kv, head_size, head_size, dtype,
                         [0, 17, capacity - 1])
    model = CacheModel(cache)
    stream = Stream(rng, batch, num_heads, num_kv, head_size, head_size, dtype)
    packed_step = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c))
    apart_step = jax.jit(jax_mea.decode_attention)
    for _ in range(2):
        q, k, v = stream.tokens(steps)
        qkv = _pack(q, k, v)
        want_out, want_cache = apart_step(q, k, v, cache)
        ref_packed, _ = reference.decode_attention(qkv, None, None, cache)
        ref_apart, _ = reference.decode_attention(q, k, v, cache)
        assert_same(ref_packed, ref_apart, "reference, packed")
        out, cache = run_step(lambda q, k, v, c: packed_step(qkv, c), model, cache, q, k, v,
                              dtype)
        assert_same(out, want_out, "packed out")
        assert_same(cache.key, want_cache.key, "packed cache.key")
        assert_same(cache.value, want_cache.value, "packed cache.value")


def test_packed_qkv_needs_no_slices(rng):
    """The compiled packed step hands the packed array to the custom call as it is:
    no slice or copy of it runs before the call (the point of packing)."""
    cache = random_cache(rng, 2, 32, 2, 16, 16, "float32", [3, 9])
    qkv = jnp.asarray(rng.standard_normal((2, 1, 8, 16)), jnp.float32)
    step = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c),
                   donate_argnums=1)
    hlo = step.lower(qkv, cache).compile().as_text()
    entry = hlo[hlo.index("\nENTRY"):]
    param0 = re.search(r"(%[\w.]+) = f32\[2,1,8,16\][^ ]* parameter\(0\)", entry)
    call = re.search(r"custom-call\((%[\w.]+),.*custom_call_target=\"jax_mea_decode_step\"",
                     entry)
    assert param0 and call and call.group(1) == param0.group(1), hlo


def test_packed_qkv_traced_scale_and_vmap(rng):
    """A traced scale with a packed query scales the query heads alone (the call then
    takes the three apart); vmap folds the mapped axis into the batch."""
    stream = Stream(rng, 2, 4, 2, 16, 16, "float32")
    cache = random_cache(rng, 2, 12, 2, 16, 16, "float32", [2, 7])
    model = CacheModel(cache)
    q, k, v = stream.tokens(2)
    qkv = _pack(q, k, v)
    step = jax.jit(lambda qkv, c, s: jax_mea.decode_attention(qkv, None, None, c, scale=s))
    run_step(lambda q, k, v, c, scale: step(qkv, c, jnp.float32(scale)), model, cache, q, k,
             v, "float32", scale=0.7)
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), (qkv, cache))
    outs, caches = jax.vmap(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c))(
        *stacked)
    want, want_cache = jax_mea.decode_attention(q, k, v, cache)
    for i in range(2):
        assert_same_kernel(outs[i], want, "float32", f"vmapped packed out {i}")
        for name in ("key", "value", "lengths", "overflowed"):
            assert_same(getattr(caches, name)[i], getattr(want_cache, name),
                        f"vmapped packed cache.{name} {i}")


def test_packed_qkv_window_and_softcap(rng):
    """A packed step with a local window and softcap: bit-identical to the step with
    q, k, v apart (the options reach the same kernel either way)."""
    cache = random_cache(rng, 2, 48, 2, 32, 32, "bfloat16", [30, 41])
    q, k, v = Stream(rng, 2, 6, 2, 32, 32, "bfloat16").tokens(2)
    options = dict(local_window_size=5, softcap=2.0)
    want = jax.jit(lambda q, k, v, c: jax_mea.decode_attention(q, k, v, c, **options))(
        q, k, v, cache)
    got = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c, **options))(
        _pack(q, k, v), cache)
    for g, w, name in zip(jax.tree.leaves(got), jax.tree.leaves(want),
                          ("out", "key", "value", "lengths", "overflowed")):
        assert_same(g, w, f"packed with window and softcap: {name}")


@pytest.mark.parametrize("shape, match", [
    ((2, 1, 4, 8), "Nq \\+ 2 Nkv"),        # no query heads left
    ((2, 1, 8), "rank 4"),
    ((2, 1, 7, 8), "multiple"),            # Nq = 3 over 2 kv heads
    ((3, 1, 8, 8), "B = 2"),
    ((2, 1, 8, 16), "H = Hv = 8"),
], ids=str)
def test_packed_qkv_validation(shape, match):
    cache = jax_mea.KVCache.create(2, 16, 2, 8, dtype=jnp.float32)
    with pytest.raises(ValueError, match=match):
        jax_mea.decode_attention(jnp.zeros(shape, jnp.float32), None, None, cache)
    q = jnp.zeros((2, 1, 4, 8), jnp.float32)
    for fn in (jax_mea.decode_attention, reference.decode_attention):
        with pytest.raises(ValueError, match="both, or neither"):
            fn(q, q[:, :, :2], None, cache)
    asymmetric = jax_mea.KVCache.create(2, 16, 2, 8, 4, dtype=jnp.float32)
    with pytest.raises(ValueError, match="H = Hv"):
        jax_mea.decode_attention(jnp.zeros((2, 1, 8, 8)), None, None, asymmetric)


@pytest.mark.skipif(not on_gpu(), reason="XLA's GPU pipeline decides these copies (the CPU "
                    "pipeline copies loop-carried lengths regardless)")
def test_decode_loop_copies_no_lengths_per_layer_gpu(rng):
    """A model's decode loop (4 layers' caches carried through a scan) compiles
    without a copy of each layer's lengths: the decode call derives its lengths
    from the starts instead of taking the new lengths beside the old ones, which
    made XLA copy the old lengths before every layer's call (16 memcpys per step
    of the large decode_model, about 1 us each; issue 11)."""
    layers, batch = 4, 3
    caches = tuple(random_cache(rng, batch, 64, 2, 32, 32, "bfloat16", [5, 9, 20])
                   for _ in range(layers))
    x = jnp.asarray(rng.standard_normal((batch, 1, 4, 32)), jnp.bfloat16)

    def loop(caches, x):
        def step(carry, _):
            caches, x = carry
            new = []
            for cache in caches:
                x, cache = jax_mea.decode_attention(x, x[:, :, :2], x[:, :, :2], cache)
                new.append(cache)
            return (tuple(new), x), None
        return jax.lax.scan(step, (caches, x), None, length=4)[0]

    hlo = jax.jit(loop, donate_argnums=0).lower(caches, x).compile().as_text()
    lengths_copies = re.findall(rf"= s32\[{batch}\]\{{0\}} copy\(", hlo)
    assert len(lengths_copies) == 0, f"{len(lengths_copies)} copies of the lengths"
    flag_copies = re.findall(rf"= pred\[{batch}\]\{{0\}} copy\(", hlo)
    assert len(flag_copies) == 0, f"{len(flag_copies)} copies of the overflow flags"


def test_overflow_flags_set_inside_the_call(rng):
    """The call sets the cache's overflow flags in place (an aliased operand): the
    compiled step computes no `or` of them in XLA, which at batch 1 was a kernel of
    its own per layer beside the lengths' min (issue 11). The flags stay set once set,
    and a row that fits exactly does not overflow."""
    cache = random_cache(rng, 3, 16, 2, 8, 8, "float32", [15, 16, 3])
    q = jnp.asarray(rng.standard_normal((3, 1, 4, 8)), jnp.float32)
    kv = jnp.asarray(rng.standard_normal((3, 1, 2, 8)), jnp.float32)
    step = jax.jit(lambda c: jax_mea.decode_attention(q, kv, kv, c)[1], donate_argnums=0)
    hlo = step.lower(cache).compile().as_text()
    assert not re.search(r"pred\[3\]\{0\} or\(", hlo), hlo
    assert re.search(r"output_to_operand_aliasing=\{[^\n]*\{3\}: \(7, \{\}\)", hlo), hlo
    cache = step(cache)  # 15 + 1 fits, 16 + 1 overflows
    np.testing.assert_array_equal(np.asarray(cache.overflowed), [False, True, False])
    np.testing.assert_array_equal(np.asarray(cache.lengths), [16, 16, 4])
    cache = step(cache)  # now row 0 too; row 1 stays set
    np.testing.assert_array_equal(np.asarray(cache.overflowed), [True, True, False])
    cache = step(cache.reset(jnp.asarray([False, True, False])))  # reset clears row 1
    np.testing.assert_array_equal(np.asarray(cache.overflowed), [True, False, False])


def test_cache_flags_shape_checked():
    """A cache whose lengths or overflow flags are not [B] is refused at trace time."""
    cache = jax_mea.KVCache.create(2, 8, 1, 4, dtype=jnp.float32)
    q, kv = jnp.zeros((2, 1, 1, 4)), jnp.zeros((2, 1, 1, 4))
    for field, bad in (("lengths", jnp.zeros((3,), jnp.int32)),
                       ("overflowed", jnp.zeros((2, 1), bool))):
        with pytest.raises(ValueError, match=f"cache.{field} must be \\[B\\] = \\[2\\]"):
            jax_mea.decode_attention(q, kv, kv, cache.replace(**{field: bad}))

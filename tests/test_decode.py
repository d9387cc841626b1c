"""KVCache and decode_attention: every step against full attention over the
history (a float64 numpy oracle written here, independent of the kernels and of
jax_mea.reference), cache contents, ragged lengths, chunked prefill, vmap,
donation (in place, checked from the compiled step), capacity overflow, and no
recompilation per step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_mea
from conftest import DTYPES, assert_close, np_dtype, randn


def history_attention(q, keys, values, start, *, scale, softcap=0.0, window=None):
    """float64 oracle: q [T, Nq, H] at positions start..start+T-1 over keys [Nkv, S, H]
    (S = the positions the cache holds after the step). Causal, GQA, left window."""
    steps, num_heads, _ = q.shape
    num_kv, stored, _ = keys.shape
    group = num_heads // num_kv
    out = np.zeros((steps, num_heads, values.shape[2]))
    for t in range(steps):
        pos = start + t
        hi = min(pos + 1, stored)
        lo = 0 if window is None else max(0, pos - window)
        if hi <= lo:
            continue
        for h in range(num_heads):
            k = keys[h // group, lo:hi].astype(np.float64)
            v = values[h // group, lo:hi].astype(np.float64)
            s = k @ q[t, h].astype(np.float64) * scale
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)
            p = np.exp(s - s.max())
            out[t, h] = p @ v / p.sum()
    return out


class Stream:
    """Random tokens for a batch, and the history each sequence has seen."""

    def __init__(self, rng, batch, num_heads, num_kv, head_size, v_head_size, dtype):
        self.rng, self.dtype = rng, dtype
        self.shape = (batch, num_heads, num_kv, head_size, v_head_size)

    def tokens(self, steps):
        b, n, nkv, h, hv = self.shape
        return (randn(self.rng, (b, steps, n, h), self.dtype),
                randn(self.rng, (b, steps, nkv, h), self.dtype),
                randn(self.rng, (b, steps, nkv, hv), self.dtype))


def check_step(out, cache_after, q, starts, *, scale, softcap=0.0, window=None, dtype):
    """out [B, T, Nq, Hv] of one step against the oracle over the cache it produced."""
    keys = np.asarray(cache_after.key.astype(jnp.float32))
    values = np.asarray(cache_after.value.astype(jnp.float32))
    lengths = np.asarray(cache_after.lengths)
    q = np.asarray(jnp.asarray(q).astype(jnp.float32))
    for b in range(q.shape[0]):
        want = history_attention(q[b], keys[b, :, :lengths[b]], values[b, :, :lengths[b]],
                                 int(starts[b]), scale=scale, softcap=softcap, window=window)
        assert_close(np.asarray(out[b].astype(jnp.float32)), want, dtype, f"batch {b}")


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
    step = jax.jit(jax_mea.decode_attention)
    scale = 1.0 / np.sqrt(head_size)
    written_k = [[] for _ in range(batch)]
    written_v = [[] for _ in range(batch)]

    # Ragged start: sequence b gets a prompt of its own length (0 allowed), by
    # resetting the other sequences' lengths after a shared prefill.
    prompt = 9
    q, k, v = stream.tokens(prompt)
    out, cache = step(q, k, v, cache)
    check_step(out, cache, q, np.zeros(batch, int), scale=scale, dtype=dtype)
    keep = np.array([prompt, 4, 0])
    cache = cache.replace(lengths=jnp.asarray(keep, jnp.int32))
    for b in range(batch):
        written_k[b] += list(k[b, :keep[b]])
        written_v[b] += list(v[b, :keep[b]])

    for _ in range(6):
        starts = np.asarray(cache.lengths)
        q, k, v = stream.tokens(1)
        out, cache = step(q, k, v, cache)
        check_step(out, cache, q, starts, scale=scale, dtype=dtype)
        for b in range(batch):
            written_k[b].append(k[b, 0])
            written_v[b].append(v[b, 0])

    np.testing.assert_array_equal(np.asarray(cache.lengths), keep + 6)
    assert not np.asarray(cache.overflowed).any()
    for b in range(batch):
        got_k, got_v = cache.sequence(b)
        np.testing.assert_array_equal(np.asarray(got_k), np.stack(written_k[b], axis=1))
        np.testing.assert_array_equal(np.asarray(got_v), np.stack(written_v[b], axis=1))


@pytest.mark.parametrize("options", [
    dict(softcap=5.0), dict(scale=0.3), dict(local_window_size=3), dict(local_window_size=(2, 0)),
], ids=str)
def test_decode_options(rng, options):
    batch, num_heads, num_kv, head_size, v_head_size = 2, 4, 2, 16, 24
    stream = Stream(rng, batch, num_heads, num_kv, head_size, v_head_size, "float32")
    cache = jax_mea.KVCache.create(batch, 32, num_kv, head_size, v_head_size, dtype=jnp.float32)
    cache = cache.replace(lengths=jnp.asarray([0, 5], jnp.int32))
    window = options.get("local_window_size")
    window = window[0] if isinstance(window, tuple) else window
    for steps in (7, 1, 3, 1):
        starts = np.asarray(cache.lengths)
        q, k, v = stream.tokens(steps)
        out, cache = jax_mea.decode_attention(q, k, v, cache, **options)
        check_step(out, cache, q, starts, scale=options.get("scale", head_size ** -0.5),
                   softcap=options.get("softcap", 0.0), window=window, dtype="float32")


def test_chunked_prefill_equals_one_shot(rng):
    """A prompt fed as chunks 5 + 3 + 1 gives the outputs of a single T = 9 call."""
    stream = Stream(rng, 2, 8, 2, 32, 32, "float32")
    q, k, v = stream.tokens(9)
    empty = jax_mea.KVCache.create(2, 16, 2, 32, dtype=jnp.float32)
    whole, whole_cache = jax_mea.decode_attention(q, k, v, empty)
    pieces, cache = [], empty
    for a, b in ((0, 5), (5, 8), (8, 9)):
        out, cache = jax_mea.decode_attention(q[:, a:b], k[:, a:b], v[:, a:b], cache)
        pieces.append(out)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cache.key, whole_cache.key)
    np.testing.assert_array_equal(cache.lengths, [9, 9])


def test_scan_decode_loop(rng):
    """The cache as a lax.scan carry: same outputs as a Python loop of steps."""
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
    np.testing.assert_allclose(outs, np.stack(loop_outs), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(final.key, loop_cache.key)


def test_vmap_over_per_sequence_caches(rng):
    """vmap over a stack of caches equals calling each cache on its own."""
    stream = Stream(rng, 3, 4, 2, 16, 8, "float32")
    caches = [jax_mea.KVCache.create(3, 12, 2, 16, 8, dtype=jnp.float32).replace(
        lengths=jnp.asarray([i, 2, 0], jnp.int32)) for i in range(4)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *caches)
    qs, ks, vs = zip(*(stream.tokens(2) for _ in caches))
    out, new = jax.vmap(jax_mea.decode_attention)(jnp.stack(qs), jnp.stack(ks), jnp.stack(vs),
                                                  stacked)
    for i, c in enumerate(caches):
        o, c = jax_mea.decode_attention(qs[i], ks[i], vs[i], c)
        np.testing.assert_allclose(out[i], o, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(new.key[i], c.key)
        np.testing.assert_array_equal(new.lengths[i], c.lengths)


def _decode_step(cache, q, k, v):
    out, cache = jax_mea.decode_attention(q, k, v, cache)
    return out, cache


def test_donated_cache_is_updated_in_place(rng):
    """With the cache donated, the compiled step aliases it (no second cache in
    the step's memory) and the returned cache lives in the same buffers."""
    batch, capacity, num_kv, head_size = 2, 512, 2, 32
    cache = jax_mea.KVCache.create(batch, capacity, num_kv, head_size, dtype=jnp.float32)
    q, k, v = Stream(rng, batch, 4, num_kv, head_size, head_size, "float32").tokens(1)
    cache_bytes = cache.key.nbytes + cache.value.nbytes

    step = jax.jit(_decode_step, donate_argnums=0)
    memory = step.lower(cache, q, k, v).compile().memory_analysis()
    assert memory.alias_size_in_bytes >= cache_bytes
    assert memory.temp_size_in_bytes < cache.key.nbytes

    pointers = (cache.key.unsafe_buffer_pointer(), cache.value.unsafe_buffer_pointer())
    _, new = step(cache, q, k, v)
    assert (new.key.unsafe_buffer_pointer(), new.value.unsafe_buffer_pointer()) == pointers
    assert cache.key.is_deleted()


def test_undonated_cache_is_left_intact(rng):
    """Without donation the input cache keeps its contents (XLA copies it)."""
    cache = jax_mea.KVCache.create(1, 8, 1, 8, dtype=jnp.float32)
    q, k, v = Stream(rng, 1, 2, 1, 8, 8, "float32").tokens(3)
    _, new = jax.jit(_decode_step)(cache, q, k, v)
    assert not np.asarray(cache.key).any() and int(cache.lengths[0]) == 0
    np.testing.assert_array_equal(new.key[0, :, :3], np.swapaxes(k[0], 0, 1))


def test_capacity_overflow_drops_tokens_and_flags(rng):
    """A step past max_seq_len writes nothing out of bounds: the tokens that fit
    are stored, the rest dropped, lengths saturate and `overflowed` is set."""
    batch, capacity, num_kv, head_size = 3, 10, 1, 8
    cache = jax_mea.KVCache.create(batch, capacity, num_kv, head_size, dtype=jnp.float32)
    sentinel = jnp.full_like(cache.key, 7.0)
    cache = cache.replace(key=sentinel, value=sentinel,
                          lengths=jnp.asarray([8, 10, 2], jnp.int32))
    q, k, v = Stream(rng, batch, 2, num_kv, head_size, head_size, "float32").tokens(4)
    out, new = jax.jit(_decode_step)(cache, q, k, v)

    np.testing.assert_array_equal(new.lengths, [10, 10, 6])
    np.testing.assert_array_equal(new.overflowed, [True, True, False])
    key = np.asarray(new.key)
    np.testing.assert_array_equal(key[0, 0, 8:10], k[0, :2, 0])  # the two that fit
    np.testing.assert_array_equal(key[0, 0, :8], 7.0)
    np.testing.assert_array_equal(key[1], 7.0)                    # full: nothing written
    np.testing.assert_array_equal(key[2, 0, 2:6], k[2, :, 0])
    np.testing.assert_array_equal(key[2, 0, 6:], 7.0)
    assert np.isfinite(np.asarray(out)).all()
    check_step(out[2:], jax.tree_util.tree_map(lambda x: x[2:], new), q[2:], [2],
               scale=head_size ** -0.5, dtype="float32")
    # The flag is sticky and reset() clears it.
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
    q, k, v = stream.tokens(3)
    step = jax.jit(lambda q, k, v, cache, scale: jax_mea.decode_attention(q, k, v, cache,
                                                                          scale=scale))
    out, after = step(q, k, v, cache, jnp.float32(0.7))
    check_step(out, after, q, np.zeros(2, int), scale=0.7, dtype="float32")

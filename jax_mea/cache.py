"""Functional KV-cache decode: the cache is a pytree that goes into a jitted step
and comes back out; with the cache donated the append happens in place.

Capacity policy: a step that would grow a sequence past ``max_seq_len`` never
writes out of bounds. The tokens that do not fit are dropped (not stored), the
sequence's length saturates at ``max_seq_len``, and ``cache.overflowed[b]``
becomes (and stays) True; their outputs attend over what the cache holds.
Check ``cache.overflowed`` (or ``cache.remaining()``) to detect it: a jitted
step cannot raise on a data-dependent length without a device-to-host sync.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.export
import jax.numpy as jnp

from jax_mea import _checks as C
from jax_mea.primitives import bind_decode_step


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    """A fixed-capacity key/value cache for a batch of sequences.

    Attributes:
      key: [B, Nkv, L, H]; value: [B, Nkv, L, Hv] (BNSH, L = max_seq_len).
      lengths: int32 [B], the number of valid positions of each sequence.
      overflowed: bool [B], set once a step had more tokens than fit.
    """

    key: jax.Array
    value: jax.Array
    lengths: jax.Array
    overflowed: jax.Array

    @classmethod
    def create(cls, batch_size: int, max_seq_len: int, num_kv_heads: int, head_size: int,
               v_head_size: int | None = None, dtype=jnp.bfloat16) -> "KVCache":
        """An empty cache (all lengths 0)."""
        v_head_size = head_size if v_head_size is None else v_head_size
        for name, n in (("batch_size", batch_size), ("max_seq_len", max_seq_len),
                        ("num_kv_heads", num_kv_heads), ("head_size", head_size),
                        ("v_head_size", v_head_size)):
            if int(n) <= 0:
                raise ValueError(f"KVCache.create: {name} must be positive, got {n}")
        dtype = jnp.dtype(dtype)
        if dtype not in C.FLOAT_DTYPES:
            raise TypeError(f"KVCache.create: dtype must be float32, float16 or bfloat16, "
                            f"got {dtype}")
        return cls(
            key=jnp.zeros((batch_size, num_kv_heads, max_seq_len, head_size), dtype),
            value=jnp.zeros((batch_size, num_kv_heads, max_seq_len, v_head_size), dtype),
            lengths=jnp.zeros((batch_size,), jnp.int32),
            overflowed=jnp.zeros((batch_size,), jnp.bool_),
        )

    # Static facts, read off the shapes.
    @property
    def batch_size(self) -> int:
        return self.key.shape[0]

    @property
    def num_kv_heads(self) -> int:
        return self.key.shape[1]

    @property
    def max_seq_len(self) -> int:
        return self.key.shape[2]

    capacity = max_seq_len

    @property
    def head_size(self) -> int:
        return self.key.shape[3]

    @property
    def v_head_size(self) -> int:
        return self.value.shape[3]

    @property
    def dtype(self):
        return self.key.dtype

    def replace(self, **changes) -> "KVCache":
        return dataclasses.replace(self, **changes)

    def remaining(self) -> jax.Array:
        """int32 [B]: positions still free in each sequence."""
        return self.max_seq_len - self.lengths

    def reset(self, which=None) -> "KVCache":
        """Empties all sequences, or those where the bool [B] `which` is True.
        The stored values are left as they are: lengths bound every read."""
        if which is None:
            which = jnp.ones_like(self.overflowed)
        return self.replace(lengths=jnp.where(which, 0, self.lengths),
                            overflowed=jnp.where(which, False, self.overflowed))

    def sequence(self, b: int) -> tuple[jax.Array, jax.Array]:
        """(key, value) of sequence b up to its length: [Nkv, len, H], [Nkv, len, Hv].
        Not jittable (the length is data); for inspection and tests."""
        n = int(self.lengths[b])
        return self.key[b, :, :n], self.value[b, :, :n]


# jax.export serializes the calling convention's pytrees: a KVCache argument or
# result needs a name there. Its node has no auxiliary data (all four fields are
# arrays).
jax.export.register_pytree_node_serialization(
    KVCache, serialized_name="jax_mea.KVCache",
    serialize_auxdata=lambda aux: b"", deserialize_auxdata=lambda data: ())


def decode_attention(query, key, value, cache: KVCache, *, scale=None, softcap=0.0,
                     local_window_size=None):
    """Appends T new tokens to `cache` and attends over each sequence's prefix.

    Args:
      query: [B, T, Nq, H]; key: [B, T, Nkv, H]; value: [B, T, Nkv, Hv], in the
        cache's dtype. T = 1 is a decode step, T > 1 a prefill or a chunk of one.
        Packed: key and value None, query [B, T, Nq + 2 Nkv, H] holding the query
        heads, then the new keys', then the new values' (Hv = H): a model's fused
        QKV projection, rotated in place, as it comes out. The kernel reads the
        three through its strides, so XLA runs no slice copies before the call
        (except with a traced scale, which belongs to the query heads alone).
      cache: the KVCache; the new tokens go at positions cache.lengths[b] + t.
      scale: defaults to 1/sqrt(H); positive, or traced (folded into the query).
        softcap: see onnx_attention.
      local_window_size: int w, or (w, r) with r 0, None or +inf (decode is causal:
        any other r raises): token at position p sees keys p - w .. p only.

    Returns:
      (out [B, T, Nq, Hv], the cache with the tokens stored and lengths + T).
      Token t of sequence b attends causally to positions <= lengths[b] + t.
    """
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a jax_mea.KVCache, got {type(cache).__name__}")
    qkv = query if key is None and value is None else None
    if qkv is not None:  # checked below as the three arrays it holds
        packed_ranges = _packed_head_ranges(qkv, cache)
        B, T, _, H = qkv.shape
        query, key, value = (jax.ShapeDtypeStruct((B, T, hi - lo, H), qkv.dtype)
                             for lo, hi in packed_ranges)
    elif key is None or value is None:
        raise ValueError("decode_attention takes key and value both, or neither (query "
                         "then packs them: [B, T, Nq + 2 Nkv, H])")
    dtype = C.check_float_dtype("query", query)
    C.check_same_dtype((("key", key), ("value", value), ("cache.key", cache.key),
                        ("cache.value", cache.value)), dtype)
    C.check_rank("query", query, 4, "[B, T, Nq, H]")
    C.check_rank("key", key, 4, "[B, T, Nkv, H]")
    C.check_rank("value", value, 4, "[B, T, Nkv, Hv]")
    C.check_scale(scale)
    C.check_softcap(softcap)
    batch, steps, num_heads, head_size = query.shape
    want_k = (cache.batch_size, steps, cache.num_kv_heads, cache.head_size)
    want_v = want_k[:3] + (cache.v_head_size,)
    if query.shape[0] != cache.batch_size or head_size != cache.head_size:
        raise ValueError(f"query must be [B, T, Nq, H] with B = {cache.batch_size} and "
                         f"H = {cache.head_size} (the cache's), got {query.shape}")
    if key.shape != want_k:
        raise ValueError(f"key must be [B, T, Nkv, H] = {list(want_k)} (the cache's B, Nkv, "
                         f"H and the query's T), got {key.shape}")
    if value.shape != want_v:
        raise ValueError(f"value must be [B, T, Nkv, Hv] = {list(want_v)}, got {value.shape}")
    for name, flags in (("cache.lengths", cache.lengths), ("cache.overflowed", cache.overflowed)):
        if tuple(flags.shape) != (cache.batch_size,):
            raise ValueError(f"{name} must be [B] = [{cache.batch_size}] (the cache's batch), "
                             f"got {tuple(flags.shape)}")
    C.check_positive("query", num_heads, "the number of heads")
    C.check_positive("cache.key", cache.num_kv_heads, "the number of key/value heads")
    C.check_positive("cache.key", head_size, "the head size")
    C.check_positive("cache.value", cache.v_head_size, "the head size")
    C.check_gqa(num_heads, cache.num_kv_heads, "the cache's key/value heads")
    if steps > cache.max_seq_len:
        raise ValueError(f"query has T = {steps} tokens, more than the cache holds "
                         f"(max_seq_len = {cache.max_seq_len})")
    left = C.decode_window("local_window_size", local_window_size)

    starts = cache.lengths.astype(jnp.int32)
    # One custom call: append (positions past max_seq_len dropped), then attention over
    # min(starts + T, max_seq_len) keys (the call derives them from the starts).
    scale, q_factor = C.split_scale(scale, head_size)
    if qkv is not None:
        if q_factor is None:  # the call reads the three out of the packed array
            query, key, value = qkv, None, None
        else:  # a factor for the query heads alone: apart (XLA copies the slices)
            query, key, value = (qkv[:, :, lo:hi] for lo, hi in packed_ranges)
    # The call sets the overflow flags in place; the lengths' min stays in XLA (the
    # call's CTAs read the old lengths, so writing them there would need ordering).
    out, new_key, new_value, overflowed = bind_decode_step(
        C.fold_into_query(query, q_factor), key, value, cache.key, cache.value, starts,
        cache.overflowed.astype(jnp.bool_), left_window=left, scale=scale, softcap=softcap)
    new_lengths = jnp.minimum(starts + steps, cache.max_seq_len).astype(jnp.int32)
    new_cache = cache.replace(key=new_key, value=new_value, lengths=new_lengths,
                              overflowed=overflowed)
    return out, new_cache


def _packed_head_ranges(qkv, cache: KVCache):
    """The (first, end) heads of the query, key and value in a packed [B, T, Nq + 2 Nkv,
    H] query, after the checks that the packed shape's own errors name."""
    C.check_rank("query", qkv, 4, "[B, T, Nq + 2 Nkv, H] (packed: key and value None)")
    B, nkv, H = cache.batch_size, cache.num_kv_heads, cache.head_size
    heads = qkv.shape[2]
    nq = heads - 2 * nkv
    if (qkv.shape[0] != B or qkv.shape[3] != H or cache.v_head_size != H or nq <= 0
            or nq % nkv):
        raise ValueError(
            f"a packed query must be [B, T, Nq + 2 Nkv, H] with the cache's B = {B}, "
            f"Nkv = {nkv} and H = Hv = {H}, and Nq a positive multiple of Nkv; got "
            f"{tuple(qkv.shape)} for a cache of head sizes {H} / {cache.v_head_size}")
    return (0, nq), (nq, nq + nkv), (nq + nkv, heads)

"""Pure-JAX reference of jax-mea's public API (tests, debugging).

Same names, signatures and semantics as ``jax_mea.onnx_attention``,
``jax_mea.dot_product_attention`` and ``jax_mea.decode_attention`` (see
DESIGN.md), written with ``jax.numpy`` only: no custom calls, no speed.

Every entry point only prepares its inputs (layouts, the cache write, masks)
and then calls the one core, :func:`attention_core`: 4D BNSH float32 masked
softmax attention with an explicit visibility mask and an additive bias.
Visibility from positions (causal, window, kv lengths) comes from the one
helper :func:`position_mask`, so the three entry points agree on what
"bottom-right causal", "window" and "kv length" mean.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "attention_core",
    "position_mask",
    "onnx_attention",
    "dot_product_attention",
    "decode_attention",
]

_FLOAT_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


# ----------------------------------------------------------------------------
# The core
# ----------------------------------------------------------------------------


def attention_core(q, k, v, *, scale, softcap=0.0, bias=None, allowed=None):
    """Masked softmax attention in float32, BNSH.

    q [B, Nq, Sq, H], k [B, Nkv, T, H], v [B, Nkv, T, Hv] (Nq % Nkv == 0; query
    head h uses kv head h // (Nq // Nkv)). ``bias`` (float) and ``allowed``
    (bool, True = may attend) broadcast to [B, Nq, Sq, T].

    scores = scale * q k^T; softcap > 0: scores = softcap * tanh(scores / softcap);
    then + bias; keys not allowed are dropped. A row with no key left (every key
    disallowed, or every bias -inf) gives exactly 0. Returns [B, Nq, Sq, Hv] float32.
    """
    q, k, v = (jnp.asarray(t, jnp.float32) for t in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k = jnp.repeat(k, group, axis=1)
    v = jnp.repeat(v, group, axis=1)
    hi = jax.lax.Precision.HIGHEST
    s = jnp.einsum("bnqh,bnkh->bnqk", q, k, precision=hi) * jnp.float32(scale)
    if softcap > 0:
        s = jnp.float32(softcap) * jnp.tanh(s / jnp.float32(softcap))
    if bias is not None:
        s = s + jnp.asarray(bias, jnp.float32)
    if allowed is not None:
        s = jnp.where(allowed, s, -jnp.inf)
    m = jnp.max(s, axis=-1, keepdims=True)
    has_key = m > -jnp.inf
    p = jnp.exp(s - jnp.where(has_key, m, 0.0))
    denom = jnp.sum(p, axis=-1, keepdims=True)
    p = p / jnp.where(has_key, denom, 1.0)
    out = jnp.einsum("bnqk,bnkh->bnqh", p, v, precision=hi)
    return jnp.where(has_key, out, 0.0)


def position_mask(q_len, kv_len, *, offsets=0, is_causal=False, left_window=None,
                  right_window=None, kv_lengths=None):
    """Visibility from positions, bool [B|1, 1, q_len, kv_len].

    Query row i sits at absolute position p = i + offsets[b] (offsets: scalar or
    int [B]). Key j is visible iff j < kv_lengths[b] (when given), j <= p when
    causal, p - left_window <= j and j <= p + right_window, window sizes read
    literally (right_window = -1 excludes the diagonal, as in jax.nn); None:
    unbounded on that side.
    """
    offsets = jnp.asarray(offsets, jnp.int32).reshape(-1, 1, 1, 1)
    pos = jnp.arange(q_len, dtype=jnp.int32).reshape(1, 1, q_len, 1) + offsets
    j = jnp.arange(kv_len, dtype=jnp.int32).reshape(1, 1, 1, kv_len)
    ok = jnp.ones((1, 1, q_len, kv_len), bool)
    if is_causal:
        ok = ok & (j <= pos)
    if left_window is not None:
        ok = ok & (j >= pos - left_window)
    if right_window is not None:
        ok = ok & (j <= pos + right_window)
    if kv_lengths is not None:
        ok = ok & (j < jnp.asarray(kv_lengths, jnp.int32).reshape(-1, 1, 1, 1))
    return ok


# ----------------------------------------------------------------------------
# Argument checks (shared by the entry points)
# ----------------------------------------------------------------------------


def _float_dtype(x, name):
    dt = jnp.result_type(x)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {dt}")
    return dt


def _same_dtype(x, dtype, name, ref_name):
    dt = jnp.result_type(x)
    if dt != dtype:
        raise TypeError(f"{name} dtype {dt} differs from {ref_name} dtype {dtype}")


def _int_lengths(x, batch, name):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{name} must be int32, got {x.dtype}")
    if x.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), got {x.shape}")
    return x.astype(jnp.int32)


def _check_scale(scale, head_size):
    if scale is None:
        return 1.0 / math.sqrt(head_size)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return float(scale)


def _check_softcap(softcap):
    # 0 (or None) means no softcap; a negative one is an error, as in jax_mea.
    if softcap is not None and not softcap >= 0:
        raise ValueError(f"softcap must be >= 0 (0 disables it), got {softcap}")
    return 0.0 if softcap is None else float(softcap)


def _broadcast_4d(x, name, target, what):
    """Left-pad x to rank 4 and check it broadcasts to `target` (B, N, Sq, T)."""
    shape = (1,) * (4 - x.ndim) + tuple(x.shape)
    for size, want, axis in zip(shape, target, ("batch", "heads", "query", "key")):
        if size not in (1, want):
            raise ValueError(
                f"{name} of shape {tuple(x.shape)} does not broadcast to {what} "
                f"{tuple(target)} (axis {axis}: {size} vs {want})")
    return x.reshape(shape)


# ----------------------------------------------------------------------------
# 1. ONNX Attention (opset 24)
# ----------------------------------------------------------------------------


def _to_bnsh(x, name, rank, num_heads, heads_name):
    """3D [B, S, N*H] -> [B, N, S, H]; 4D passes through."""
    if rank == 4:
        return x
    hidden = x.shape[2]
    if hidden % num_heads:
        raise ValueError(f"{name} hidden size {hidden} is not divisible by "
                         f"{heads_name}={num_heads}")
    b, s = x.shape[:2]
    return x.reshape(b, s, num_heads, hidden // num_heads).transpose(0, 2, 1, 3)


def onnx_attention(Q, K, V, attn_mask=None, past_key=None, past_value=None,
                   nonpad_kv_seqlen=None, *, scale=None, is_causal=False,
                   q_num_heads=None, kv_num_heads=None, softcap=0.0,
                   softmax_precision=None, left_window_size=-1, right_window_size=-1):
    """ONNX Attention (opset 24, plus the opset-25 window) -> (Y, present_key, present_value).

    Computed in float32 whatever ``softmax_precision`` says; returned in Q's dtype.
    A negative left/right_window_size leaves that side unbounded.
    """
    del softmax_precision  # always float32 here
    Q, K, V = jnp.asarray(Q), jnp.asarray(K), jnp.asarray(V)
    dtype = _float_dtype(Q, "Q")
    _same_dtype(K, dtype, "K", "Q")
    _same_dtype(V, dtype, "V", "Q")
    rank = Q.ndim
    if rank not in (3, 4):
        raise ValueError(f"Q must be 3D [B, S, N*H] or 4D [B, N, S, H], got rank {rank}")
    for x, name in ((K, "K"), (V, "V")):
        if x.ndim != rank:
            raise ValueError(f"{name} has rank {x.ndim} but Q has rank {rank}")
    if rank == 3:
        if q_num_heads is None:
            raise ValueError("3D inputs need q_num_heads")
        if kv_num_heads is None:
            raise ValueError("3D inputs need kv_num_heads")
        if q_num_heads <= 0:
            raise ValueError(f"q_num_heads must be positive, got {q_num_heads}")
        if kv_num_heads <= 0:
            raise ValueError(f"kv_num_heads must be positive, got {kv_num_heads}")
    q = _to_bnsh(Q, "Q", rank, q_num_heads, "q_num_heads")
    k = _to_bnsh(K, "K", rank, kv_num_heads, "kv_num_heads")
    v = _to_bnsh(V, "V", rank, kv_num_heads, "kv_num_heads")
    batch, nq, sq, head_size = q.shape
    if k.shape[0] != batch:
        raise ValueError(f"K batch {k.shape[0]} differs from Q batch {batch}")
    if v.shape[0] != batch:
        raise ValueError(f"V batch {v.shape[0]} differs from Q batch {batch}")
    nkv = k.shape[1]
    if v.shape[1] != nkv:
        raise ValueError(f"V has {v.shape[1]} heads but K has {nkv}")
    if nq % nkv:
        raise ValueError(f"query heads ({nq}) must be a multiple of kv heads ({nkv}) "
                         f"(q_num_heads % kv_num_heads != 0)")
    if k.shape[3] != head_size:
        raise ValueError(f"K head size {k.shape[3]} differs from Q head size {head_size}")
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"V sequence length {v.shape[2]} differs from K's {k.shape[2]}")
    v_head_size = v.shape[3]

    if (past_key is None) != (past_value is None):
        missing = "past_value" if past_value is None else "past_key"
        raise ValueError(f"past_key and past_value must be given together ({missing} missing)")
    if past_key is not None:
        if nonpad_kv_seqlen is not None:
            raise ValueError("nonpad_kv_seqlen cannot be combined with past_key/past_value")
        past_key, past_value = jnp.asarray(past_key), jnp.asarray(past_value)
        _same_dtype(past_key, dtype, "past_key", "Q")
        _same_dtype(past_value, dtype, "past_value", "Q")
        for x, name, hs in ((past_key, "past_key", head_size),
                            (past_value, "past_value", v_head_size)):
            want = (batch, nkv, None, hs)
            if x.ndim != 4 or any(w is not None and w != s for w, s in zip(want, x.shape)):
                raise ValueError(f"{name} must be [B={batch}, Nkv={nkv}, P, {hs}], "
                                 f"got {tuple(x.shape)}")
        if past_key.shape[2] != past_value.shape[2]:
            raise ValueError(f"past_value length {past_value.shape[2]} differs from "
                             f"past_key length {past_key.shape[2]}")
        present_key = jnp.concatenate([past_key, k], axis=2)
        present_value = jnp.concatenate([past_value, v], axis=2)
        offsets = past_key.shape[2]
    else:
        present_key, present_value = k, v
        offsets = 0
    total = present_key.shape[2]

    kv_lengths = None
    if nonpad_kv_seqlen is not None:
        kv_lengths = _int_lengths(nonpad_kv_seqlen, batch, "nonpad_kv_seqlen")
        offsets = kv_lengths - sq

    scale = _check_scale(scale, head_size)
    softcap = _check_softcap(softcap)
    # ONNX: a negative window size (-1) is unbounded.
    left, right = (None if w is None or w < 0 else w
                   for w in (left_window_size, right_window_size))
    allowed = position_mask(sq, total, offsets=offsets, is_causal=bool(is_causal),
                            left_window=left, right_window=right, kv_lengths=kv_lengths)
    bias = None
    if attn_mask is not None:
        attn_mask = jnp.asarray(attn_mask)
        if attn_mask.dtype != jnp.bool_:
            _same_dtype(attn_mask, dtype, "attn_mask", "Q (or bool)")
        if attn_mask.ndim not in (2, 3, 4):
            raise ValueError(f"attn_mask must have rank 2, 3 or 4, got {attn_mask.ndim}")
        mask_len = attn_mask.shape[-1]
        if mask_len > total:
            raise ValueError(f"attn_mask last dim {mask_len} exceeds the total kv "
                             f"length {total}")
        m = _broadcast_4d(attn_mask, "attn_mask", (batch, nq, sq, mask_len),
                          "[B, Nq, Sq, T]")
        pad = [(0, 0)] * 3 + [(0, total - mask_len)]
        if m.dtype == jnp.bool_:
            allowed = allowed & jnp.pad(m, pad, constant_values=False)
        else:
            bias = jnp.pad(m.astype(jnp.float32), pad, constant_values=-jnp.inf)

    y = attention_core(q, present_key, present_value, scale=scale, softcap=softcap,
                       bias=bias, allowed=allowed).astype(dtype)
    if rank == 3:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, nq * v_head_size)
    return y, present_key, present_value


# ----------------------------------------------------------------------------
# 2. jax.nn.dot_product_attention drop-in (BTNH)
# ----------------------------------------------------------------------------


def _window_pair(window):
    """(left, right) from None (unbounded: None, None), an int w (= (w, w)) or a pair,
    read literally as jax.nn reads local_window_size."""
    if window is None:
        return None, None
    if isinstance(window, (int, np.integer)):
        return int(window), int(window)
    left, right = (int(w) for w in window)
    return left, right


def dot_product_attention(query, key, value, bias=None, mask=None, *, scale=None,
                          is_causal=False, query_seq_lengths=None,
                          key_value_seq_lengths=None, local_window_size=None,
                          softcap=0.0):
    """jax.nn.dot_product_attention semantics (BTNH, or TNH unbatched), plus
    value head size != key head size and softcap. Rows with no visible key
    (including padded query rows i >= query_seq_lengths[b]) give 0."""
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    dtype = _float_dtype(query, "query")
    _same_dtype(key, dtype, "key", "query")
    _same_dtype(value, dtype, "value", "query")
    unbatched = query.ndim == 3
    for x, name in ((query, "query"), (key, "key"), (value, "value")):
        if x.ndim != (3 if unbatched else 4):
            raise ValueError(f"{name} must be [B, T, N, H] (or [T, N, H] for all three), "
                             f"got shape {tuple(x.shape)}")
    if unbatched:
        query, key, value = query[None], key[None], value[None]
    batch, q_len, nq, head_size = query.shape
    _, kv_len, nkv, _ = key.shape
    if key.shape[0] != batch:
        raise ValueError(f"key batch {key.shape[0]} differs from query batch {batch}")
    if key.shape[3] != head_size:
        raise ValueError(f"key head size {key.shape[3]} differs from query's {head_size}")
    if value.shape[:3] != key.shape[:3]:
        raise ValueError(f"value shape {tuple(value.shape)} must match key's "
                         f"[B, S, K] = {tuple(key.shape[:3])}")
    if nq % nkv:
        raise ValueError(f"query heads ({nq}) must be a multiple of key/value heads ({nkv})")
    scale = _check_scale(scale, head_size)
    softcap = _check_softcap(softcap)
    target = (batch, nq, q_len, kv_len)

    kv_lengths = None
    if key_value_seq_lengths is not None:
        kv_lengths = _int_lengths(key_value_seq_lengths, batch, "key_value_seq_lengths")
    left, right = _window_pair(local_window_size)
    allowed = position_mask(q_len, kv_len, is_causal=bool(is_causal), left_window=left,
                            right_window=right, kv_lengths=kv_lengths)
    if query_seq_lengths is not None:
        q_lengths = _int_lengths(query_seq_lengths, batch, "query_seq_lengths")
        rows = jnp.arange(q_len, dtype=jnp.int32).reshape(1, 1, q_len, 1)
        allowed = allowed & (rows < q_lengths.reshape(-1, 1, 1, 1))
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"mask must be bool, got {mask.dtype} (pass additive masks as bias)")
        if mask.ndim > 4:
            raise ValueError(f"mask must have rank <= 4, got {mask.ndim}")
        allowed = allowed & _broadcast_4d(mask, "mask", target, "[B, N, T, S]")
    if bias is not None:
        bias = jnp.asarray(bias)
        if not jnp.issubdtype(bias.dtype, jnp.floating):
            raise TypeError(f"bias must be a float array, got {bias.dtype}")
        if bias.ndim > 4:
            raise ValueError(f"bias must have rank <= 4, got {bias.ndim}")
        bias = _broadcast_4d(bias, "bias", target, "[B, N, T, S]")

    out = attention_core(query.transpose(0, 2, 1, 3), key.transpose(0, 2, 1, 3),
                         value.transpose(0, 2, 1, 3), scale=scale, softcap=softcap,
                         bias=bias, allowed=allowed)
    out = out.transpose(0, 2, 1, 3).astype(dtype)
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------
# 3. Functional KV-cache decode
# ----------------------------------------------------------------------------


def _append(cache_x, new_x, starts):
    """Writes new_x [B, T, N, D] into cache_x [B, N, L, D] at starts[b] + t;
    positions >= L are dropped."""
    t = new_x.shape[1]

    def one(c, x, start):
        pos = start + jnp.arange(t, dtype=jnp.int32)
        return c.at[:, pos, :].set(x.transpose(1, 0, 2).astype(c.dtype), mode="drop")

    return jax.vmap(one)(cache_x, new_x, starts)


def decode_attention(query, key, value, cache: Any, *, scale=None, softcap=0.0,
                     local_window_size=None):
    """Appends T tokens to the cache and attends (bottom-right causal) over it.

    query [B, T, Nq, H], key [B, T, Nkv, H], value [B, T, Nkv, Hv]; cache has
    .key [B, Nkv, L, H], .value [B, Nkv, L, Hv], .lengths int32 [B] (and
    optionally .overflowed bool [B]). Token t of batch b sits at position
    p = lengths[b] + t, is written there when p < L, and sees keys j <= p with
    j < min(lengths[b] + T, L) (and j >= p - w for local_window_size w).
    Returns (out [B, T, Nq, Hv] in query's dtype, new cache).
    """
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    dtype = _float_dtype(query, "query")
    for x, name in ((query, "query"), (key, "key"), (value, "value")):
        if x.ndim != 4:
            raise ValueError(f"{name} must be 4D [B, T, N, H], got shape {tuple(x.shape)}")
    batch, t, nq, head_size = query.shape
    cache_len = cache.key.shape[2]
    nkv = cache.key.shape[1]
    if key.shape != (batch, t, nkv, head_size) or cache.key.shape[3] != head_size:
        raise ValueError(f"key must be [B, T, Nkv, H] = {(batch, t, nkv, head_size)} "
                         f"matching cache.key {tuple(cache.key.shape)}, got {tuple(key.shape)}")
    if value.shape != (batch, t, nkv, cache.value.shape[3]):
        raise ValueError(f"value must be [B, T, Nkv, Hv] matching cache.value "
                         f"{tuple(cache.value.shape)}, got {tuple(value.shape)}")
    if nq % nkv:
        raise ValueError(f"query heads ({nq}) must be a multiple of kv heads ({nkv})")
    scale = _check_scale(scale, head_size)
    softcap = _check_softcap(softcap)
    if local_window_size is not None and not isinstance(local_window_size, (int, np.integer)):
        raise TypeError("decode_attention's local_window_size is an int (left window)")
    left, _ = _window_pair(local_window_size)

    lengths = jnp.asarray(cache.lengths, jnp.int32)
    new_key = _append(cache.key, key, lengths)
    new_value = _append(cache.value, value, lengths)
    new_lengths = jnp.minimum(lengths + t, cache_len)
    updates = dict(key=new_key, value=new_value, lengths=new_lengths)
    if hasattr(cache, "overflowed"):
        updates["overflowed"] = jnp.asarray(cache.overflowed) | (lengths + t > cache_len)
    new_cache = cache.replace(**updates)

    allowed = position_mask(t, cache_len, offsets=lengths, is_causal=True, left_window=left,
                            kv_lengths=new_lengths)
    out = attention_core(query.transpose(0, 2, 1, 3), new_key, new_value, scale=scale,
                         softcap=softcap, allowed=allowed)
    return out.transpose(0, 2, 1, 3).astype(dtype), new_cache

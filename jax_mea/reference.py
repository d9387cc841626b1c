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
    "score_stages",
    "position_mask",
    "onnx_mask",
    "qk_matmul_output",
    "check_qk_matmul_output_mode",
    "onnx_attention",
    "dot_product_attention",
    "decode_attention",
]

_FLOAT_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


# ----------------------------------------------------------------------------
# The core
# ----------------------------------------------------------------------------


def score_stages(q, k, *, scale, softcap=0.0, bias=None, allowed=None):
    """The scores of one attention call, stage by stage, float32 [B, Nq, Sq, T] each.

    q [B, Nq, Sq, H], k [B, Nkv, T, H] (Nq % Nkv == 0; query head h uses kv head
    h // (Nq // Nkv)); ``bias`` (float) and ``allowed`` (bool, True = may attend)
    broadcast to [B, Nq, Sq, T]. Returns (raw, capped, masked, probs), ONNX
    Attention's qk_matmul_output modes 0-3:

    - raw = scale * q k^T;
    - capped = softcap * tanh(raw / softcap) when softcap > 0, else raw;
    - masked = capped + bias, -inf where not allowed;
    - probs = softmax(masked); a row with no visible key (every key disallowed or
      biased -inf) is 0. Visibility is decided on the mask alone, never on the
      scores, so a NaN at a visible position propagates (as in jax.nn and ONNX).
    """
    q, k = jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32)
    k = jnp.repeat(k, q.shape[1] // k.shape[1], axis=1)
    raw = jnp.einsum("bnqh,bnkh->bnqk", q, k,
                     precision=jax.lax.Precision.HIGHEST) * jnp.float32(scale)
    capped = raw
    if softcap > 0:
        capped = jnp.float32(softcap) * jnp.tanh(raw / jnp.float32(softcap))
    masked = capped
    visible = jnp.ones(raw.shape, bool)
    if bias is not None:
        bias = jnp.asarray(bias, jnp.float32)
        masked = masked + bias
        visible = visible & (bias > -jnp.inf)
    if allowed is not None:
        masked = jnp.where(allowed, masked, -jnp.inf)
        visible = visible & allowed
    has_key = jnp.any(visible, axis=-1, keepdims=True)
    m = jnp.max(masked, axis=-1, keepdims=True)
    p = jnp.exp(masked - jnp.where(has_key, m, 0.0))
    denom = jnp.where(has_key, jnp.sum(p, axis=-1, keepdims=True), 1.0)  # no 0/0 (grads)
    probs = jnp.where(has_key, p / denom, 0.0)
    return raw, capped, masked, probs


def attention_core(q, k, v, *, scale, softcap=0.0, bias=None, allowed=None):
    """Masked softmax attention in float32, BNSH: softmax(scores) v with the scores
    of :func:`score_stages` (same arguments), v [B, Nkv, T, Hv]. A row with no
    visible key gives exactly 0. Returns [B, Nq, Sq, Hv] float32.

    Unlike the kernels, this reads the values of masked keys too (with weight 0),
    so a NaN or inf there propagates; keep reference inputs finite."""
    *_, probs = score_stages(q, k, scale=scale, softcap=softcap, bias=bias, allowed=allowed)
    v = jnp.repeat(jnp.asarray(v, jnp.float32), q.shape[1] // v.shape[1], axis=1)
    out = jnp.einsum("bnqk,bnkh->bnqh", probs, v, precision=jax.lax.Precision.HIGHEST)
    return jnp.where(jnp.any(probs != 0, axis=-1, keepdims=True), out, 0.0)  # no key: 0


def position_mask(q_len, kv_len, *, offsets=0, is_causal=False, left_window=None,
                  right_window=None, kv_lengths=None):
    """Visibility from positions, bool [B|1, 1, q_len, kv_len].

    Query row i sits at absolute position p = i + offsets[b] (offsets: scalar or
    int [B]). Key j is visible iff j < kv_lengths[b] (when given), j <= p when
    causal, p - left_window <= j and j <= p + right_window, window sizes read
    literally (right_window = -1 excludes the diagonal, as in jax.nn); None:
    unbounded on that side.
    """
    # Positions and windows are int32: a window side past 2^30 keys is as good as
    # unbounded, and clipping it keeps pos +- window from overflowing.
    left_window, right_window = (None if w is None else int(np.clip(w, -(1 << 30), 1 << 30))
                                 for w in (left_window, right_window))
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


def _check_scale(scale, head_size, positive=True):
    if scale is None:
        return 1.0 / math.sqrt(head_size)
    if isinstance(scale, jax.core.Tracer):
        return scale
    if positive and not scale > 0:
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
                   softmax_precision=None, left_window_size=-1, right_window_size=-1,
                   qk_matmul_output_mode=None):
    """ONNX Attention (opset 24, plus opset 25's window and rank-1 masks) ->
    (Y, present_key, present_value), and qk_matmul_output (see
    :func:`qk_matmul_output`) when qk_matmul_output_mode is 0-3.

    Computed in float32 whatever ``softmax_precision`` says; returned in Q's dtype.
    A negative left/right_window_size leaves that side unbounded.
    """
    del softmax_precision  # always float32 here
    check_qk_matmul_output_mode(qk_matmul_output_mode)
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
    bias, allowed = onnx_mask(attn_mask, dtype=dtype, batch=batch, num_heads=nq, q_len=sq,
                              total_len=total, offsets=offsets, is_causal=bool(is_causal),
                              left_window=left_window_size, right_window=right_window_size,
                              kv_lengths=kv_lengths)
    stages = score_stages(q, present_key, scale=scale, softcap=softcap, bias=bias,
                          allowed=allowed)
    y = attention_core(q, present_key, present_value, scale=scale, softcap=softcap,
                       bias=bias, allowed=allowed).astype(dtype)
    if rank == 3:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, nq * v_head_size)
    if qk_matmul_output_mode is None:
        return y, present_key, present_value
    return y, present_key, present_value, qk_matmul_output(stages, qk_matmul_output_mode, dtype)


QK_MATMUL_OUTPUT_MODES = (0, 1, 2, 3)


def check_qk_matmul_output_mode(mode) -> None:
    if mode is not None and mode not in QK_MATMUL_OUTPUT_MODES:
        raise ValueError(f"qk_matmul_output_mode must be None or one of "
                         f"{QK_MATMUL_OUTPUT_MODES}, got {mode!r}")


def qk_matmul_output(stages, mode, dtype):
    """ONNX Attention's 4th output [B, Nq, Sq, T] in `dtype`, from score_stages:
    mode 0 the raw scaled QK, 1 after softcap, 2 after softcap + mask/bias, 3 the
    softmax probabilities (0 on rows with no visible key)."""
    check_qk_matmul_output_mode(mode)
    return stages[int(mode)].astype(dtype)


def onnx_mask(attn_mask, *, dtype, batch, num_heads, q_len, total_len, offsets=0,
              is_causal=False, left_window=-1, right_window=-1, kv_lengths=None):
    """ONNX Attention's visibility: (bias float32 [B|1, Nq|1, Sq|1, T] or None,
    allowed bool [B|1, Nq|1, Sq, T]).

    attn_mask is bool (True = attend) or additive float in `dtype`, rank 1 [T']
    (opset 25), 2 [Sq, T'], 3 [Nq|1, Sq, T'] or 4 [B|1, Nq|1, Sq, T'], T' <= T
    padded with False / -inf. Positions (causal, window, kv lengths) as in
    :func:`position_mask`, except that a negative window side is unbounded (ONNX).
    """
    left_window, right_window = (None if w is None or w < 0 else w
                                 for w in (left_window, right_window))
    allowed = position_mask(q_len, total_len, offsets=offsets, is_causal=is_causal,
                            left_window=left_window, right_window=right_window,
                            kv_lengths=kv_lengths)
    if attn_mask is None:
        return None, allowed
    attn_mask = jnp.asarray(attn_mask)
    if attn_mask.dtype != jnp.bool_:
        _same_dtype(attn_mask, dtype, "attn_mask", "Q (or bool)")
    if attn_mask.ndim not in (1, 2, 3, 4):
        raise ValueError(f"attn_mask must have rank 1, 2, 3 or 4, got {attn_mask.ndim}")
    mask_len = attn_mask.shape[-1]
    if mask_len > total_len:
        raise ValueError(f"attn_mask last dim {mask_len} exceeds the total kv "
                         f"length {total_len}")
    m = _broadcast_4d(attn_mask, "attn_mask", (batch, num_heads, q_len, mask_len),
                      "[B, Nq, Sq, T]")
    pad = [(0, 0)] * 3 + [(0, total_len - mask_len)]
    if m.dtype == jnp.bool_:
        return None, allowed & jnp.pad(m, pad, constant_values=False)
    return jnp.pad(m.astype(jnp.float32), pad, constant_values=-jnp.inf), allowed


# ----------------------------------------------------------------------------
# 2. jax.nn.dot_product_attention drop-in (BTNH)
# ----------------------------------------------------------------------------


def _window_side(w):
    """One window side as jax.nn reads it (key j kept iff j >= i - w): an int literally
    (negative too), a float as floor(w); None and +inf are unbounded (None)."""
    if w is None or w == math.inf:
        return None
    return int(math.floor(w))


def _window_pair(window):
    """(left, right) from None (unbounded: None, None), a size w (= (w, w)) or a pair,
    read literally as jax.nn reads local_window_size."""
    if window is None:
        return None, None
    if np.ndim(window) == 0:
        return _window_side(window), _window_side(window)
    left, right = window
    return _window_side(left), _window_side(right)
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
    scale = _check_scale(scale, head_size, positive=False)  # any sign, as jax.nn
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
    j < min(lengths[b] + T, L) (and j >= p - w for local_window_size w, or (w, r)
    with r 0, None or +inf; another r raises ValueError).
    Returns (out [B, T, Nq, Hv] in query's dtype, new cache). key and value None:
    query is packed, [B, T, Nq + 2 Nkv, H], the query heads then the keys' then the
    values'.
    """
    if (key is None) != (value is None):
        raise ValueError("decode_attention takes key and value both, or neither (query "
                         "then packs them: [B, T, Nq + 2 Nkv, H])")
    if key is None:
        query = jnp.asarray(query)
        nkv, h, hv = cache.key.shape[1], cache.key.shape[3], cache.value.shape[3]
        if query.ndim != 4 or query.shape[2] <= 2 * nkv or h != hv:
            raise ValueError(f"a packed query must be [B, T, Nq + 2 Nkv, H] with Nkv = {nkv} "
                             f"and H = Hv (the cache's: {h} / {hv}), got shape "
                             f"{tuple(query.shape)}")
        nq = query.shape[2] - 2 * nkv
        query, key, value = query[:, :, :nq], query[:, :, nq:nq + nkv], query[:, :, nq + nkv:]
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
    window = local_window_size
    if window is not None and np.ndim(window) != 0:
        # Causal: a right side other than 0 / -1 / None would contradict it.
        if len(window) != 2 or window[1] not in (0, None, math.inf):
            raise ValueError(f"local_window_size of decode_attention is an int w or "
                             f"(w, 0), got {window!r}")
        window = window[0]
    left, _ = _window_pair(window)
    if left is not None and left < 0:
        raise ValueError(f"local_window_size of decode_attention must be >= 0 (None: "
                         f"unbounded), got {local_window_size!r}")

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

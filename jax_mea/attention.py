"""Public attention functions: the ONNX Attention operator and a drop-in for
jax.nn.dot_product_attention. Both validate their inputs at trace time, then
bind the primitives of primitives.py; no transpose or mask materialisation is
added on the way (3D inputs are reshaped, which is free)."""

from __future__ import annotations

import jax.numpy as jnp

from jax_mea import _checks as C
from jax_mea import reference
from jax_mea.primitives import (UNBOUNDED_WINDOW, Layout, MaskKind, bind_attention,
                                bind_kv_concat)


def _mask_operand(name: str, mask, dtype, **rank4_args):
    """(rank-4 mask, kind) from a bool or float mask (floats cast to `dtype`)."""
    if mask is None:
        return None, MaskKind.NONE
    mask = jnp.asarray(mask)
    if mask.dtype == jnp.bool_:
        kind = MaskKind.BOOL
    elif jnp.issubdtype(mask.dtype, jnp.floating):
        kind = MaskKind.ADDITIVE
        mask = mask.astype(dtype)
    else:
        raise TypeError(f"{name} must be bool (True = attend) or a float additive mask, "
                        f"got {mask.dtype}")
    return C.mask_to_rank4(name, mask, **rank4_args), kind


def _onnx_window(size) -> int:
    """ONNX's window size as the kernels take it: -1 is unbounded."""
    return UNBOUNDED_WINDOW if int(size) < 0 else int(size)


def onnx_attention(Q, K, V, attn_mask=None, past_key=None, past_value=None,
                   nonpad_kv_seqlen=None, *, scale=None, is_causal=False, q_num_heads=None,
                   kv_num_heads=None, softcap=0.0, softmax_precision=None, left_window_size=-1,
                   right_window_size=-1, qk_matmul_output_mode=None):
    """The ONNX ``Attention`` operator (opset 24, with opset 25's window and rank-1
    masks) as one jittable call.

    Args:
      Q: [B, Sq, Nq*H] (3D, needs ``q_num_heads``) or [B, Nq, Sq, H] (4D).
      K: [B, Skv, Nkv*H] or [B, Nkv, Skv, H].
      V: [B, Skv, Nkv*Hv] or [B, Nkv, Skv, Hv]; Hv may differ from H.
      attn_mask: bool (True = attend) or additive float, rank 1 [T], 2 [Sq, T],
        3 [Nq|1, Sq, T] or 4 [B|1, Nq|1, Sq, T], T = past + Skv; a shorter last
        axis is padded with False / -inf.
      past_key, past_value: [B, Nkv, P, H] / [B, Nkv, P, Hv] (BNSH), or None.
      nonpad_kv_seqlen: int [B]; keys at positions >= it are masked (an
        external cache). Not combined with past.
      scale: defaults to 1/sqrt(H); may be traced (it is then folded into Q).
        softcap > 0: scores = softcap * tanh(scores / softcap), before the
        mask. is_causal: bottom-right.
      softmax_precision: accepted for ONNX compatibility; the softmax is always
        computed in float32.
      left_window_size, right_window_size: integers; keys further than this
        before / after the query's position are masked (-1: unbounded).
      qk_matmul_output_mode: None, or 0-3 to also return ONNX's
        qk_matmul_output [B, Nq, Sq, T]: 0 the scaled QK, 1 after softcap, 2
        after softcap and mask/bias (-inf where masked), 3 the softmax (0 on
        rows with no visible key). It is the whole score matrix, so it is
        computed unfused, apart from the kernel (jax_mea.reference.score_stages).

    Returns:
      (Y, present_key, present_value), and qk_matmul_output when
      qk_matmul_output_mode is not None: Y is [B, Sq, Nq*Hv] for 3D inputs and
      [B, Nq, Sq, Hv] for 4D; present = concat(past, K/V) in BNSH.
    """
    del softmax_precision  # float32 softmax always
    reference.check_qk_matmul_output_mode(qk_matmul_output_mode)
    left_window = C.onnx_window_size("left_window_size", left_window_size)
    right_window = C.onnx_window_size("right_window_size", right_window_size)
    dtype = C.check_float_dtype("Q", Q)
    C.check_same_dtype((("K", K), ("V", V), ("past_key", past_key),
                        ("past_value", past_value)), dtype)
    C.check_rank("Q", Q, (3, 4), "([B, S, N*H] or [B, N, S, H])")
    rank = Q.ndim
    C.check_rank("K", K, rank, "(the rank of Q)")
    C.check_rank("V", V, rank, "(the rank of Q)")
    C.check_scale(scale)
    C.check_softcap(softcap)
    batch = Q.shape[0]

    if rank == 3:
        if q_num_heads is None or kv_num_heads is None:
            raise ValueError("3D inputs need q_num_heads and kv_num_heads, got "
                             f"q_num_heads={q_num_heads}, kv_num_heads={kv_num_heads}")
        C.check_positive("q_num_heads", q_num_heads, "the number of query heads")
        C.check_positive("kv_num_heads", kv_num_heads, "the number of key/value heads")
        for name, x, heads in (("Q", Q, q_num_heads), ("K", K, kv_num_heads),
                               ("V", V, kv_num_heads)):
            if x.shape[2] % heads:
                raise ValueError(f"{name} hidden size {x.shape[2]} (shape {x.shape}) is not "
                                 f"divisible by its head count {heads}")
        layout = Layout.BSNH
        q4 = Q.reshape(Q.shape[:2] + (q_num_heads, Q.shape[2] // q_num_heads))
        k4 = K.reshape(K.shape[:2] + (kv_num_heads, K.shape[2] // kv_num_heads))
        v4 = V.reshape(V.shape[:2] + (kv_num_heads, V.shape[2] // kv_num_heads))
    else:
        layout = Layout.BNSH
        q4, k4, v4 = Q, K, V
        for name, x, heads in (("Q", Q, q_num_heads), ("K", K, kv_num_heads)):
            if heads is not None and x.shape[1] != heads:
                raise ValueError(f"{name} of shape {x.shape} has {x.shape[1]} heads, but the "
                                 f"head count given is {heads}")

    num_heads, q_len = (q4.shape[2], q4.shape[1]) if layout == Layout.BSNH else q4.shape[1:3]
    num_kv_heads, kv_len = (k4.shape[2], k4.shape[1]) if layout == Layout.BSNH else k4.shape[1:3]
    v_heads, v_len = (v4.shape[2], v4.shape[1]) if layout == Layout.BSNH else v4.shape[1:3]
    head_size, v_head_size = q4.shape[3], v4.shape[3]
    C.check_equal("K", k4.shape[0], batch, "batch size")
    C.check_equal("V", v4.shape[0], batch, "batch size")
    C.check_equal("K", k4.shape[3], head_size, "head size (must equal Q's)")
    C.check_equal("V", v_heads, num_kv_heads, "number of heads (must equal K's)")
    C.check_equal("V", v_len, kv_len, "sequence length (must equal K's)")
    C.check_positive("Q", num_heads, "the number of heads")
    C.check_positive("K", num_kv_heads, "the number of heads (kv_num_heads)")
    C.check_positive("Q", head_size, "the head size")
    C.check_positive("V", v_head_size, "the head size")
    C.check_gqa(num_heads, num_kv_heads)

    past_len = 0
    if (past_key is None) != (past_value is None):
        raise ValueError("past_key and past_value must be given together")
    if past_key is not None:
        if nonpad_kv_seqlen is not None:
            raise ValueError("nonpad_kv_seqlen cannot be combined with past_key/past_value")
        want_k = (batch, num_kv_heads, past_key.shape[2] if past_key.ndim == 4 else -1, head_size)
        if past_key.ndim != 4 or past_key.shape != want_k:
            raise ValueError(f"past_key must be [B, Nkv, P, H] = [{batch}, {num_kv_heads}, P, "
                             f"{head_size}], got {past_key.shape}")
        past_len = past_key.shape[2]
        want_v = (batch, num_kv_heads, past_len, v_head_size)
        if past_value.shape != want_v:
            raise ValueError(f"past_value must be [B, Nkv, P, Hv] = {list(want_v)}, "
                             f"got {past_value.shape}")

    total_len = past_len + kv_len
    mask, mask_kind = _mask_operand("attn_mask", attn_mask, dtype, batch=batch,
                                    num_heads=num_heads, q_len=q_len, kv_len=total_len,
                                    allow_short=True)
    scale, q_factor = C.split_scale(scale, head_size)
    q4 = C.fold_into_query(q4, q_factor)

    # present = concat(past, new) in BNSH: the attention reads it when there is a
    # past; without one, present is K/V itself (4D) or its BNSH copy (3D).
    if past_key is not None:
        present_key, present_value = bind_kv_concat(past_key, past_value, k4, v4,
                                                    new_layout=layout)
        k_att, v_att, kv_layout = present_key, present_value, Layout.BNSH
    else:
        k_att, v_att, kv_layout = k4, v4, layout
        if layout == Layout.BNSH:
            present_key, present_value = K, V
        else:
            empty_k = jnp.zeros((batch, num_kv_heads, 0, head_size), dtype)
            empty_v = jnp.zeros((batch, num_kv_heads, 0, v_head_size), dtype)
            present_key, present_value = bind_kv_concat(empty_k, empty_v, k4, v4,
                                                        new_layout=layout)

    kv_lengths = causal_offsets = None
    causal_offset = past_len
    if nonpad_kv_seqlen is not None:
        C.check_int_vector("nonpad_kv_seqlen", nonpad_kv_seqlen, batch)
        kv_lengths = jnp.asarray(nonpad_kv_seqlen, jnp.int32)
        causal_offsets = kv_lengths - q_len

    y = bind_attention(q4, k_att, v_att, q_layout=layout, kv_layout=kv_layout, out_layout=layout,
                       mask=mask, mask_kind=mask_kind, kv_lengths=kv_lengths,
                       causal_offsets=causal_offsets, causal_offset=causal_offset,
                       is_causal=is_causal, left_window=_onnx_window(left_window),
                       right_window=_onnx_window(right_window), scale=scale, softcap=softcap)
    if rank == 3:
        y = y.reshape(batch, q_len, num_heads * v_head_size)
    if qk_matmul_output_mode is None:
        return y, present_key, present_value

    # The 4th output is the S x S score matrix by definition: computed unfused, from
    # the same query (scale folded or not), present_key and visibility as the kernel.
    q_bnsh = q4 if layout == Layout.BNSH else q4.transpose(0, 2, 1, 3)
    bias, allowed = reference.onnx_mask(
        attn_mask, dtype=dtype, batch=batch, num_heads=num_heads, q_len=q_len,
        total_len=total_len, offsets=causal_offset if causal_offsets is None else causal_offsets,
        is_causal=bool(is_causal), left_window=left_window, right_window=right_window,
        kv_lengths=kv_lengths)
    stages = reference.score_stages(q_bnsh, present_key, scale=scale, softcap=float(softcap),
                                     bias=bias, allowed=allowed)
    qk = reference.qk_matmul_output(stages, qk_matmul_output_mode, dtype)
    return y, present_key, present_value, qk


def dot_product_attention(query, key, value, bias=None, mask=None, *, scale=None,
                          is_causal=False, query_seq_lengths=None, key_value_seq_lengths=None,
                          local_window_size=None, softcap=0.0):
    """A drop-in for ``jax.nn.dot_product_attention`` (BTNH layout).

    Same arguments and semantics (causal is top-left, ``local_window_size`` is
    a size or (left, right), floats read as jax.nn reads them, ``scale`` any
    number, traced too), plus what it lacks: ``value`` may have a head size
    different from ``query``/``key``, and ``softcap`` > 0 applies
    ``softcap * tanh(scores / softcap)`` to the scaled scores before bias and
    mask. Unlike jax.nn, rows that may attend to no key give 0.

    Shapes: query [B, T, N, H], key [B, S, K, H], value [B, S, K, Hv] with
    N % K == 0 (rank 3 without the batch axis is accepted too); bias and mask
    (rank 0-4) broadcast to [B, N, T, S]. Returns [B, T, N, Hv].
    """
    dtype = C.check_float_dtype("query", query)
    C.check_same_dtype((("key", key), ("value", value)), dtype)
    C.check_rank("query", query, (3, 4), "([B, T, N, H] or [T, N, H])")
    unbatched = query.ndim == 3
    C.check_rank("key", key, query.ndim, "(the rank of query)")
    C.check_rank("value", value, query.ndim, "(the rank of query)")
    if unbatched:
        query, key, value = query[None], key[None], value[None]
    C.check_scale(scale, positive=False)  # any sign, as jax.nn
    C.check_softcap(softcap)
    batch, q_len, num_heads, head_size = query.shape
    _, kv_len, num_kv_heads, _ = key.shape
    v_head_size = value.shape[3]
    C.check_equal("key", key.shape[0], batch, "batch size")
    C.check_equal("key", key.shape[3], head_size, "head size (must equal query's)")
    C.check_equal("value", value.shape[:3], key.shape[:3], "[B, S, K] (must equal key's)")
    C.check_positive("key", num_kv_heads, "the number of heads")
    C.check_gqa(num_heads, num_kv_heads)
    if head_size == 0 and v_head_size:
        raise ValueError(f"query and key have head size 0, so value's head size must be 0 too "
                         f"(an empty result, as jax.nn gives), got value {value.shape}")

    rank4 = dict(batch=batch, num_heads=num_heads, q_len=q_len, kv_len=kv_len, allow_short=False,
                 ranks=range(5))  # as jax.nn: any rank up to 4, leading axes broadcast
    if mask is not None and jnp.result_type(mask) != jnp.bool_:
        # As jax.nn: an additive mask belongs in `bias`; casting it would attend everywhere.
        raise TypeError(f"mask must be bool (True = attend), got {jnp.result_type(mask)}; "
                        "pass an additive float mask as bias")
    if bias is not None and mask is not None:
        # One mask operand: fold the boolean mask into the bias.
        b4, _ = _mask_operand("bias", bias, dtype, **rank4)
        m4, _ = _mask_operand("mask", mask, dtype, **rank4)
        mask_op, kind = jnp.where(m4, b4, jnp.asarray(-jnp.inf, dtype)), MaskKind.ADDITIVE
    elif bias is not None:
        mask_op, kind = _mask_operand("bias", bias, dtype, **rank4)
    elif mask is not None:
        mask_op, kind = _mask_operand("mask", mask, dtype, **rank4)
    else:
        mask_op, kind = None, MaskKind.NONE

    kv_lengths = None
    if key_value_seq_lengths is not None:
        C.check_int_vector("key_value_seq_lengths", key_value_seq_lengths, batch)
        kv_lengths = jnp.asarray(key_value_seq_lengths, jnp.int32)
    left, right = C.window_pair("local_window_size", local_window_size)
    if query_seq_lengths is not None:
        C.check_int_vector("query_seq_lengths", query_seq_lengths, batch)

    out_shape = (batch, q_len, num_heads, v_head_size)
    if 0 in out_shape:  # as jax.nn, e.g. H = Hv = 0: nothing to compute
        out = jnp.zeros(out_shape, dtype)
        return out[0] if unbatched else out
    scale, q_factor = C.split_scale(scale, head_size)
    out = bind_attention(C.fold_into_query(query, q_factor), key, value, q_layout=Layout.BSNH,
                         kv_layout=Layout.BSNH, out_layout=Layout.BSNH, mask=mask_op,
                         mask_kind=kind, kv_lengths=kv_lengths, is_causal=is_causal,
                         left_window=left, right_window=right, scale=scale, softcap=softcap)
    if query_seq_lengths is not None:
        # As jax.nn: query rows past their sequence's length are zero.
        valid = jnp.arange(q_len)[None, :] < jnp.asarray(query_seq_lengths)[:, None]
        out = jnp.where(valid[:, :, None, None], out, jnp.zeros((), out.dtype))
    return out[0] if unbatched else out

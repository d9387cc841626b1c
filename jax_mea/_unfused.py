"""The attention call's log-sum-exp and backward as plain XLA computations.

The lowering of ``with_lse`` and of the backward primitive for CUDA, until the
CUDA kernels compute them (the FlashAttention-2-style backward kernel is future
work): the same math as the CPU kernels, unfused, so it materialises
[B, Nq, Sq, T] float32 scores (memory quadratic in the sequence). Each function
takes the primitive's operands and parameters as they are bound (layouts,
placeholders, windows read literally), and reproduces the score layer
(cuda/include/jax_mea/score.h): visible keys, softcap, mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_mea import reference
from jax_mea._ffi import LAYOUTS, MASK_KINDS

_BNSH = LAYOUTS["BNSH"]
_HIGHEST = jax.lax.Precision.HIGHEST


def _to_bnsh(x, layout):
    """A rank-4 tensor in `layout` as BNSH (the transpose is its own inverse)."""
    return x if int(layout) == _BNSH else x.transpose(0, 2, 1, 3)


def _repeat_kv(x, num_heads):
    return jnp.repeat(x, num_heads // x.shape[1], axis=1)


def _fit_last(x, length, fill):
    """`x` with its last axis cut or padded (with `fill`) to `length`."""
    have = x.shape[-1]
    if have >= length:
        return x[..., :length]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, length - have)]
    return jnp.pad(x, pad, constant_values=fill)


def logits(q, k, mask, kv_lengths, causal_offsets, **params):
    """(q and k as float32 BNSH, masked logits float32 [B, Nq, Sq, T] with -inf
    where a key is not seen, d logit / d (q.k), which keys each row sees) of one
    attention call."""
    from jax_mea.primitives import UNBOUNDED_WINDOW  # (primitives imports this module)
    q = _to_bnsh(q, params["q_layout"]).astype(jnp.float32)
    k = _to_bnsh(k, params["k_layout"]).astype(jnp.float32)
    num_heads, q_len, kv_len = q.shape[1], q.shape[2], k.shape[2]
    score = jnp.einsum("bnqh,bnkh->bnqk", q, _repeat_kv(k, num_heads), precision=_HIGHEST)
    scale, softcap = jnp.float32(params["scale"]), params["softcap"]
    if softcap > 0:
        th = jnp.tanh(score * (scale / jnp.float32(softcap)))
        logit, dlogit = jnp.float32(softcap) * th, scale * (1 - th * th)
    else:
        logit, dlogit = score * scale, scale
    offsets = causal_offsets if params["has_causal_offsets"] else params["causal_offset"]
    window = [None if w == UNBOUNDED_WINDOW else w
              for w in (params["left_window"], params["right_window"])]
    visible = reference.position_mask(
        q_len, kv_len, offsets=offsets, is_causal=params["is_causal"], left_window=window[0],
        right_window=window[1], kv_lengths=kv_lengths if params["has_kv_lengths"] else None)
    kind = int(params["mask_kind"])
    if kind != MASK_KINDS["NONE"]:
        visible = visible & (jnp.arange(kv_len) < mask.shape[-1])  # keys past the mask
        if kind == MASK_KINDS["BOOL"]:
            visible = visible & _fit_last(mask, kv_len, False)
        else:
            logit = logit + _fit_last(mask.astype(jnp.float32), kv_len, 0.0)
    return q, k, jnp.where(visible, logit, -jnp.inf), dlogit, visible


def lse(q, k, v, mask, kv_lengths, causal_offsets, **params):
    """The row log-sum-exp, float32 [B, Nq, Sq]: -inf for a row that sees no key."""
    del v
    _, _, logit, _, _ = logits(q, k, mask, kv_lengths, causal_offsets, **params)
    m = jnp.max(logit, axis=-1, keepdims=True)
    shift = jnp.where(m == -jnp.inf, 0.0, m)
    return (shift + jnp.log(jnp.sum(jnp.exp(logit - shift), axis=-1, keepdims=True)))[..., 0]


def backward(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout, **params):
    """(dq, dk, dv, dmask) as the backward primitive returns them: FlashAttention-2's
    formulas on whole score matrices. Keys no row of a batch sees (past its kv
    length, say) are zeroed before any product, and unseen entries of the score
    gradients are 0, so a NaN there never reaches a gradient, as in the kernels."""
    qf, kf, logit, dlogit, visible = logits(q, k, mask, kv_lengths, causal_offsets, **params)
    num_heads, num_kv_heads = qf.shape[1], kf.shape[1]
    seen = jnp.broadcast_to(visible, logit.shape).any(axis=(1, 2))[:, None, :, None]  # [B,1,T,1]
    row_lse = lse_[..., None]
    p = jnp.where(row_lse == -jnp.inf, 0.0, jnp.exp(logit - row_lse))
    kf = jnp.where(seen, kf, 0.0)
    vf = jnp.where(seen, _to_bnsh(v, params["v_layout"]).astype(jnp.float32), 0.0)
    do = _to_bnsh(dout, params["out_layout"]).astype(jnp.float32)
    o = _to_bnsh(out, params["out_layout"]).astype(jnp.float32)
    dp = jnp.einsum("bnqd,bnkd->bnqk", do, _repeat_kv(vf, num_heads), precision=_HIGHEST)
    ds = jnp.where(visible, p * (dp - jnp.sum(do * o, axis=-1, keepdims=True)), 0.0)
    dscore = jnp.where(visible, ds * dlogit, 0.0)

    def group_sum(x):  # [B, Nq, ...] -> [B, Nkv, ...]: GQA's sum over each group
        return x.reshape((x.shape[0], num_kv_heads, -1) + x.shape[2:]).sum(axis=2)

    dq = jnp.einsum("bnqk,bnkh->bnqh", dscore, _repeat_kv(kf, num_heads), precision=_HIGHEST)
    dk = group_sum(jnp.einsum("bnqk,bnqh->bnkh", dscore, qf, precision=_HIGHEST))
    dv = group_sum(jnp.einsum("bnqk,bnqd->bnkd", p, do, precision=_HIGHEST))
    if int(params["mask_kind"]) == MASK_KINDS["ADDITIVE"]:
        dmask = _fit_last(ds, mask.shape[-1], 0.0)
    else:
        dmask = jnp.zeros((0,), jnp.float32)
    return (_to_bnsh(dq, params["q_layout"]).astype(q.dtype),
            _to_bnsh(dk, params["k_layout"]).astype(k.dtype),
            _to_bnsh(dv, params["v_layout"]).astype(v.dtype), dmask)

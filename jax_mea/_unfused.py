"""The attention call's log-sum-exp and backward as plain XLA computations.

The CUDA lowering of what its kernels do not take: the lse where v's head size
is 0, and the backward of calls the backward kernel does not take (float32, an
additive mask, head sizes outside its rows, symbolic shapes). The same math as
the CPU kernels: `backward` on whole [B, Nq, Sq, T] float32 score matrices,
`blocked_backward` over blocks of query rows (memory linear in the sequence).
Each function takes the primitive's operands and parameters as they are bound
(layouts, placeholders, windows read literally), and reproduces the score layer
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


def _backward_f32(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout, **params):
    """(dq, dk, dv as float32 BNSH, ds [B, Nq, Sq, T]): FlashAttention-2's formulas on
    whole score matrices. Keys no row sees (past its kv length, say) are zeroed
    before any product, and unseen entries of the score gradients are 0, so a NaN
    there never reaches a gradient, as in the kernels."""
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
    return dq, dk, dv, ds


def _as_results(q, k, v, dq, dk, dv, dmask, params):
    """Float32 BNSH gradients in the primitive's layouts and dtypes."""
    return (_to_bnsh(dq, params["q_layout"]).astype(q.dtype),
            _to_bnsh(dk, params["k_layout"]).astype(k.dtype),
            _to_bnsh(dv, params["v_layout"]).astype(v.dtype), dmask)


def backward(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout, **params):
    """(dq, dk, dv, dmask) as the backward primitive returns them, on whole score
    matrices: memory quadratic in the sequence."""
    dq, dk, dv, ds = _backward_f32(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout,
                                   **params)
    if int(params["mask_kind"]) == MASK_KINDS["ADDITIVE"]:
        dmask = _fit_last(ds, mask.shape[-1], 0.0)
    else:
        dmask = jnp.zeros((0,), jnp.float32)
    return _as_results(q, k, v, dq, dk, dv, dmask, params)


# Query rows per step of blocked_backward: its scores are [B, Nq, QUERY_BLOCK, T]
# float32 (a few such temporaries at a time).
QUERY_BLOCK = 256


def blocked_backward(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout, *,
                     block=QUERY_BLOCK, **params):
    """`backward` over blocks of `block` query rows (a lax.scan; the rows past the
    last whole block in one more step): memory linear in the sequence. Each block
    is its rows' own attention call (query positions, so the causal offsets, moved
    by the block's start; a per-row mask sliced); dk and dv are summed over the
    blocks in float32. An additive mask's gradient, dense [B, Nq, Sq, mask_len],
    is as large as the scores: those calls take `backward`."""
    q_axis, out_axis = (2 if int(params[n]) == _BNSH else 1 for n in ("q_layout", "out_layout"))
    q_len = q.shape[q_axis]
    if (not isinstance(q_len, int) or q_len <= block
            or int(params["mask_kind"]) == MASK_KINDS["ADDITIVE"]):
        return backward(q, k, v, mask, kv_lengths, causal_offsets, out, lse_, dout, **params)
    offsets = causal_offsets if params["has_causal_offsets"] else params["causal_offset"]
    offsets = jnp.asarray(offsets, jnp.int32)
    mask_rows = (int(params["mask_kind"]) != MASK_KINDS["NONE"] and mask.shape[2] != 1)
    block_params = dict(params, has_causal_offsets=True)

    def rows(start, size):
        """Gradients of query rows [start, start + size) (dk, dv: their part)."""
        take = lambda x, axis: jax.lax.dynamic_slice_in_dim(x, start, size, axis)  # noqa: E731
        return _backward_f32(take(q, q_axis), k, v, take(mask, 2) if mask_rows else mask,
                             kv_lengths, offsets + start, take(out, out_axis), take(lse_, 2),
                             take(dout, out_axis), **block_params)[:3]

    def step(carry, i):
        dq, dk, dv = rows(i * block, block)
        return (carry[0] + dk, carry[1] + dv), dq

    whole = q_len // block
    kv_bnsh = [_to_bnsh(x, params[f"{n}_layout"]) for x, n in ((k, "k"), (v, "v"))]
    zeros = tuple(jnp.zeros(x.shape, jnp.float32) for x in kv_bnsh)
    (dk, dv), dq_blocks = jax.lax.scan(step, zeros, jnp.arange(whole))
    # [whole, B, Nq, block, H] -> [B, Nq, whole * block, H]
    dq = jnp.moveaxis(dq_blocks, 0, 2).reshape(
        dq_blocks.shape[1:3] + (whole * block, dq_blocks.shape[-1]))
    if q_len > whole * block:
        dq_tail, dk_tail, dv_tail = rows(whole * block, q_len - whole * block)
        dq, dk, dv = jnp.concatenate([dq, dq_tail], axis=2), dk + dk_tail, dv + dv_tail
    return _as_results(q, k, v, dq, dk, dv, jnp.zeros((0,), jnp.float32), params)

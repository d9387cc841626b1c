"""The jax Primitives of jax-mea: shape rules, batching rules, FFI lowerings.

Three primitives, one per custom-call target:

* ``attention_p``: the attention forward over rank-4 q/k/v in BSNH or BNSH
  layout, with an optional mask, per-batch kv lengths and per-batch causal
  offsets (the parameter struct of ``cuda/include/jax_mea/params.h``). Its
  results: [out], or [out, lse] with ``with_lse`` (the row log-sum-exp, float32
  [B, Nq, Sq], for the backward).
* ``attention_bwd_p``: its backward, (dq, dk, dv, dmask). ``bind_attention``
  differentiates through a custom_vjp that pairs the two.
* ``kv_concat_p``: present = concat(past, new) in BNSH.
* ``decode_step_p``: a decode step in one custom call: writes new tokens into
  a fixed-size BNSH cache at per-batch positions (the cache outputs alias the
  inputs, so a donated cache is updated in place), then attention over it.
  XLA pays its per-custom-call cost once per step, not twice.

The public functions in ``attention.py`` and ``cache.py`` validate user input
and call the ``bind_*`` helpers here; these helpers assume valid shapes.
Batching rules fold a vmapped axis into the kernel's batch axis (no loop).
Under jit with sharded inputs, each device runs its own shard: the lowerings
go through ``_sharding.py`` with the axis roles declared below.
"""

from __future__ import annotations

import enum

from functools import partial

import jax
import jax.export
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax._src import dispatch  # apply_primitive: the standard eager impl
from jax.interpreters import ad, batching, mlir

from jax_mea import _ffi, _sharding, _unfused


# The enum values are the extension's (cuda/module.cc), never typed here.
Layout = enum.IntEnum("Layout", _ffi.LAYOUTS, module=__name__)
Layout.__doc__ = """Axis order of a rank-4 tensor: BSNH [batch, seq, heads, head_dim] (also
a 3D [B, S, N*H] input), BNSH [batch, heads, seq, head_dim]. PACKED_QKV, a decode
step's query only: BSNH [B, T, Nq + 2 Nkv, H], the query heads, then the new keys',
then the new values' (bind_decode_step with key and value None)."""

MaskKind = enum.IntEnum("MaskKind", _ffi.MASK_KINDS, module=__name__)
MaskKind.__doc__ = """How the mask operand is read: NONE, BOOL (True = attend), ADDITIVE."""


# A window size that bounds nothing (kUnboundedWindow in cuda/include/jax_mea/params.h):
# jax.nn's None and ONNX's -1 map to it; every other size is read literally.
UNBOUNDED_WINDOW = 2**31 - 1


def heads_and_seq(shape, layout: Layout) -> tuple[int, int]:
    """(num_heads, seq_len) of a rank-4 shape in `layout` (PACKED_QKV: all its heads)."""
    return (shape[1], shape[2]) if layout == Layout.BNSH else (shape[2], shape[1])


def _check_query_positions(causal_offset: int, q_len, kv_len) -> None:
    """The kernels compute query positions (causal_offset + i) and their window ends in
    64-bit integers but read UNBOUNDED_WINDOW as a number (score.h VisibleKeys), so it
    bounds nothing only while the positions stay within [kv_len - 2**31, 2**31 - 1].
    Outside, the kernels would cut keys that the XLA path and the reference keep: refuse
    such a static offset; per-batch `causal_offsets` (device values) must keep the same
    range, unchecked. (Pending 0010 made the kernels read it as no bound at any
    position; it cost 27% on a packed causal sm_90a instance, so it did not land.)"""
    if not (_is_static(q_len) and _is_static(kv_len)):
        return
    lo, hi = int(kv_len) - 2**31, 2**31 - 1
    if causal_offset < lo or causal_offset + max(int(q_len), 1) - 1 > hi:
        raise ValueError(
            f"causal_offset={causal_offset}: the query positions causal_offset + i "
            f"(i < q_len = {q_len}) must lie in [kv_len - 2**31, 2**31 - 1] = [{lo}, {hi}] "
            f"(kv_len = {kv_len})")


def make_shape(batch, heads, seq, dim, layout: Layout) -> tuple[int, ...]:
    assert layout in (Layout.BSNH, Layout.BNSH), layout
    return (batch, seq, heads, dim) if layout == Layout.BSNH else (batch, heads, seq, dim)


# Absent optional operands are passed as these one-element placeholders so every
# call has the same arity; the matching has_* / mask_kind attribute tells the
# kernel to ignore them.
def _placeholder(dtype) -> jax.Array:
    return jnp.zeros((1,), dtype)


# ----------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------

attention_p = Primitive("jax_mea_attention")


attention_p.multiple_results = True
attention_bwd_p = Primitive("jax_mea_attention_bwd")
attention_bwd_p.multiple_results = True


def bind_attention(
    q,
    k,
    v,
    *,
    q_layout: Layout,
    kv_layout: Layout,
    out_layout: Layout,
    mask=None,
    mask_kind: MaskKind = MaskKind.NONE,
    kv_lengths=None,
    causal_offsets=None,
    causal_offset: int = 0,
    is_causal: bool = False,
    left_window: int = UNBOUNDED_WINDOW,
    right_window: int = UNBOUNDED_WINDOW,
    scale: float,
    softcap: float = 0.0,
):
    """Binds attention_p, differentiable (see _attention). `mask` is rank 4
    [B|1, Nq|1, Sq|1, mask_len]."""
    _check_query_positions(int(causal_offset), heads_and_seq(q.shape, q_layout)[1],
                           heads_and_seq(k.shape, kv_layout)[1])
    params = dict(
        q_layout=Layout(q_layout),
        k_layout=Layout(kv_layout),
        v_layout=Layout(kv_layout),
        out_layout=Layout(out_layout),
        mask_kind=MaskKind(mask_kind if mask is not None else MaskKind.NONE),
        has_kv_lengths=kv_lengths is not None,
        has_causal_offsets=causal_offsets is not None,
        causal_offset=int(causal_offset),
        is_causal=bool(is_causal),
        left_window=int(left_window),
        right_window=int(right_window),
        scale=float(scale),
        softcap=float(softcap),
    )
    return _attention(
        tuple(params.items()), q, k, v,
        mask if mask is not None else _placeholder(jnp.bool_),
        kv_lengths if kv_lengths is not None else _placeholder(jnp.int32),
        causal_offsets if causal_offsets is not None else _placeholder(jnp.int32))


# Differentiation: a custom_vjp over the two primitives, not JVP + transpose rules
# on attention_p. Attention is not linear, so a JVP rule would need a forward-mode
# kernel and a linear, transposable tangent computation; FlashAttention's backward
# instead needs the forward's log-sum-exp and output as residuals, which is what
# custom_vjp expresses. Both primitives keep their batching and partitioning
# rules, so grad composes with jit, vmap, scan and checkpoint (which replays the
# forward), and the sharded program partitions both calls. Forward mode (jax.jvp)
# is not supported.
@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attention(params, q, k, v, mask, kv_lengths, causal_offsets):
    return attention_p.bind(q, k, v, mask, kv_lengths, causal_offsets, with_lse=False,
                            **dict(params))[0]


def _attention_fwd(params, q, k, v, mask, kv_lengths, causal_offsets):
    out, lse = attention_p.bind(q, k, v, mask, kv_lengths, causal_offsets, with_lse=True,
                                **dict(params))
    return out, (q, k, v, mask, kv_lengths, causal_offsets, out, lse)


def _attention_vjp(params, residuals, dout):
    q, k, v, mask, kv_lengths, causal_offsets, out, lse = residuals
    dq, dk, dv, dmask = attention_bwd_p.bind(q, k, v, mask, kv_lengths, causal_offsets, out,
                                             lse, dout, **dict(params))
    if dict(params)["mask_kind"] != MaskKind.ADDITIVE:
        return dq, dk, dv, None, None, None  # bool masks and lengths: no gradient
    # dmask is dense [B, Nq, Sq, mask_len]: sum it over the mask's broadcast axes.
    axes = tuple(i for i in range(3) if mask.shape[i] == 1 and dmask.shape[i] != 1)
    dmask = jnp.sum(dmask, axis=axes, keepdims=True).astype(mask.dtype)
    return dq, dk, dv, dmask, None, None


_attention.defvjp(_attention_fwd, _attention_vjp)


def _results(roles, params, avals_in, shapes_and_dtypes):
    """The abstract results, typed with the sharding the partitioned call gives them."""
    shardings = _sharding.result_shardings(roles, params, avals_in)
    return [jax.core.ShapedArray(shape, dtype, sharding=sharding)
            for (shape, dtype), sharding in zip(shapes_and_dtypes, shardings)]


def _attention_abstract_eval(*avals, **params):
    q, _, v = avals[:3]
    num_heads, q_len = heads_and_seq(q.shape, params["q_layout"])
    out_shape = make_shape(q.shape[0], num_heads, q_len, v.shape[3], params["out_layout"])
    results = [(out_shape, q.dtype)]
    if params["with_lse"]:
        results.append(((q.shape[0], num_heads, q_len), jnp.float32))
    return _results(_attention_roles, params, avals, results)


def _dmask_shape(q, mask, params) -> tuple[int, ...]:
    """The backward's dmask: dense float32 [B, Nq, Sq, mask_len] with an additive
    mask (reduced over the mask's broadcast axes by the caller), else empty."""
    if params["mask_kind"] != MaskKind.ADDITIVE:
        return (0,)
    return (q.shape[0], *heads_and_seq(q.shape, params["q_layout"]), mask.shape[3])


def _attention_bwd_abstract_eval(*avals, **params):
    q, k, v, mask = avals[:4]
    return _results(_attention_bwd_roles, params, avals, [
        (q.shape, q.dtype), (k.shape, k.dtype), (v.shape, v.dtype),
        (_dmask_shape(q, mask, params), jnp.float32)])


for _prim, _eval in ((attention_p, _attention_abstract_eval),
                     (attention_bwd_p, _attention_bwd_abstract_eval)):
    _prim.def_impl(partial(dispatch.apply_primitive, _prim))
    _prim.def_abstract_eval(_eval)


def _lower_params(params: dict) -> dict:
    """Primitive params -> typed FFI attributes (i64, bool, f32)."""
    out = {}
    for name, value in params.items():
        if isinstance(value, bool):
            out[name] = value
        elif isinstance(value, (int, enum.IntEnum)):
            out[name] = np.int64(value)
        elif isinstance(value, float):
            out[name] = np.float32(value)
        else:
            raise TypeError(f"unsupported attribute {name}={value!r}")
    return out


def _ffi_rule(target: str, **lowering_args):
    lower = jax.ffi.ffi_lowering(target, **lowering_args)
    return lambda ctx, *args, **params: lower(ctx, *args, **_lower_params(params))


def _is_static(dim) -> bool:
    """Whether a shape dimension is a number, not a symbolic one (jax.export)."""
    return isinstance(dim, (int, np.integer))


# The decode kernel's workspace: XLA hands it to the handler as an extra result,
# so that the call allocates nothing and can be recorded into XLA's command
# buffers (CUDA graphs). Its size is the extension's bound
# (cuda/include/jax_mea/workspace.h), a pure function of the shapes.
def decode_workspace_bytes(batch, num_heads, num_kv_heads, q_len, v_head_size) -> int:
    """Bytes of workspace a CUDA attention call asks XLA for (0: the decode kernel
    never takes the call). A symbolic dimension (jax.export) counts as unknown:
    the bound is then the cap."""
    dims = [d if _is_static(d) else -1
            for d in (batch, num_heads, num_kv_heads, q_len, v_head_size)]
    return int(_ffi.decode_workspace_bytes(*dims))


def check_cuda_head_sizes(head_size: int, v_head_size: int) -> None:
    """The CUDA kernels' limit, checked when lowering for CUDA (the CPU takes any)."""
    limit = _ffi.cuda_max_head_size
    if head_size > limit or v_head_size > limit:
        raise ValueError(
            f"jax-mea's CUDA kernels take head sizes up to {limit} (cuda_max_head_size), got "
            f"head_size={head_size}, v_head_size={v_head_size}; the CPU takes any")


def _workspace_rule(target: str, platform: str, kv_operands: tuple[int, int],
                    **lowering_args):
    """The FFI lowering of attention_p / decode_step_p: the call's results plus a
    uint8 workspace (empty on the CPU), which the primitive does not return.
    kv_operands: the operand indices of the attended keys and values.

    attention_p's call also always has the lse result (out, lse, workspace),
    empty unless with_lse: then the kernel writes it (on CUDA, the forward kernel:
    a call that asks for it never takes the decode kernel)."""
    lower = jax.ffi.ffi_lowering(target, **lowering_args)

    def rule(ctx, *args, **params):
        q, k, v = (ctx.avals_in[i] for i in (0, *kv_operands))
        if platform == "cuda":
            check_cuda_head_sizes(q.shape[3], v.shape[3])
        num_heads, q_len = heads_and_seq(q.shape, params["q_layout"])
        num_kv_heads, _ = heads_and_seq(k.shape, params["k_layout"])
        if params["q_layout"] == Layout.PACKED_QKV:
            num_heads = _decode_query_heads(q, k, params)
        with_lse = params.pop("with_lse", None)
        if with_lse and platform == "cuda" and v.shape[3] == 0:
            # An empty output: no kernel runs, so the lse comes from XLA.
            return mlir.lower_fun(partial(_cuda_lse_without_values, params),
                                  multiple_results=True)(ctx, *args)
        # The decode kernel's split partials; a call asking for the lse (training)
        # never takes the decode kernel.
        size = 0 if platform == "cpu" or with_lse else decode_workspace_bytes(
            q.shape[0], num_heads, num_kv_heads, q_len, v.shape[3])
        workspace = jax.core.ShapedArray((size,), jnp.uint8)
        avals_out = list(ctx.avals_out)
        if with_lse is None:  # the decode step: no lse result
            ctx = ctx.replace(avals_out=[*avals_out, workspace])
            return lower(ctx, *args, **_lower_params(params))[:-1]
        empty = jax.core.ShapedArray((0,), jnp.float32)
        lse = avals_out[1] if with_lse else empty
        ctx = ctx.replace(avals_out=[avals_out[0], lse, workspace])
        return lower(ctx, *args, **_lower_params(params))[:1 + with_lse]

    return rule


def _cuda_lse_without_values(params, *args):
    """attention_p with with_lse for CUDA when v's head size is 0: the (empty) out
    of the call, the lse in XLA."""
    out = attention_p.bind(*args, with_lse=False, **params)[0]
    return [out, _unfused.lse(*args, **params)]


def _cuda_backward(*args, **params):
    """attention_bwd_p for CUDA where the kernel does not take the call: XLA's
    backward over blocks of query rows (memory linear in the sequence; with an
    additive mask on whole score matrices, as large as its dense gradient)."""
    check_cuda_head_sizes(args[0].shape[3], args[2].shape[3])
    return _unfused.blocked_backward(*args, **params)


def cuda_backward_kernel_applies(dtype, head_size: int, v_head_size: int,
                                 mask_kind) -> bool:
    """Whether the CUDA backward kernel (unless JAX_MEA_CUDA_BACKWARD=0 at import)
    takes a call: float16 / bfloat16, no additive mask (its dmask is
    XLA's), head sizes inside one of its rows."""
    return (_ffi.cuda_backward_kernel and head_size >= 1 and v_head_size >= 1
            and jnp.dtype(dtype) in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
            and mask_kind != MaskKind.ADDITIVE
            and any(head_size <= hp and v_head_size <= hvp
                    for hp, hvp in _ffi.cuda_backward_head_dims))


def _cuda_backward_rule():
    """attention_bwd_p for CUDA: the kernel where it applies (its workspace, D, the
    scaled lse and the float32 dQ accumulator, an extra result from XLA), else the
    unfused XLA backward."""
    kernel = jax.ffi.ffi_lowering(_ffi.ATTENTION_BWD_TARGET)
    unfused = mlir.lower_fun(_cuda_backward, multiple_results=True)

    def rule(ctx, *args, **params):
        q, v = ctx.avals_in[0], ctx.avals_in[2]
        # The kernel's workspace is sized from static shapes: a symbolic dimension (an
        # export with a polymorphic batch, say) takes XLA's backward.
        static = all(_is_static(d) for a in ctx.avals_in for d in a.shape)
        if not (static and cuda_backward_kernel_applies(q.dtype, q.shape[3], v.shape[3],
                                                        params["mask_kind"])):
            return unfused(ctx, *args, **params)
        check_cuda_head_sizes(q.shape[3], v.shape[3])
        batch, num_heads, q_len = ctx.avals_in[7].shape  # lse [B, Nq, Sq]
        num_kv_heads, kv_len = heads_and_seq(ctx.avals_in[1].shape, params["k_layout"])
        size = _ffi.attention_bwd_workspace_bytes(batch, num_heads, num_kv_heads, q_len, kv_len,
                                                  q.shape[3], v.shape[3])
        workspace = jax.core.ShapedArray((size,), jnp.uint8)
        ctx = ctx.replace(avals_out=[*ctx.avals_out, workspace])
        return kernel(ctx, *args, **_lower_params(params))[:-1]

    return rule


# ----------------------------------------------------------------------------
# Batching: fold the vmapped axis into the batch axis.
# ----------------------------------------------------------------------------


def _fold(x, bdim, size: int, batch: int):
    """Moves the vmapped axis of `x` (or broadcasts an unmapped `x`) to the front
    and merges it with the batch axis: [size, batch, ...] -> [size * batch, ...]."""
    if bdim is None:
        x = jnp.broadcast_to(x, (size,) + x.shape)
    else:
        x = jnp.moveaxis(x, bdim, 0)
    if x.shape[1] != batch:  # a broadcast batch axis of size 1 (masks)
        x = jnp.broadcast_to(x, (size, batch) + x.shape[2:])
    return x.reshape((size * batch,) + x.shape[2:])


def _unfold(x, size: int):
    return x.reshape((size, x.shape[0] // size) + x.shape[1:])


def _batch_size(args, dims) -> int:
    return next(a.shape[d] for a, d in zip(args, dims) if d is not None)


def _attention_batch(prim, args, dims, **params):
    """attention_p and attention_bwd_p: (q, k, v, mask, kv_lengths, causal_offsets,
    then only batch-first tensors)."""
    size = _batch_size(args, dims)
    (q, k, v, mask, kv_lengths, causal_offsets), rest = args[:6], args[6:]
    (qd, kd, vd, md, ld, od), rest_dims = dims[:6], dims[6:]
    batch = q.shape[0] if qd is None else jnp.moveaxis(q, qd, 0).shape[1]
    q, k, v = (_fold(x, d, size, batch) for x, d in ((q, qd), (k, kd), (v, vd)))
    if params["mask_kind"] != MaskKind.NONE and (md is not None or mask.shape[0] != 1):
        mask = _fold(mask, md, size, batch)
    if params["has_kv_lengths"]:
        kv_lengths = _fold(kv_lengths, ld, size, batch)
    if params["has_causal_offsets"]:
        causal_offsets = _fold(causal_offsets, od, size, batch)
    rest = [_fold(x, d, size, batch) for x, d in zip(rest, rest_dims)]
    outs = prim.bind(q, k, v, mask, kv_lengths, causal_offsets, *rest, **params)
    # (an empty dmask (0,) unfolds to (size, 0): still empty per example)
    return [_unfold(o, size) for o in outs], [0] * len(outs)


for _prim in (attention_p, attention_bwd_p):
    batching.primitive_batchers[_prim] = partial(_attention_batch, _prim)


# ----------------------------------------------------------------------------
# KV concat
# ----------------------------------------------------------------------------

kv_concat_p = Primitive("jax_mea_kv_concat")
kv_concat_p.multiple_results = True


def bind_kv_concat(past_key, past_value, key, value, *, new_layout: Layout):
    """present_{key,value} = concat(past, new) on the sequence axis, BNSH."""
    return kv_concat_p.bind(past_key, past_value, key, value, new_layout=Layout(new_layout))


def _kv_concat_abstract_eval(*avals, **params):
    past_key, past_value, key, value = avals
    _, new_len = heads_and_seq(key.shape, params["new_layout"])
    total = past_key.shape[2] + new_len
    return _results(_kv_concat_roles, params, avals, [
        (past_key.shape[:2] + (total, past_key.shape[3]), key.dtype),
        (past_value.shape[:2] + (total, past_value.shape[3]), value.dtype)])


kv_concat_p.def_abstract_eval(_kv_concat_abstract_eval)
kv_concat_p.def_impl(partial(dispatch.apply_primitive, kv_concat_p))


def _fold_all_batch(prim, keep=()):
    """Batching rule of a primitive whose every argument has the batch axis first
    (except the placeholders at indices `keep`, or keep(params), passed as they
    are): all are folded, the batch size taken from argument 0, and every output
    unfolded."""
    def rule(args, dims, **params):
        size = _batch_size(args, dims)
        first = args[0] if dims[0] is None else jnp.moveaxis(args[0], dims[0], 0)[0]
        batch = first.shape[0]
        kept = keep(params) if callable(keep) else keep
        folded = [a if i in kept else _fold(a, d, size, batch)
                  for i, (a, d) in enumerate(zip(args, dims))]
        outs = prim.bind(*folded, **params)
        return [_unfold(o, size) for o in outs], [0] * len(outs)

    return rule


batching.primitive_batchers[kv_concat_p] = _fold_all_batch(kv_concat_p)


# KV concat is linear: its JVP is the concat of the tangents, its transpose the
# slices of the cotangents (past first, then the new tokens in their layout).
def _kv_concat_jvp(primals, tangents, **params):
    tangents = [ad.instantiate_zeros(t) for t in tangents]
    return kv_concat_p.bind(*primals, **params), kv_concat_p.bind(*tangents, **params)


def _kv_concat_transpose(cts, past_key, past_value, key, value, **params):
    past_len = past_key.aval.shape[2]
    grads = []
    for ct, past, new in ((cts[0], past_key, key), (cts[1], past_value, value)):
        ct = ad.instantiate_zeros(ct)
        new_ct = ct[:, :, past_len:]
        if params["new_layout"] == Layout.BSNH:
            new_ct = new_ct.transpose(0, 2, 1, 3)
        grads.append((ct[:, :, :past_len], new_ct))
    (dpk, dk), (dpv, dv) = grads
    return [dpk if ad.is_undefined_primal(past_key) else None,
            dpv if ad.is_undefined_primal(past_value) else None,
            dk if ad.is_undefined_primal(key) else None,
            dv if ad.is_undefined_primal(value) else None]


ad.primitive_jvps[kv_concat_p] = _kv_concat_jvp
ad.primitive_transposes[kv_concat_p] = _kv_concat_transpose


# ----------------------------------------------------------------------------
# Decode step: append, then attention, in one custom call
# ----------------------------------------------------------------------------

decode_step_p = Primitive("jax_mea_decode_step")
decode_step_p.multiple_results = True


def bind_decode_step(q, key, value, cache_key, cache_value, starts, overflowed, *,
                     left_window: int, scale: float, softcap: float):
    """Writes key/value [B, T, Nkv, H|Hv] into the BNSH caches at positions starts[b] + t
    (dropping positions outside), then attends q [B, T, Nq, H] causally over the first
    min(starts[b] + T, capacity) keys, query t sitting at position starts[b] + t. Returns
    (out [B, T, Nq, Hv], cache_key, cache_value, overflowed); the caches are updated in
    place, and so are the overflow flags (bool [B]), set where starts[b] + T > capacity:
    in XLA that update was a kernel of its own a layer (two with the lengths' at B1).
    key and value None: q is packed, [B, T, Nq + 2 Nkv, H] (Layout.PACKED_QKV; Hv = H),
    and the kernel reads the three through its strides, with no slice copies.

    The lengths come from the starts inside the call, not from a second operand: a
    model's step computes the new lengths into the cache's own buffer, and an operand
    holding them beside the old ones made XLA copy the old lengths every layer."""
    packed = key is None and value is None
    if packed:
        key = value = _placeholder(q.dtype)
    return decode_step_p.bind(
        q, key, value, cache_key, cache_value, _placeholder(jnp.bool_), starts, overflowed,
        q_layout=Layout.PACKED_QKV if packed else Layout.BSNH, k_layout=Layout.BNSH,
        v_layout=Layout.BNSH,
        out_layout=Layout.BSNH, mask_kind=MaskKind.NONE, has_kv_lengths=True,
        has_causal_offsets=True, causal_offset=0, is_causal=True, left_window=int(left_window),
        right_window=UNBOUNDED_WINDOW, scale=float(scale), softcap=float(softcap))


def _decode_query_heads(q, cache_key, params) -> int:
    """Nq of a decode step's query (a packed one holds 2 Nkv heads more)."""
    if params["q_layout"] != Layout.PACKED_QKV:
        return q.shape[2]
    nq = q.shape[2] - 2 * cache_key.shape[1]
    if nq <= 0:
        raise ValueError(f"a packed query [B, T, Nq + 2 Nkv, H] needs more than 2 Nkv = "
                         f"{2 * cache_key.shape[1]} heads, got {q.shape}")
    return nq


def _decode_step_abstract_eval(*avals, **params):
    q, cache_key, cache_value = avals[0], avals[3], avals[4]
    return _results(_decode_step_roles, params, avals, [
        (q.shape[:2] + (_decode_query_heads(q, cache_key, params), cache_value.shape[3]),
         q.dtype),
        (cache_key.shape, cache_key.dtype), (cache_value.shape, cache_value.dtype),
        (avals[7].shape, avals[7].dtype)])


decode_step_p.def_abstract_eval(_decode_step_abstract_eval)
decode_step_p.def_impl(partial(dispatch.apply_primitive, decode_step_p))


def _decode_step_jvp(primals, tangents, **params):
    raise NotImplementedError(
        "jax_mea.decode_attention is inference-only and not differentiable (its cache "
        "update runs in place); for training, use jax_mea.dot_product_attention or "
        "jax_mea.onnx_attention, which have gradients")


ad.primitive_jvps[decode_step_p] = _decode_step_jvp


# Argument 5 is the mask placeholder (mask_kind none): not batched.
# A packed step's key and value (1, 2) are placeholders too.
batching.primitive_batchers[decode_step_p] = _fold_all_batch(
    decode_step_p, keep=lambda params: (1, 2, 5) if params["q_layout"] == Layout.PACKED_QKV
    else (5,))


# ----------------------------------------------------------------------------
# Lowering and partitioning
# ----------------------------------------------------------------------------

# Dimension roles of each primitive's operands and results (see _sharding.py):
# b batch, n query heads, k kv heads (the axes that split over devices); other
# letters name axes that stay whole; "." an axis of its own (placeholders, the
# size-1 axes of broadcast masks).


def _attention_roles(params, avals):
    q, _, _, mask, _, _ = avals
    L = _sharding.layout_roles
    if params["mask_kind"] == MaskKind.NONE:
        mask_roles = "."
    else:  # [B|1, Nq|1, Sq|1, mask_len]: broadcast axes are replicated
        full = (q.shape[0], *heads_and_seq(q.shape, params["q_layout"]))
        mask_roles = "".join(r if m == f else "." for r, m, f in zip("bns", mask.shape, full))
        mask_roles += "m"
    out = L(params["out_layout"], "b", "n", "s", "d")
    return ((L(params["q_layout"], "b", "n", "s", "h"), L(params["k_layout"], "b", "k", "t", "h"),
             L(params["v_layout"], "b", "k", "t", "d"), mask_roles,
             "b" if params["has_kv_lengths"] else ".",
             "b" if params["has_causal_offsets"] else "."),
            (out, "bns") if params.get("with_lse") else (out,))


def _attention_bwd_roles(params, avals):
    # operands: the forward's, then out, lse [B, Nq, Sq], dout; results: dq, dk,
    # dv (as q, k, v) and the dense dmask [B, Nq, Sq, mask_len] (or a placeholder).
    (q, k, v, mask, lengths, offsets), (out,) = _attention_roles(
        {**params, "with_lse": False}, avals[:6])
    dmask = "bnsm" if params["mask_kind"] == MaskKind.ADDITIVE else "."
    return (q, k, v, mask, lengths, offsets, out, "bns", out), (q, k, v, dmask)


def _kv_concat_roles(params, avals):
    L = _sharding.layout_roles
    return (("bkph", "bkpd", L(params["new_layout"], "b", "k", "t", "h"),
             L(params["new_layout"], "b", "k", "t", "d")), ("bkxh", "bkxd"))


def _decode_step_roles(params, avals):
    # (q, new_k, new_v, cache_k, cache_v, mask placeholder, starts, overflowed)
    if params["q_layout"] == Layout.PACKED_QKV:
        # One head axis holds the query, key and value heads: the call splits over
        # the batch only, and heads split anywhere are an error (upper-case roles).
        return (("bsPh", ".", ".", "bMlh", "bMlh", ".", "b", "b"),
                ("bsQh", "bMlh", "bMlh", "b"))
    return (("bsnh", "btkh", "btkd", "bklh", "bkld", ".", "b", "b"),
            ("bsnd", "bklh", "bkld", "b"))


def _register_lowerings() -> None:
    # Both platforms always, so that a CPU-only machine can export for CUDA; the
    # targets are registered with XLA only where the kernels were built (_ffi.py).
    for platform in ("cpu", "cuda"):
        rules = (
            (attention_p, _workspace_rule(_ffi.ATTENTION_TARGET, platform, (1, 2)),
             _attention_roles),
            (kv_concat_p, _ffi_rule(_ffi.KV_CONCAT_TARGET), _kv_concat_roles),
            (decode_step_p, _workspace_rule(_ffi.DECODE_STEP_TARGET, platform, (3, 4),
                                            operand_output_aliases={3: 1, 4: 2, 7: 3}),
             _decode_step_roles),
        )
        # The backward: the CPU kernel; for CUDA, the backward kernel where it
        # applies (cuda_backward_kernel_applies), else XLA.
        bwd = (_ffi_rule(_ffi.ATTENTION_BWD_TARGET) if platform == "cpu" else
               _cuda_backward_rule())
        rules += ((attention_bwd_p, bwd, _attention_bwd_roles),)
        for prim, plain, roles in rules:
            mlir.register_lowering(prim, _sharding.partitioned_lowering(prim, plain, roles),
                                   platform=platform)


_register_lowerings()


def export_disabled_checks() -> list:
    """The jax.export.DisabledSafetyCheck list that lets jax.export serialize
    programs that call jax-mea: its custom-call targets carry no stability
    guarantee of jax's own, so jax asks for each to be named. Use as
    ``jax.export.export(jax.jit(f), disabled_checks=jax_mea.export_disabled_checks())``.
    The program runs where jax_mea is imported (which registers the targets)."""
    return [jax.export.DisabledSafetyCheck.custom_call(t) for t in _ffi.TARGETS]


def cuda_available() -> bool:
    """True when the CUDA kernels are built and registered."""
    return "cuda" in _ffi.registered_platforms


__all__ = [
    "Layout",
    "MaskKind",
    "UNBOUNDED_WINDOW",
    "attention_p",
    "attention_bwd_p",
    "kv_concat_p",
    "decode_step_p",
    "bind_attention",
    "bind_kv_concat",
    "bind_decode_step",
    "cuda_available",
    "export_disabled_checks",
]


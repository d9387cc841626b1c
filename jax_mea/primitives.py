"""The jax Primitives of jax-mea: shape rules, batching rules, FFI lowerings.

Three primitives, one per custom-call target:

* ``attention_p``: the attention forward over rank-4 q/k/v in BSNH or BNSH
  layout, with an optional mask, per-batch kv lengths and per-batch causal
  offsets (the parameter struct of ``cuda/include/jax_mea/params.h``).
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
from jax.interpreters import batching, mlir

from jax_mea import _ffi, _sharding


# The enum values are the extension's (cuda/module.cc), never typed here.
Layout = enum.IntEnum("Layout", _ffi.LAYOUTS, module=__name__)
Layout.__doc__ = """Axis order of a rank-4 tensor: BSNH [batch, seq, heads, head_dim] (also
a 3D [B, S, N*H] input), BNSH [batch, heads, seq, head_dim]."""

MaskKind = enum.IntEnum("MaskKind", _ffi.MASK_KINDS, module=__name__)
MaskKind.__doc__ = """How the mask operand is read: NONE, BOOL (True = attend), ADDITIVE."""


# A window size that bounds nothing (kUnboundedWindow in cuda/include/jax_mea/params.h):
# jax.nn's None and ONNX's -1 map to it; every other size is read literally.
UNBOUNDED_WINDOW = 2**31 - 1


def heads_and_seq(shape, layout: Layout) -> tuple[int, int]:
    """(num_heads, seq_len) of a rank-4 shape in `layout`."""
    return (shape[2], shape[1]) if layout == Layout.BSNH else (shape[1], shape[2])


def make_shape(batch, heads, seq, dim, layout: Layout) -> tuple[int, ...]:
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
    """Binds attention_p. `mask` is rank 4 [B|1, Nq|1, Sq|1, mask_len]."""
    return attention_p.bind(
        q,
        k,
        v,
        mask if mask is not None else _placeholder(jnp.bool_),
        kv_lengths if kv_lengths is not None else _placeholder(jnp.int32),
        causal_offsets if causal_offsets is not None else _placeholder(jnp.int32),
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


def _results(roles, params, avals_in, shapes_and_dtypes):
    """The abstract results, typed with the sharding the partitioned call gives them."""
    shardings = _sharding.result_shardings(roles, params, avals_in)
    return [jax.core.ShapedArray(shape, dtype, sharding=sharding)
            for (shape, dtype), sharding in zip(shapes_and_dtypes, shardings)]


def _attention_abstract_eval(*avals, **params):
    q, _, v = avals[:3]
    num_heads, q_len = heads_and_seq(q.shape, params["q_layout"])
    out_shape = make_shape(q.shape[0], num_heads, q_len, v.shape[3], params["out_layout"])
    return _results(_attention_roles, params, avals, [(out_shape, q.dtype)])[0]


attention_p.def_impl(partial(dispatch.apply_primitive, attention_p))
attention_p.def_abstract_eval(_attention_abstract_eval)


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


# The decode kernel's workspace: XLA hands it to the handler as an extra result,
# so that the call allocates nothing and can be recorded into XLA's command
# buffers (CUDA graphs). Its size is the extension's bound
# (cuda/include/jax_mea/workspace.h), a pure function of the shapes.
def decode_workspace_bytes(batch, num_heads, num_kv_heads, q_len, v_head_size) -> int:
    """Bytes of workspace a CUDA attention call asks XLA for (0: the decode kernel
    never takes the call). A symbolic dimension (jax.export) counts as unknown:
    the bound is then the cap."""
    dims = [d if isinstance(d, (int, np.integer)) else -1
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
    kv_operands: the operand indices of the attended keys and values."""
    lower = jax.ffi.ffi_lowering(target, **lowering_args)

    def rule(ctx, *args, **params):
        q, k, v = (ctx.avals_in[i] for i in (0, *kv_operands))
        if platform == "cuda":
            check_cuda_head_sizes(q.shape[3], v.shape[3])
        num_heads, q_len = heads_and_seq(q.shape, params["q_layout"])
        num_kv_heads, _ = heads_and_seq(k.shape, params["k_layout"])
        size = 0 if platform == "cpu" else decode_workspace_bytes(
            q.shape[0], num_heads, num_kv_heads, q_len, v.shape[3])
        workspace = jax.core.ShapedArray((size,), jnp.uint8)
        ctx = ctx.replace(avals_out=[*ctx.avals_out, workspace])
        return lower(ctx, *args, **_lower_params(params))[:-1]

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


def _attention_batch(args, dims, **params):
    size = _batch_size(args, dims)
    q, k, v, mask, kv_lengths, causal_offsets = args
    qd, kd, vd, md, ld, od = dims
    batch = q.shape[0] if qd is None else jnp.moveaxis(q, qd, 0).shape[1]
    q, k, v = (_fold(x, d, size, batch) for x, d in ((q, qd), (k, kd), (v, vd)))
    if params["mask_kind"] != MaskKind.NONE and (md is not None or mask.shape[0] != 1):
        mask = _fold(mask, md, size, batch)
    if params["has_kv_lengths"]:
        kv_lengths = _fold(kv_lengths, ld, size, batch)
    if params["has_causal_offsets"]:
        causal_offsets = _fold(causal_offsets, od, size, batch)
    out = attention_p.bind(q, k, v, mask, kv_lengths, causal_offsets, **params)
    return _unfold(out, size), 0


batching.primitive_batchers[attention_p] = _attention_batch


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
    (except the placeholders at indices `keep`, passed as they are): all are
    folded, the batch size taken from argument 0, and every output unfolded."""
    def rule(args, dims, **params):
        size = _batch_size(args, dims)
        first = args[0] if dims[0] is None else jnp.moveaxis(args[0], dims[0], 0)[0]
        batch = first.shape[0]
        folded = [a if i in keep else _fold(a, d, size, batch)
                  for i, (a, d) in enumerate(zip(args, dims))]
        outs = prim.bind(*folded, **params)
        return [_unfold(o, size) for o in outs], [0] * len(outs)

    return rule


batching.primitive_batchers[kv_concat_p] = _fold_all_batch(kv_concat_p)


# ----------------------------------------------------------------------------
# Decode step: append, then attention, in one custom call
# ----------------------------------------------------------------------------

decode_step_p = Primitive("jax_mea_decode_step")
decode_step_p.multiple_results = True


def bind_decode_step(q, key, value, cache_key, cache_value, starts, kv_lengths, *,
                     left_window: int, scale: float, softcap: float):
    """Writes key/value [B, T, Nkv, H|Hv] into the BNSH caches at positions starts[b] + t
    (dropping positions outside), then attends q [B, T, Nq, H] causally over the first
    kv_lengths[b] keys, query t sitting at position starts[b] + t. Returns (out
    [B, T, Nq, Hv], cache_key, cache_value); the caches are updated in place."""
    return decode_step_p.bind(
        q, key, value, cache_key, cache_value, _placeholder(jnp.bool_), kv_lengths, starts,
        q_layout=Layout.BSNH, k_layout=Layout.BNSH, v_layout=Layout.BNSH,
        out_layout=Layout.BSNH, mask_kind=MaskKind.NONE, has_kv_lengths=True,
        has_causal_offsets=True, causal_offset=0, is_causal=True, left_window=int(left_window),
        right_window=UNBOUNDED_WINDOW, scale=float(scale), softcap=float(softcap))


def _decode_step_abstract_eval(*avals, **params):
    q, cache_key, cache_value = avals[0], avals[3], avals[4]
    return _results(_decode_step_roles, params, avals, [
        (q.shape[:3] + (cache_value.shape[3],), q.dtype),
        (cache_key.shape, cache_key.dtype), (cache_value.shape, cache_value.dtype)])


decode_step_p.def_abstract_eval(_decode_step_abstract_eval)
decode_step_p.def_impl(partial(dispatch.apply_primitive, decode_step_p))


# Argument 5 is the mask placeholder (mask_kind none): not batched.
batching.primitive_batchers[decode_step_p] = _fold_all_batch(decode_step_p, keep=(5,))


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
    return ((L(params["q_layout"], "b", "n", "s", "h"), L(params["k_layout"], "b", "k", "t", "h"),
             L(params["v_layout"], "b", "k", "t", "d"), mask_roles,
             "b" if params["has_kv_lengths"] else ".",
             "b" if params["has_causal_offsets"] else "."),
            (L(params["out_layout"], "b", "n", "s", "d"),))


def _kv_concat_roles(params, avals):
    L = _sharding.layout_roles
    return (("bkph", "bkpd", L(params["new_layout"], "b", "k", "t", "h"),
             L(params["new_layout"], "b", "k", "t", "d")), ("bkxh", "bkxd"))


def _decode_step_roles(params, avals):
    # (q, new_k, new_v, cache_k, cache_v, mask placeholder, kv_lengths, starts)
    return (("bsnh", "btkh", "btkd", "bklh", "bkld", ".", "b", "b"),
            ("bsnd", "bklh", "bkld"))


def _register_lowerings() -> None:
    # Both platforms always, so that a CPU-only machine can export for CUDA; the
    # targets are registered with XLA only where the kernels were built (_ffi.py).
    for platform in ("cpu", "cuda"):
        rules = (
            (attention_p, _workspace_rule(_ffi.ATTENTION_TARGET, platform, (1, 2)),
             _attention_roles),
            (kv_concat_p, _ffi_rule(_ffi.KV_CONCAT_TARGET), _kv_concat_roles),
            (decode_step_p, _workspace_rule(_ffi.DECODE_STEP_TARGET, platform, (3, 4),
                                            operand_output_aliases={3: 1, 4: 2}),
             _decode_step_roles),
        )
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
    "kv_concat_p",
    "decode_step_p",
    "bind_attention",
    "bind_kv_concat",
    "bind_decode_step",
    "cuda_available",
    "export_disabled_checks",
]


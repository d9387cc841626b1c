"""Partitioning of jax-mea's custom calls under jit with sharded inputs.

Each primitive describes its operands and results by *dimension roles*, one
character per axis:

* ``b``: the batch; ``n``: query heads; ``k``: key/value heads. These may be
  split over devices: every device then runs the custom call on its own shard,
  with no collectives. Query heads split as whole GQA groups, together with
  their kv heads (a Shardy compound factor ``(k g)``, g = Nq / Nkv).
* any other letter (``s``, ``t``, ``h``, ...): an axis shared by name between
  operands and results (the same length), never split; if the input is sharded
  there, XLA gathers it before the call.
* ``.``: an axis of its own, replicated: the one-element placeholders of absent
  optional operands, and the size-1 axes of broadcast masks.
* an upper-case letter: a head axis that must stay whole, where a split input is an
  error instead of a gather (a packed QKV's head axis mixes query, key and value
  heads, so the call, its cache and its output split over the batch only).

The mechanism is ``jax.experimental.custom_partitioning`` with a Shardy
sharding rule built from the roles (the README's "Sharding and export" says why).
The lowering of each primitive goes through it only where it has something to
partition: on one device, inside a fully manual ``shard_map`` (already
per-shard) or when lowering for ``jax.export`` (custom_partitioning's callbacks
are Python objects that no serialized program can carry), the plain FFI call
is emitted.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from jax._src import dispatch
from jax.experimental.custom_partitioning import custom_partitioning
from jax.extend.core import Primitive
from jax.interpreters import mlir
from jax.sharding import NamedSharding, PartitionSpec

from jax_mea import _ffi

# Roles(params, avals_in) -> (operand roles, result roles): one string per operand
# and per result, one role per axis.
RolesFn = Callable[[dict, Sequence], tuple[tuple[str, ...], tuple[str, ...]]]

_PRIMITIVES: dict[str, Primitive] = {}


def layout_roles(layout, batch: str, heads: str, seq: str, dim: str) -> str:
    """The roles of a rank-4 tensor in `layout` (BSNH or BNSH)."""
    assert int(layout) in (_ffi.LAYOUTS["BSNH"], _ffi.LAYOUTS["BNSH"]), layout
    bsnh = int(layout) == _ffi.LAYOUTS["BSNH"]
    return batch + (seq + heads if bsnh else heads + seq) + dim


def _group(in_roles, avals_in) -> tuple[int, int]:
    """(number of kv heads, GQA group size) from the axes with roles n and k."""
    sizes = {}
    for roles, aval in zip(in_roles, avals_in):
        for role, size in zip(roles, aval.shape):
            sizes.setdefault(role, size)
    kv = sizes.get("k", sizes.get("n", 1))
    return int(kv), int(sizes.get("n", kv)) // max(int(kv), 1)


# ----------------------------------------------------------------------------
# The Shardy rule
# ----------------------------------------------------------------------------


def _sharding_rule(prim_name, params, in_roles, out_roles, num_kv_heads, group, mesh,
                   value_types, result_types):
    """The Shardy rule, in custom_partitioning's einsum-like notation (public in
    jax 0.10 and 0.11, where the rule classes are not): e.g. for attention over
    BSNH q and BNSH k/v, ``b s (k g) h, b k t h, b k t d, ... -> b s (k g) d``."""
    del prim_name, params, num_kv_heads, mesh, value_types, result_types
    fresh = iter(range(1 << 20))

    def factor(role: str) -> str:
        if role == ".":
            return f"u{next(fresh)}"
        if role == "n":
            return "(k g)" if group > 1 else "k"
        return role

    def mapping(roles: str) -> str:
        return " ".join(factor(r) for r in roles)

    lhs = ", ".join(mapping(r) for r in in_roles)
    rhs = ", ".join(mapping(r) for r in out_roles)
    names = (lhs + " " + rhs).replace(",", " ").replace("(", " ").replace(")", " ").split()
    # Only batch and whole GQA groups split; every other axis is gathered first.
    # (In order of first use: Shardy wants the special factors sorted so.)
    replicated = tuple(f for f in dict.fromkeys(names) if f not in ("b", "k", "g"))
    options = {"need_replication_factors": replicated}
    if group > 1:
        options["g"] = group  # used only inside (k g): its size is not inferred
    return f"{lhs} -> {rhs}", options


# ----------------------------------------------------------------------------
# Partitioning: the shardings each device's call takes, and the call itself
# ----------------------------------------------------------------------------


def _spec_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _entry(axes: tuple[str, ...]):
    return None if not axes else axes[0] if len(axes) == 1 else axes


def _split_axes(in_roles, arg_shapes, role_set: str) -> tuple[str, ...]:
    """The mesh axes that the first operand axis with a role in `role_set` is split over."""
    for roles, shape in zip(in_roles, arg_shapes):
        sharding = shape.sharding
        spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
        for i, r in enumerate(roles):
            if r in role_set:
                return _spec_axes(spec[i] if i < len(spec) else None)
    return ()


def _batch_and_heads(in_roles, operands) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The mesh axes the operands split their batch and their heads over."""
    batch = _split_axes(in_roles, operands, "b")
    return batch, tuple(a for a in _split_axes(in_roles, operands, "nk") if a not in batch)


def _spec(roles: str, batch, heads) -> PartitionSpec:
    return PartitionSpec(*(_entry(batch) if r == "b" else _entry(heads) if r in "nk" else None
                           for r in roles))


def _check_whole_heads(prim_name, in_roles, operands) -> None:
    """A ValueError where an operand is split on an axis whose role is upper case."""
    for index, (roles, operand) in enumerate(zip(in_roles, operands)):
        sharding = getattr(operand, "sharding", None)
        spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
        for i, r in enumerate(roles):
            axes = _spec_axes(spec[i] if i < len(spec) else None)
            if r.isupper() and axes:
                raise ValueError(
                    f"{prim_name}: operand {index}'s axis {i} is split over mesh axes {axes}, "
                    f"but it is a head axis that splits with neither the query nor the "
                    f"key/value heads (a packed QKV and its cache split over the batch "
                    f"only). Shard the heads of query, key and value passed apart, or "
                    f"keep the heads whole.")


def _shardings(prim_name, in_roles, out_roles, num_kv_heads, mesh, arg_shapes):
    """(operand shardings, result shardings) for each device to run its own shard:
    batch and heads as the operands have them, every other axis whole."""
    _check_whole_heads(prim_name, in_roles, arg_shapes)
    batch, heads = _batch_and_heads(in_roles, arg_shapes)
    splits = 1
    for a in heads:
        splits *= mesh.shape[a]
    if num_kv_heads % splits:
        raise ValueError(
            f"{prim_name}: the heads are split over {splits} devices (mesh axes {heads}), "
            f"but there are {num_kv_heads} key/value heads. Heads shard as whole GQA groups "
            f"(query heads with their key/value heads): split them over a number of devices "
            f"that divides {num_kv_heads}, and use the other devices for the batch.")
    return tuple(tuple(NamedSharding(mesh, _spec(r, batch, heads)) for r in roles)
                 for roles in (in_roles, out_roles))


def _call(prim_name, params, in_roles, out_roles, num_kv_heads, group, *args):
    """The custom call, as the body of the custom_partitioning function: run on
    the local shard's operands by each device."""
    prim = _PRIMITIVES[prim_name]
    out = prim.bind(*args, **dict(params))
    return tuple(out) if prim.multiple_results else (out,)


def _partition(prim_name, params, in_roles, out_roles, num_kv_heads, group, mesh,
               arg_shapes, result_shape):
    del result_shape
    arg_shardings, result_shardings = _shardings(prim_name, in_roles, out_roles,
                                                 num_kv_heads, mesh, arg_shapes)
    body = partial(_call, prim_name, params, in_roles, out_roles, num_kv_heads, group)
    return mesh, body, result_shardings, arg_shardings


def _infer_result_shardings(prim_name, params, in_roles, out_roles, num_kv_heads, group, mesh,
                            arg_shapes, result_shape):
    """The GSPMD partitioner's callback (where Shardy is turned off)."""
    del params, group, result_shape
    return _shardings(prim_name, in_roles, out_roles, num_kv_heads, mesh, arg_shapes)[1]


_partitioned = custom_partitioning(_call, static_argnums=(0, 1, 2, 3, 4, 5))
_partitioned.def_partition(
    partition=_partition,
    infer_sharding_from_operands=_infer_result_shardings,
    sharding_rule=_sharding_rule,
)


def result_shardings(roles: RolesFn, params: dict, avals_in) -> list:
    """The results' sharding in types (None: jax's default): batch and heads split
    as the operands' are over explicit mesh axes (jax types auto axes as None),
    the other axes whole, as the partitioned call makes them."""
    in_roles, out_roles = roles(params, avals_in)
    mesh = getattr(getattr(avals_in[0], "sharding", None), "mesh", None)
    if mesh is None or mesh.empty:
        return [None] * len(out_roles)
    _check_whole_heads("jax-mea", in_roles, avals_in)
    batch, heads = _batch_and_heads(in_roles, avals_in)
    return [NamedSharding(mesh, _spec(r, batch, heads)) for r in out_roles]


# ----------------------------------------------------------------------------
# The lowering
# ----------------------------------------------------------------------------


def _per_shard(ctx) -> bool:
    """True where the plain FFI call is what to emit: one device, inside a fully
    manual shard_map, or lowering for export."""
    mc = ctx.module_context
    if getattr(mc.lowering_parameters, "for_export", False):
        return True
    axis_context = mc.axis_context
    manual = getattr(axis_context, "manual_axes", None)
    if manual is not None:  # SPMDAxisContext: inside shard_map
        return set(manual) == set(axis_context.mesh.axis_names)
    return getattr(axis_context, "num_devices", 1) <= 1


def partitioned_lowering(prim: Primitive, plain_rule, roles: RolesFn):
    """The lowering rule of `prim`: `plain_rule` (the FFI call) per shard, through
    custom_partitioning where the program is partitioned."""
    _PRIMITIVES[prim.name] = prim
    # custom_partitioning needs the devices when lowering (as jax's cuDNN attention
    # declares for its primitives); jax lowers without them otherwise.
    getattr(dispatch, "prim_requires_devices_during_lowering", set()).add(prim)

    def rule(ctx, *args, **params):
        if _per_shard(ctx):
            return plain_rule(ctx, *args, **params)
        in_roles, out_roles = roles(params, ctx.avals_in)
        num_kv_heads, group = _group(in_roles, ctx.avals_in)
        statics = (prim.name, tuple(params.items()), in_roles, out_roles, num_kv_heads, group)
        return mlir.lower_fun(partial(_partitioned, *statics), multiple_results=True)(ctx, *args)

    return rule

"""jit, vmap and scan of onnx_attention and dot_product_attention: the transformed
call equals the plain one bit for bit (vmap: the stack of per-item results), since
the same kernel does the same arithmetic on each row (an unjitted call runs the
same compiled kernel, so a tolerance here would hide any difference)."""

import functools

import jax
import numpy as np
import pytest

import jax_mea
from conftest import (DpaCase, OnnxCase, assert_same, assert_same_kernel, call_onnx_attention,
                      make_dpa_inputs, make_onnx_inputs, to_jnp)

NUM_ITEMS = 3


def _onnx_fn(case, rng):
    """(f, make_item): f(arrays) -> (Y, present_key, present_value), make_item() -> arrays."""
    _, attrs = make_onnx_inputs(case, rng)

    def make_item():
        inputs, _ = make_onnx_inputs(case, rng)
        if case.nonpad is not None:  # vary the lengths between items
            inputs["nonpad_kv_seqlen"] = rng.integers(0, case.kv_len + 1, case.batch, np.int32)
        return {k: v for k, v in inputs.items() if v is not None}

    return functools.partial(call_onnx_attention, jax_mea.onnx_attention, attrs=attrs), make_item


def _dpa_fn(case, rng):
    """(f, make_item) for dot_product_attention; lengths vary between items."""
    _, kwargs = make_dpa_inputs(case, rng)
    static = {k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)}

    def make_item():
        (query, key, value), kw = make_dpa_inputs(case, rng)
        arrays = {k: v for k, v in kw.items() if isinstance(v, np.ndarray)}
        for name, size in (("query_seq_lengths", case.q_len),
                           ("key_value_seq_lengths", case.kv_len)):
            if name in arrays:
                arrays[name] = rng.integers(1, size + 1, case.batch, np.int32)
        return dict(query=query, key=key, value=value, **arrays)

    def f(x):
        x = dict(x)
        return jax_mea.dot_product_attention(x.pop("query"), x.pop("key"), x.pop("value"),
                                             **x, **static)

    return f, make_item


def _assert_trees_same(got, want, dtype, same_shapes=True):
    """Bit-identical leaves; same_shapes=False (vmap): see assert_same_kernel."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        if same_shapes:
            assert_same(g, w)
        else:
            assert_same_kernel(g, w, dtype)


def check_vmap(f, make_item, batched, dtype, axes=None, nested=False):
    """vmap f over NUM_ITEMS items (NUM_ITEMS x 2 when nested): the inputs named in
    `batched` get a mapped axis (position axes.get(name, 0)), the others are shared."""
    axes = axes or {}
    count = NUM_ITEMS * (2 if nested else 1)
    items = [make_item() for _ in range(count)]
    shared = {k: v for k, v in items[0].items() if k not in batched}
    items = [{**item, **shared} for item in items]
    lead = (2, NUM_ITEMS) if nested else (NUM_ITEMS,)

    def stack(name):
        x = np.stack([item[name] for item in items]).reshape(*lead, *items[0][name].shape)
        return np.moveaxis(x, len(lead) - 1, axes.get(name, 0) + len(lead) - 1)

    stacked = {k: stack(k) if k in batched else v for k, v in items[0].items()}
    in_axes = ({k: axes.get(k, 0) if k in batched else None for k in stacked},)
    vf = jax.vmap(f, in_axes=in_axes)
    if nested:
        vf = jax.vmap(vf, in_axes=({k: 0 if k in batched else None for k in stacked},))
    got = vf(to_jnp(stacked))
    want = [f(to_jnp(item)) for item in items]
    want = jax.tree.map(lambda *xs: np.stack(xs).reshape(*lead, *xs[0].shape), *want)
    _assert_trees_same(got, want, dtype, same_shapes=False)


def vmap_params(table):
    """(name, nested) pairs: every case once, and nested too where all axes are 0."""
    return [pytest.param(name, nested, id=f"{name}-{'vmap2' if nested else 'vmap'}")
            for name, (_, _, axes) in table.items() for nested in (False, True)
            if not (nested and axes)]


ONNX_BASE = OnnxCase(batch=2, q_heads=4, kv_heads=2, q_len=4, kv_len=6, head_size=16,
                     v_head_size=24)
QKV = {"Q", "K", "V"}
ONNX_VMAP = {
    "qkv": (ONNX_BASE, QKV, {}),
    "q-only": (ONNX_BASE.replace(is_causal=True), {"Q"}, {}),
    "q-axis1": (ONNX_BASE, QKV, {"Q": 1, "V": 2}),
    "3d": (ONNX_BASE.replace(rank=3, is_causal=True), QKV, {}),
    "past": (ONNX_BASE.replace(past_len=3, is_causal=True),
             QKV | {"past_key", "past_value"}, {}),
    "past-shared": (ONNX_BASE.replace(past_len=3, is_causal=True), QKV, {}),
    "bool-mask": (ONNX_BASE.replace(mask="bool:B1Qt"), QKV | {"attn_mask"}, {}),
    "bool-mask-shared": (ONNX_BASE.replace(mask="bool:B1Qt"), QKV, {}),
    "float-mask": (ONNX_BASE.replace(mask="float:1NQT", past_len=2), QKV | {"attn_mask"}, {}),
    "mask-only": (ONNX_BASE.replace(mask="float:QT"), {"attn_mask"}, {}),
    "nonpad": (ONNX_BASE.replace(nonpad=(6, 6), is_causal=True),
               QKV | {"nonpad_kv_seqlen"}, {}),
    "nonpad-shared": (ONNX_BASE.replace(nonpad=(6, 6), is_causal=True), QKV, {}),
    "nonpad-only": (ONNX_BASE.replace(nonpad=(6, 6), window=(2, 0)), {"nonpad_kv_seqlen"}, {}),
}


@pytest.mark.parametrize("name,nested", vmap_params(ONNX_VMAP))
def test_vmap_onnx_attention(rng, name, nested):
    case, batched, axes = ONNX_VMAP[name]
    f, make_item = _onnx_fn(case, rng)
    check_vmap(f, make_item, batched, case.dtype, axes, nested)


DPA_BASE = DpaCase(batch=2, q_len=5, kv_len=7, q_heads=4, kv_heads=2, head_size=16,
                   v_head_size=16)
QKV_DPA = {"query", "key", "value"}
DPA_VMAP = {
    "qkv": (DPA_BASE.replace(is_causal=True), QKV_DPA, {}),
    "key-axis2": (DPA_BASE, QKV_DPA, {"key": 2}),
    "bias": (DPA_BASE.replace(bias="1NTS"), QKV_DPA | {"bias"}, {}),
    "bias-shared": (DPA_BASE.replace(bias="B1TS"), QKV_DPA, {}),
    "mask": (DPA_BASE.replace(mask="B1TS", window=(2, 1)), QKV_DPA | {"mask"}, {}),
    "mask-only": (DPA_BASE.replace(mask="BNTS"), {"mask"}, {}),
    "lengths": (DPA_BASE.replace(q_lengths=(5, 5), kv_lengths=(7, 7), is_causal=True),
                QKV_DPA | {"query_seq_lengths", "key_value_seq_lengths"}, {}),
    "lengths-shared": (DPA_BASE.replace(kv_lengths=(7, 7)), QKV_DPA, {}),
    "lengths-only": (DPA_BASE.replace(kv_lengths=(7, 7)), {"key_value_seq_lengths"}, {}),
}


@pytest.mark.parametrize("name,nested", vmap_params(DPA_VMAP))
def test_vmap_dot_product_attention(rng, name, nested):
    case, batched, axes = DPA_VMAP[name]
    f, make_item = _dpa_fn(case, rng)
    check_vmap(f, make_item, batched, case.dtype, axes, nested)


JIT_CASES = {
    "onnx-past-mask": (_onnx_fn, ONNX_BASE.replace(past_len=3, mask="bool:B1Qt", is_causal=True,
                                                   dtype="bfloat16")),
    "onnx-3d-nonpad": (_onnx_fn, ONNX_BASE.replace(rank=3, nonpad=(3, 6), mask="float:1NQT",
                                                   softcap=2.0, window=(2, -1))),
    "dpa-all": (_dpa_fn, DPA_BASE.replace(bias="B1TS", mask="1NTS", kv_lengths=(4, 7),
                                          q_lengths=(5, 3), is_causal=True, window=3,
                                          dtype="float16")),
}


@pytest.mark.parametrize("name", list(JIT_CASES))
def test_jit(rng, name):
    make_fn, case = JIT_CASES[name]
    f, make_item = make_fn(case, rng)
    x = to_jnp(make_item())
    _assert_trees_same(jax.jit(f)(x), f(x), case.dtype)


@pytest.mark.parametrize("name", ["onnx-past-mask", "dpa-all"])
def test_scan(rng, name):
    """lax.scan over NUM_ITEMS steps equals the per-step calls."""
    make_fn, case = JIT_CASES[name]
    f, make_item = make_fn(case, rng)
    items = [make_item() for _ in range(NUM_ITEMS)]
    xs = {k: np.stack([item[k] for item in items]) for k in items[0]}
    _, got = jax.jit(lambda xs: jax.lax.scan(lambda c, x: (c, f(x)), None, xs))(to_jnp(xs))
    want = jax.tree.map(lambda *ys: np.stack(ys), *[f(to_jnp(item)) for item in items])
    _assert_trees_same(got, want, case.dtype)

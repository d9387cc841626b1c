"""jax.export of the three functions, and the facts the extension owns.

Exports are made for both platforms ("cpu", "cuda") on whatever machine runs
the suite (a CPU-only one in CI), serialized, deserialized and called here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jax_mea
from jax_mea import _ext, _ffi
from jax_mea.primitives import Layout, MaskKind, decode_workspace_bytes
from conftest import assert_close, f32, on_gpu

H, HV, NQ, NKV = 16, 8, 4, 2


def test_facts_come_from_the_extension():
    assert {m.name: m.value for m in Layout} == _ext.layouts
    assert {m.name: m.value for m in MaskKind} == _ext.mask_kinds
    assert set(_ffi.TARGETS) == {"jax_mea_attention", "jax_mea_attention_bwd", "jax_mea_kv_concat",
                                 "jax_mea_decode_step"}
    checks = jax_mea.export_disabled_checks()
    assert sorted(c.is_custom_call() for c in checks) == sorted(_ffi.TARGETS)


def test_decode_workspace_bound():
    lim = _ffi.LIMITS
    splits, cap = lim["decode_max_splits"], lim["decode_workspace_cap"]
    # batch 2, 32 query heads over 8 kv heads, one token, Hv 128: 64 splits of 64 rows,
    # (max, sum) then Hv floats per row, the second part 256-byte aligned.
    rows = 2 * 32 * 1
    assert decode_workspace_bytes(2, 32, 8, 1, 128) == splits * rows * 8 + splits * rows * 128 * 4
    assert decode_workspace_bytes(4096, 32, 8, 1, 128) == cap  # capped
    # More query rows per kv head than the decode kernel takes: none.
    rows_max = lim["decode_max_rows_per_kv_head"]
    assert decode_workspace_bytes(2, 8, 1, rows_max // 8 + 1, 64) == 0
    # A symbolic batch (jax.export): the cap, unless the kernel is ruled out anyway.
    b = export.symbolic_shape("b")[0]
    assert decode_workspace_bytes(b, 32, 8, 1, 128) == cap
    assert decode_workspace_bytes(b, 32, 8, 8, 128) == 0


def _spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


def _round_trip(fn, *specs):
    """fn exported for cpu and cuda, serialized and deserialized."""
    exported = export.export(jax.jit(fn), platforms=("cpu", "cuda"),
                             disabled_checks=jax_mea.export_disabled_checks())(*specs)
    restored = export.deserialize(exported.serialize())
    assert restored.platforms == ("cpu", "cuda")
    return restored, exported.mlir_module()


def _assert_tree_equal(actual, expected):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def _inputs(rng, batch, *shapes):
    return [jnp.asarray(rng.standard_normal((batch, *s)), jnp.float32) for s in shapes]


def test_export_needs_the_disabled_checks():
    q = _spec((1, 3, NQ, H))
    with pytest.raises(ValueError, match="jax_mea_attention"):
        export.export(jax.jit(jax_mea.dot_product_attention))(q, _spec((1, 5, NKV, H)),
                                                              _spec((1, 5, NKV, HV)))


def test_round_trip_dot_product_attention(rng):
    b = export.symbolic_shape("b")[0]

    def f(q, k, v, bias, lengths):
        return jax_mea.dot_product_attention(q, k, v, bias=bias, is_causal=True,
                                             key_value_seq_lengths=lengths)

    restored, _ = _round_trip(f, _spec((b, 3, NQ, H)), _spec((b, 5, NKV, H)),
                              _spec((b, 5, NKV, HV)), _spec((1, NQ, 3, 5)),
                              _spec((b,), jnp.int32))
    for batch in (1, 3):
        q, k, v = _inputs(rng, batch, (3, NQ, H), (5, NKV, H), (5, NKV, HV))
        bias = jnp.asarray(rng.standard_normal((1, NQ, 3, 5)), jnp.float32)
        lengths = jnp.arange(batch, dtype=jnp.int32) + 2
        _assert_tree_equal(restored.call(q, k, v, bias, lengths), f(q, k, v, bias, lengths))


def test_round_trip_onnx_attention(rng):
    b = export.symbolic_shape("b")[0]

    def f(q, k, v, mask, past_key, past_value):
        return jax_mea.onnx_attention(q, k, v, attn_mask=mask, past_key=past_key,
                                      past_value=past_value, is_causal=True)

    restored, _ = _round_trip(f, _spec((b, NQ, 3, H)), _spec((b, NKV, 5, H)),
                              _spec((b, NKV, 5, HV)), _spec((b, 1, 3, 9), jnp.bool_),
                              _spec((b, NKV, 4, H)), _spec((b, NKV, 4, HV)))
    for batch in (1, 2):
        q, k, v, pk, pv = _inputs(rng, batch, (NQ, 3, H), (NKV, 5, H), (NKV, 5, HV),
                                  (NKV, 4, H), (NKV, 4, HV))
        mask = jnp.asarray(rng.random((batch, 1, 3, 9)) < 0.8)
        _assert_tree_equal(restored.call(q, k, v, mask, pk, pv), f(q, k, v, mask, pk, pv))


def test_round_trip_decode_attention(rng):
    """A KVCache in and out (its pytree node serializes), a symbolic batch."""
    b, capacity = export.symbolic_shape("b")[0], 16
    cache_spec = jax_mea.KVCache(key=_spec((b, NKV, capacity, H)),
                                 value=_spec((b, NKV, capacity, HV)),
                                 lengths=_spec((b,), jnp.int32), overflowed=_spec((b,), jnp.bool_))
    restored, _ = _round_trip(jax_mea.decode_attention, _spec((b, 1, NQ, H)),
                                   _spec((b, 1, NKV, H)), _spec((b, 1, NKV, HV)), cache_spec)
    assert restored.in_tree == jax.tree.structure(((0, 0, 0, jax_mea.KVCache(0, 0, 0, 0)), {}))
    for batch in (1, 3):
        q, k, v = _inputs(rng, batch, (1, NQ, H), (1, NKV, H), (1, NKV, HV))
        cache = jax_mea.KVCache.create(batch, capacity, NKV, H, HV, dtype=jnp.float32)
        # Row 0 full: the step overflows it (the flag set inside the exported call).
        cache = cache.replace(lengths=(jnp.arange(batch, dtype=jnp.int32) * 5).at[0].set(capacity))
        out, new_cache = restored.call(q, k, v, cache)
        assert isinstance(new_cache, jax_mea.KVCache)
        _assert_tree_equal((out, new_cache), jax_mea.decode_attention(q, k, v, cache))
        np.testing.assert_array_equal(new_cache.overflowed, np.arange(batch) == 0)


def test_round_trip_packed_decode_attention(rng):
    """A packed QKV step (the decode call's q_layout PACKED_QKV serializes), a
    symbolic batch."""
    b, capacity = export.symbolic_shape("b")[0], 16
    cache_spec = jax_mea.KVCache(key=_spec((b, NKV, capacity, H)),
                                 value=_spec((b, NKV, capacity, H)),
                                 lengths=_spec((b,), jnp.int32), overflowed=_spec((b,), jnp.bool_))

    def step(qkv, cache):
        return jax_mea.decode_attention(qkv, None, None, cache)

    restored, module = _round_trip(step, _spec((b, 1, NQ + 2 * NKV, H)), cache_spec)
    assert f"q_layout = {int(Layout.PACKED_QKV)} : i64" in str(module)
    for batch in (1, 3):
        (qkv,) = _inputs(rng, batch, (1, NQ + 2 * NKV, H))
        cache = jax_mea.KVCache.create(batch, capacity, NKV, H, dtype=jnp.float32)
        cache = cache.replace(key=jnp.asarray(rng.standard_normal(cache.key.shape), jnp.float32),
                              lengths=jnp.arange(batch, dtype=jnp.int32) + 4)
        _assert_tree_equal(restored.call(qkv, cache), step(qkv, cache))


def test_export_sizes_the_workspace_per_platform():
    """The CUDA lowering asks for the decode workspace bound, the CPU one for none;
    both lowerings exist on a machine without CUDA kernels."""
    batch = 2
    specs = (_spec((batch, 1, NQ, H)), _spec((batch, 1, NKV, H)), _spec((batch, 1, NKV, HV)),
             jax_mea.KVCache.create(batch, 16, NKV, H, HV, dtype=jnp.float32))
    _, module = _round_trip(jax_mea.decode_attention, *specs)
    bound = decode_workspace_bytes(batch, NQ, NKV, 1, HV)
    assert bound > 0
    assert f"tensor<{bound}xui8>" in module and "tensor<0xui8>" in module


def test_round_trip_gradient_with_a_symbolic_batch(rng):
    """A training step's grad, exported for both platforms with a polymorphic batch:
    the CUDA backward kernel's workspace needs static shapes, so that export lowers
    the CUDA backward in XLA; with a static batch it takes the kernel. On the GPU the
    restored call (XLA's blocked backward) and the direct grad (the kernel) round
    differently in bfloat16: equal within the GPU's gradient tolerance, not bitwise."""
    def grad(q, k, v):
        loss = lambda q, k, v: jnp.sum(jax_mea.dot_product_attention(
            q, k, v, is_causal=True).astype(jnp.float32) ** 2)
        return jax.grad(loss, (0, 1, 2))(q, k, v)

    b = export.symbolic_shape("b")[0]
    shapes = ((3, NQ, H), (5, NKV, H), (5, NKV, HV))
    restored, module = _round_trip(grad, *(_spec((b,) + s, jnp.bfloat16) for s in shapes))
    assert _ffi.ATTENTION_BWD_TARGET in module  # the CPU kernel's; CUDA's is XLA's
    q, k, v = (x.astype(jnp.bfloat16) for x in _inputs(rng, 2, *shapes))
    if on_gpu():
        for name, a, e in zip("qkv", restored.call(q, k, v), grad(q, k, v), strict=True):
            assert_close(a, f32(e), "bfloat16", f"d{name}")
    else:
        _assert_tree_equal(restored.call(q, k, v), grad(q, k, v))
    static = export.export(jax.jit(grad), platforms=("cuda",),
                           disabled_checks=jax_mea.export_disabled_checks())(
        *(_spec((2,) + s, jnp.bfloat16) for s in shapes)).mlir_module()
    assert _ffi.ATTENTION_BWD_TARGET in static

"""Sharded calls on 8 CPU devices. Run by tests/test_sharding.py in a subprocess
(the device count must be set before jax starts, and the rest of the suite runs
on one device):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python3 -m pytest tests/multidevice/sharded_checks.py

Each function runs under jit with NamedSharding over batch, over heads, or both
(a 2x4 data x model mesh), and must: compile with no collectives, keep the
inputs' sharding on its outputs (and on the donated cache, appended in place,
1/n of its bytes per device), and equal the same call on one device.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import jax_mea

COLLECTIVES = re.compile(r"all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter")

# batch 8, 16 query heads in 8 GQA groups of 2: every mesh below splits them.
B, NQ, NKV, SQ, SKV, H, HV = 8, 16, 8, 3, 7, 16, 8

# name -> (mesh shape, axis names, batch axes, heads axes)
MESHES = {
    "batch": ((8,), ("data",), "data", None),
    "heads": ((8,), ("model",), None, "model"),
    "2x4": ((2, 4), ("data", "model"), "data", "model"),
}


@pytest.fixture(scope="module", autouse=True)
def eight_devices():
    if jax.device_count() != 8:
        pytest.fail("run with XLA_FLAGS=--xla_force_host_platform_device_count=8")


@functools.lru_cache(maxsize=None)
def mesh_of(name):
    """(mesh, batch axes, heads axes); jax.make_mesh's axes are explicit (sharding in
    types), "-auto" ones are not (the sharding is known only to the compiler)."""
    base, auto = name.removesuffix("-auto"), name.endswith("-auto")
    shape, names, batch, heads = MESHES[base]
    types = {"axis_types": (jax.sharding.AxisType.Auto,) * len(names)} if auto else {}
    return jax.make_mesh(shape, names, **types), batch, heads


def put(x, mesh, *spec):
    return jax.device_put(x, NamedSharding(mesh, P(*spec)))


def data(seed, *shape, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def compiled_text(fn, *args) -> str:
    return fn.lower(*args).compile().as_text()


def check_no_collectives(fn, *args):
    found = COLLECTIVES.findall(compiled_text(fn, *args))
    assert not found, f"collectives in the compiled program: {found}"


def assert_spec(x, *spec):
    want = P(*spec)
    got = tuple(x.sharding.spec) + (None,) * (x.ndim - len(x.sharding.spec))
    assert got == tuple(want) + (None,) * (x.ndim - len(want)), (
        f"sharding {x.sharding.spec}, expected {want}")


def assert_same(actual, expected, what):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-5,
                               err_msg=what)


@pytest.mark.parametrize("mesh_name", list(MESHES))
def test_dot_product_attention(mesh_name):
    mesh, b, n = mesh_of(mesh_name)
    q, k, v = data(0, B, SQ, NQ, H), data(1, B, SKV, NKV, H), data(2, B, SKV, NKV, HV)
    bias = data(3, B, 1, SQ, SKV)  # broadcast over heads: replicated on that axis
    lengths = np.arange(B, dtype=np.int32) % SKV + 1

    def f(q, k, v, bias, lengths):
        return jax_mea.dot_product_attention(q, k, v, bias=bias, is_causal=True,
                                             key_value_seq_lengths=lengths)

    args = (put(q, mesh, b, None, n), put(k, mesh, b, None, n), put(v, mesh, b, None, n),
            put(bias, mesh, b), put(lengths, mesh, b))
    fn = jax.jit(f)
    check_no_collectives(fn, *args)
    out = fn(*args)
    assert_spec(out, b, None, n)
    assert_same(out, jax.jit(f)(q, k, v, bias, lengths), "dot_product_attention")


@pytest.mark.parametrize("mesh_name", list(MESHES))
def test_onnx_attention_past_and_mask(mesh_name):
    """4D BNSH with a past (the KV concat call) and a mask broadcast over batch."""
    mesh, b, n = mesh_of(mesh_name)
    past_len = 4
    q, k, v = data(0, B, NQ, SQ, H), data(1, B, NKV, SKV, H), data(2, B, NKV, SKV, HV)
    pk, pv = data(3, B, NKV, past_len, H), data(4, B, NKV, past_len, HV)
    mask = np.random.default_rng(5).random((1, NQ, SQ, past_len + SKV)) < 0.8

    def f(q, k, v, mask, pk, pv):
        return jax_mea.onnx_attention(q, k, v, attn_mask=mask, past_key=pk, past_value=pv,
                                      is_causal=True)

    args = (put(q, mesh, b, n), put(k, mesh, b, n), put(v, mesh, b, n),
            put(mask, mesh, None, n), put(pk, mesh, b, n), put(pv, mesh, b, n))
    fn = jax.jit(f)
    check_no_collectives(fn, *args)
    outs = fn(*args)
    for x in outs:
        assert_spec(x, b, n)
    for name, x, want in zip(("Y", "present_key", "present_value"), outs,
                             jax.jit(f)(q, k, v, mask, pk, pv)):
        assert_same(x, want, name)


@pytest.mark.parametrize("mesh_name", list(MESHES))
def test_onnx_attention_3d_nonpad(mesh_name):
    """3D [B, S, N*H] inputs (heads split through the reshape) with per-batch lengths."""
    mesh, b, n = mesh_of(mesh_name)
    q, k, v = data(0, B, SQ, NQ * H), data(1, B, SKV, NKV * H), data(2, B, SKV, NKV * HV)
    nonpad = np.arange(B, dtype=np.int32) % SKV + 1

    def f(q, k, v, nonpad):
        return jax_mea.onnx_attention(q, k, v, nonpad_kv_seqlen=nonpad, is_causal=True,
                                      q_num_heads=NQ, kv_num_heads=NKV)

    args = (put(q, mesh, b, None, n), put(k, mesh, b, None, n), put(v, mesh, b, None, n),
            put(nonpad, mesh, b))
    fn = jax.jit(f)
    check_no_collectives(fn, *args)
    y, present_key, present_value = fn(*args)
    assert_spec(y, b, None, n)
    assert_spec(present_key, b, n)
    for name, x, want in zip(("Y", "present_key", "present_value"),
                             (y, present_key, present_value), jax.jit(f)(q, k, v, nonpad)):
        assert_same(x, want, name)


def _cache(mesh, b, n, capacity=32):
    key, value = data(6, B, NKV, capacity, H), data(7, B, NKV, capacity, HV)
    lengths = (np.arange(B, dtype=np.int32) * 5) % capacity
    lengths[-1] = capacity - 1  # a 2-token step overflows this row (its flag on its shard)
    host = (key, value, lengths, np.zeros(B, bool))
    # jnp copies first: a device_put of numpy memory may borrow it, and XLA does not
    # write in place into memory it does not own.
    sharded = jax_mea.KVCache(key=put(jnp.array(key), mesh, b, n),
                              value=put(jnp.array(value), mesh, b, n),
                              lengths=put(lengths, mesh, b), overflowed=put(host[3], mesh, b))
    return sharded, jax_mea.KVCache(*(jnp.asarray(x) for x in host))


@pytest.mark.parametrize("mesh_name", [*MESHES, "2x4-auto"])
def test_decode_step_in_place(mesh_name):
    mesh, b, n = mesh_of(mesh_name)
    steps = 2
    q, k, v = data(0, B, steps, NQ, H), data(1, B, steps, NKV, H), data(2, B, steps, NKV, HV)
    cache, host_cache = _cache(mesh, b, n)
    args = (put(q, mesh, b, None, n), put(k, mesh, b, None, n), put(v, mesh, b, None, n), cache)
    step = jax.jit(jax_mea.decode_attention, donate_argnums=3)
    check_no_collectives(step, *args)
    # Under an explicit mesh the sharding is in the types too.
    out_type, cache_type = jax.eval_shape(step, *args)
    if all(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
        assert out_type.sharding.spec == P(b, None, n, None)
        assert cache_type.key.sharding.spec == P(b, n, None, None)
    pointers = [s.data.unsafe_buffer_pointer() for s in cache.key.addressable_shards]

    out, new_cache = step(*args)
    assert_spec(out, b, None, n)
    assert_spec(new_cache.key, b, n)
    assert_spec(new_cache.value, b, n)
    assert_spec(new_cache.lengths, b)
    # Each device holds its shard only, and the donated cache was appended in place.
    shards = new_cache.key.addressable_shards
    assert len(shards) == 8
    assert all(s.data.nbytes * 8 == new_cache.key.nbytes for s in shards)
    assert [s.data.unsafe_buffer_pointer() for s in shards] == pointers

    want_out, want_cache = jax.jit(jax_mea.decode_attention)(q, k, v, host_cache)
    assert_same(out, want_out, "out")
    for name in ("key", "value", "lengths", "overflowed"):
        np.testing.assert_array_equal(np.asarray(getattr(new_cache, name)),
                                      np.asarray(getattr(want_cache, name)), err_msg=name)
    np.testing.assert_array_equal(np.asarray(new_cache.overflowed),
                                  np.asarray(host_cache.lengths) + steps > 32)


def test_packed_decode_step_over_batch():
    """A packed query [B, T, Nq + 2 Nkv, H] (key and value None) splits over the batch:
    no collectives, the donated cache stays sharded and in place, the same results as
    on one device. (Its head axis mixes query, key and value heads: it never splits.)"""
    mesh, b, _ = mesh_of("batch")
    capacity = 32
    key, value = data(6, B, NKV, capacity, H), data(7, B, NKV, capacity, H)
    lengths = (np.arange(B, dtype=np.int32) * 5) % capacity
    lengths[-1] = capacity  # full: this step overflows it (its flag set on its shard)
    host = jax_mea.KVCache(jnp.asarray(key), jnp.asarray(value), jnp.asarray(lengths),
                           jnp.zeros(B, bool))
    cache = jax.tree.map(lambda x: put(jnp.array(x), mesh, b), host)
    qkv = data(3, B, 2, NQ + 2 * NKV, H)
    step = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c),
                   donate_argnums=1)
    args = (put(qkv, mesh, b), cache)
    check_no_collectives(step, *args)
    pointers = [s.data.unsafe_buffer_pointer() for s in cache.key.addressable_shards]
    out, new_cache = step(*args)
    assert_spec(out, b)
    assert_spec(new_cache.key, b)
    assert [s.data.unsafe_buffer_pointer() for s in new_cache.key.addressable_shards] == pointers
    want_out, want_cache = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c))(
        qkv, host)
    assert_same(out, want_out, "out")
    for name in ("key", "value", "lengths", "overflowed"):
        np.testing.assert_array_equal(np.asarray(getattr(new_cache, name)),
                                      np.asarray(getattr(want_cache, name)), err_msg=name)
    np.testing.assert_array_equal(np.asarray(new_cache.overflowed), np.arange(B) == B - 1)


@pytest.mark.parametrize("mesh_name", ["heads", "2x4", "2x4-auto"])
def test_packed_decode_step_heads_split_is_an_error(mesh_name):
    """A packed step whose cache (or packed query) is split over heads: a clear error
    at trace or compile time, not a silent gather of every layer's cache."""
    mesh, b, n = mesh_of(mesh_name)
    capacity = 32
    kv = put(jnp.array(data(6, B, NKV, capacity, H)), mesh, b, n)
    cache = jax_mea.KVCache(kv, kv, put(np.zeros(B, np.int32), mesh, b),
                            put(np.zeros(B, bool), mesh, b))
    qkv = put(data(3, B, 1, NQ + 2 * NKV, H), mesh, b)
    step = jax.jit(lambda qkv, c: jax_mea.decode_attention(qkv, None, None, c))
    # Explicit axes: a ValueError at trace time; auto axes: the partitioner's, wrapped.
    with pytest.raises(Exception, match="packed QKV and its cache split over the batch only"):
        step.lower(qkv, cache).compile()


def test_too_few_kv_heads_for_the_head_shards():
    """2 kv heads over 4 model shards: a clear error, not a silent gather."""
    mesh, b, n = mesh_of("2x4")
    q, k = data(0, B, SQ, 4, H), data(1, B, SKV, 2, H)
    args = (put(q, mesh, b, None, n), put(k, mesh, b), put(k, mesh, b))
    with pytest.raises(Exception, match="heads are split over 4 devices.*2 key/value heads"):
        jax.jit(jax_mea.dot_product_attention).lower(*args).compile()


def test_sequence_axis_is_gathered():
    """A sequence-sharded input is gathered first (documented), and the answer holds."""
    mesh, b, n = mesh_of("2x4")
    q, k, v = data(0, B, 8, NQ, H), data(1, B, SKV, NKV, H), data(2, B, SKV, NKV, HV)
    args = (put(q, mesh, None, "data", n), put(k, mesh, None, None, n),
            put(v, mesh, None, None, n))
    fn = jax.jit(jax_mea.dot_product_attention)
    assert "all-gather" in compiled_text(fn, *args)
    assert_same(fn(*args), jax.jit(jax_mea.dot_product_attention)(q, k, v), "out")


def test_sharded_export_through_shard_map():
    """jax.export of a sharded decode step: the call inside shard_map serializes
    (the partitioned call outside one cannot: README "Sharding and export")."""
    mesh, b, n = mesh_of("2x4")
    tokens, cache_spec = P(b, None, n), jax_mea.KVCache(P(b, n), P(b, n), P(b), P(b))
    f = jax.shard_map(jax_mea.decode_attention, mesh=mesh,
                      in_specs=(tokens, tokens, tokens, cache_spec),
                      out_specs=(tokens, cache_spec))
    q, k, v = data(0, B, 1, NQ, H), data(1, B, 1, NKV, H), data(2, B, 1, NKV, HV)
    cache, host_cache = _cache(mesh, b, n)
    args = (put(q, mesh, *tokens), put(k, mesh, *tokens), put(v, mesh, *tokens), cache)
    exported = jax.export.export(jax.jit(f), disabled_checks=jax_mea.export_disabled_checks())(
        *args)
    restored = jax.export.deserialize(exported.serialize())
    call = jax.jit(restored.call)
    check_no_collectives(call, *args)
    out, new_cache = call(*args)
    assert_spec(out, *tokens)
    assert_spec(new_cache.key, b, n)
    want_out, want_cache = jax.jit(jax_mea.decode_attention)(q, k, v, host_cache)
    assert_same(out, want_out, "out")
    np.testing.assert_array_equal(np.asarray(new_cache.key), np.asarray(want_cache.key))

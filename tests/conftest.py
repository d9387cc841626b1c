"""Shared test helpers: seeded data, per-dtype tolerances, the ONNX oracle, case builders.

Semantic tests run on whatever jax's default backend is (CPU here, GPU on a GPU
machine); tests marked ``gpu`` are skipped unless that backend is a GPU.
"""

from __future__ import annotations

import os

# Several pytest workers (-n) share one GPU: none may take most of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import dataclasses
import functools
import zlib
from typing import Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from jax_mea import reference

DTYPES = ("float32", "float16", "bfloat16")


# ----------------------------------------------------------------------------
# pytest plumbing
# ----------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a GPU as jax's default device")


def on_gpu() -> bool:
    return jax.devices()[0].platform == "gpu"


# Error bounds of assert_close, relative to the largest |value| of each output row
# (CPU) or of the whole tensor (GPU). The CPU kernels accumulate in float32 and
# round only the output: the worst row the suite saw against float32/float64
# oracles was 7.7e-7 (float32), 4.8e-4 (float16, half an ulp) and 3.9e-3
# (bfloat16, half an ulp). The GPU kernels round the probabilities to 16 bits
# before the PV product, so their bound stays the whole tensor's, as measured
# there before the per-row check existed.
CPU_TOLERANCE = {"float32": 2e-6, "float16": 1e-3, "bfloat16": 1e-2}
GPU_TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}
TOLERANCE = GPU_TOLERANCE if on_gpu() else CPU_TOLERANCE


def pytest_collection_modifyitems(config, items):
    if on_gpu():
        return
    skip = pytest.mark.skip(reason="jax's default device is not a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A numpy Generator seeded from the test's id: reproducible, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# ----------------------------------------------------------------------------
# Data and comparisons
# ----------------------------------------------------------------------------


def np_dtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def randn(rng, shape, dtype: str = "float32", std: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np_dtype(dtype))


def random_bool_mask(rng, shape, p_true: float = 0.75) -> np.ndarray:
    return rng.random(shape) < p_true


def random_float_mask(rng, shape, dtype: str, p_neg_inf: float = 0.15) -> np.ndarray:
    m = rng.standard_normal(shape) * 2.0
    m[rng.random(shape) < p_neg_inf] = -np.inf
    return m.astype(np_dtype(dtype))


def assert_close(actual, expected, dtype: str, what: str = "output"):
    """Row by row (rows = the last axis): max |actual - expected| <= TOLERANCE[dtype]
    * max |expected row| on the CPU (* max |expected| on the GPU); no NaN/inf. Per
    row, so one bad row is not hidden by the tensor's largest value; a row the
    oracle gives as exactly 0 must be exactly 0."""
    a, e = f32(actual), np.asarray(expected, np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert np.isfinite(a).all(), f"{what}: non-finite values"
    if a.size == 0:
        return
    rows = a.shape[-1]
    err = np.abs(a - e).reshape(-1, rows).max(-1)
    ref = np.abs(e).reshape(-1, rows).max(-1)
    if on_gpu():
        ref = np.full_like(ref, max(ref.max(), 1e-3))
    tol = TOLERANCE[dtype]
    bad = err > tol * ref
    if bad.any():
        worst = int(np.argmax(err - tol * ref))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} rows off; row {worst} (flat index) has "
            f"max abs err {err[worst]:.3g} > {tol} * {ref[worst]:.3g} ({dtype})")


def assert_same(got, want, what: str = "output"):
    """Bit-identical (same dtype, same values, NaN where NaN): the same kernel on the
    same rows (jit, vmap, scan, chunked) does the same arithmetic."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.itemsize in (2, 4):  # compare bits: -0.0 vs 0.0 and NaN payloads count
        view = np.uint16 if got.dtype.itemsize == 2 else np.uint32
        got, want = got.view(view), want.view(view)
    diff = got != want
    assert not diff.any(), f"{what}: {int(diff.sum())} of {diff.size} elements differ"


def assert_same_kernel(got, want, dtype: str, what: str = "output"):
    """For a call whose shapes differ from the one compared with (vmap folds the
    mapped axis into the batch, chunked prefill splits the queries): bit-identical
    on the CPU, where each row's arithmetic does not depend on the other rows;
    within the tolerance on the GPU, whose split-KV plan depends on the shapes."""
    if on_gpu():
        assert_close(got, want, dtype, what)
    else:
        assert_same(got, want, what)


def assert_ulp_close(actual, expected, dtype: str, what: str = "output"):
    """Two float32 computations of the same values, each rounded to `dtype`, differ
    by at most 1 ulp of `dtype` plus the float32 bound (CPU; assert_close on the
    GPU). For kernel vs jax_mea.reference in the same 16-bit dtype."""
    if on_gpu() or dtype == "float32":
        assert_close(actual, expected, dtype, what)
        return
    a, e = f32(actual), f32(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert np.isfinite(a).all(), f"{what}: non-finite values"
    if a.size == 0:
        return
    info = ml_dtypes.finfo(np_dtype(dtype))
    exponent = np.maximum(np.floor(np.log2(np.maximum(np.abs(e), float(info.tiny)))),
                          float(info.minexp))
    ulp = np.exp2(exponent - info.nmant)
    bound = ulp + CPU_TOLERANCE["float32"] * np.abs(e).max(-1, keepdims=True)
    bad = np.abs(a - e) > bound
    assert not bad.any(), (f"{what}: {int(bad.sum())} elements more than 1 ulp ({dtype}) "
                           f"apart, e.g. {a[bad][0]!r} vs {e[bad][0]!r}")


def assert_zero_rows(actual_rows, zero_rows, what: str = "output"):
    """actual_rows [..., D]; zero_rows bool [...]: those rows must be exactly 0."""
    a = f32(actual_rows)
    assert np.isfinite(a).all(), f"{what}: non-finite values"
    bad = zero_rows & np.any(a != 0, axis=-1)
    assert not bad.any(), f"{what}: {int(bad.sum())} fully masked rows are not exactly 0"


# jax_mea.reference jitted, attributes static: eager, it dispatches op by op,
# several times slower.
reference_onnx_attention = jax.jit(reference.onnx_attention, static_argnames=(
    "scale", "is_causal", "q_num_heads", "kv_num_heads", "softcap", "softmax_precision",
    "left_window_size", "right_window_size"))
reference_dot_product_attention = jax.jit(reference.dot_product_attention, static_argnames=(
    "scale", "is_causal", "local_window_size", "softcap"))


def to_jnp(tree):
    """numpy arrays -> jax arrays; Python scalars, tuples and None stay as they are."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) else x, tree)


def _dims(spec: str, sizes: dict) -> tuple:
    return tuple(1 if c == "1" else sizes[c] for c in spec)


# ----------------------------------------------------------------------------
# The float64 oracle (numpy; shares nothing with jax_mea or its reference)
# ----------------------------------------------------------------------------


def attention_f64(q, k, v, *, scale, softcap=0.0, bias=None, allowed=None) -> np.ndarray:
    """Softmax attention in float64, BNSH: q [B, Nq, Sq, H], k [B, Nkv, T, H],
    v [B, Nkv, T, Hv]; query head h reads kv head h // (Nq / Nkv). scores =
    scale * q.k, softcapped, + bias; keys where `allowed` (bool) is False are
    dropped; bias and allowed broadcast to [B, Nq, Sq, T]. A row with no key left
    gives 0. Returns [B, Nq, Sq, Hv] float64."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = np.einsum("bnqh,bnkh->bnqk", q, k) * scale
    if softcap > 0:
        s = softcap * np.tanh(s / softcap)
    if bias is not None:
        s = s + np.asarray(bias, np.float64)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    live = m > -np.inf
    p = np.exp(s - np.where(live, m, 0.0))
    p = p / np.where(live, p.sum(-1, keepdims=True), 1.0)
    return np.where(live, np.einsum("bnqk,bnkh->bnqh", p, v), 0.0)


# ----------------------------------------------------------------------------
# The ONNX oracle (onnx.reference, op Attention)
# ----------------------------------------------------------------------------

ONNX_INPUTS = ("Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen")
_ONNX_ATTRS = ("scale", "is_causal", "q_num_heads", "kv_num_heads", "softcap",
               "left_window_size", "right_window_size")


@functools.lru_cache(maxsize=None)
def _onnx_evaluator(input_types: tuple, attrs: tuple, opset: int) -> ReferenceEvaluator:
    present = dict(input_types)
    names = [n if n in present else "" for n in ONNX_INPUTS]
    while names[-1] == "":
        names.pop()
    outputs = ["Y", "present_key", "present_value"]
    node = helper.make_node("Attention", names, outputs, **dict(attrs))
    graph = helper.make_graph(
        [node], "attention",
        [helper.make_tensor_value_info(n, t, None) for n, t in input_types],
        [helper.make_tensor_value_info(o, present["Q"], None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model)


def onnx_reference(inputs: dict, attrs: dict, compute_dtype: str = "float32"):
    """Evaluates ONNX Attention with onnx.reference: (Y, present_key, present_value).

    Float inputs are cast to compute_dtype (float32 by default: the oracle for
    float16/bfloat16 runs in float32 on the already-rounded inputs).
    """
    feeds = {}
    for name in ONNX_INPUTS:
        x = inputs.get(name)
        if x is None:
            continue
        x = np.asarray(x)
        if name == "nonpad_kv_seqlen":
            x = x.astype(np.int64)
        elif x.dtype != np.bool_:
            x = x.astype(np_dtype(compute_dtype))
        feeds[name] = x
    mask = feeds.get("attn_mask")
    if attrs.get("is_causal") and mask is not None and mask.shape[-2] == 1:
        # onnx.reference builds the causal mask over the mask's own query axis
        # (base.shape[-2]), so a mask broadcast over Sq gets row 0's causal limit on
        # every row. Materialise that axis (same meaning) to get the spec's answer.
        q_len = feeds["Q"].shape[2 if feeds["Q"].ndim == 4 else 1]
        feeds["attn_mask"] = np.broadcast_to(mask, (*mask.shape[:-2], q_len, mask.shape[-1]))
    onnx_attrs = {}
    for name in _ONNX_ATTRS:
        value = attrs.get(name)
        if value is None or (name.endswith("window_size") and value < 0):
            continue
        onnx_attrs[name] = int(value) if isinstance(value, (bool, int)) else float(value)
    # The window attributes are opset 25 (same Attention otherwise).
    opset = 25 if any(k.endswith("window_size") for k in onnx_attrs) else 24
    input_types = tuple((n, helper.np_dtype_to_tensor_dtype(x.dtype)) for n, x in feeds.items())
    sess = _onnx_evaluator(input_types, tuple(sorted(onnx_attrs.items())), opset)
    return tuple(np.asarray(o) for o in sess.run(None, feeds))


# ----------------------------------------------------------------------------
# onnx_attention cases
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OnnxCase:
    """One onnx_attention call.

    mask: None or "kind:DIMS", kind bool|float, DIMS 2-4 letters (B batch,
    N query heads, Q query length, T total kv length, t a short last dim
    (total - 3, at least 1), 1 broadcast), e.g. "bool:B1Qt".
    """

    batch: int = 2
    q_heads: int = 4
    kv_heads: int = 2
    q_len: int = 5
    kv_len: int = 7
    past_len: int = 0
    head_size: int = 16
    v_head_size: int = 16
    rank: int = 4
    mask: str | None = None
    nonpad: tuple | None = None
    is_causal: bool = False
    softcap: float = 0.0
    scale: float | None = None
    window: tuple = (-1, -1)
    dtype: str = "float32"

    @property
    def total(self) -> int:
        return self.past_len + self.kv_len

    def replace(self, **kw) -> "OnnxCase":
        return dataclasses.replace(self, **kw)


def make_onnx_inputs(case: OnnxCase, rng) -> tuple[dict, dict]:
    """numpy inputs (name -> array or None) and keyword attributes for onnx_attention."""
    c, dt = case, case.dtype
    if c.rank == 4:
        q = randn(rng, (c.batch, c.q_heads, c.q_len, c.head_size), dt)
        k = randn(rng, (c.batch, c.kv_heads, c.kv_len, c.head_size), dt)
        v = randn(rng, (c.batch, c.kv_heads, c.kv_len, c.v_head_size), dt)
    else:
        q = randn(rng, (c.batch, c.q_len, c.q_heads * c.head_size), dt)
        k = randn(rng, (c.batch, c.kv_len, c.kv_heads * c.head_size), dt)
        v = randn(rng, (c.batch, c.kv_len, c.kv_heads * c.v_head_size), dt)
    inputs = dict(Q=q, K=k, V=v, attn_mask=None, past_key=None, past_value=None,
                  nonpad_kv_seqlen=None)
    if c.past_len:
        inputs["past_key"] = randn(rng, (c.batch, c.kv_heads, c.past_len, c.head_size), dt)
        inputs["past_value"] = randn(rng, (c.batch, c.kv_heads, c.past_len, c.v_head_size), dt)
    if c.mask is not None:
        kind, spec = c.mask.split(":")
        sizes = dict(B=c.batch, N=c.q_heads, Q=c.q_len, T=c.total, t=max(c.total - 3, 1))
        shape = _dims(spec, sizes)
        inputs["attn_mask"] = (random_bool_mask(rng, shape) if kind == "bool"
                               else random_float_mask(rng, shape, dt))
    if c.nonpad is not None:
        inputs["nonpad_kv_seqlen"] = np.asarray(c.nonpad, np.int32)
    attrs = dict(is_causal=c.is_causal, softcap=c.softcap, scale=c.scale,
                 left_window_size=c.window[0], right_window_size=c.window[1])
    if c.rank == 3:
        attrs.update(q_num_heads=c.q_heads, kv_num_heads=c.kv_heads)
    return inputs, attrs


def call_onnx_attention(fn: Callable, inputs: dict, attrs: dict):
    x = to_jnp({k: v for k, v in inputs.items() if v is not None})
    q, k, v = x.pop("Q"), x.pop("K"), x.pop("V")
    return fn(q, k, v, **x, **attrs)


def y_rows(y: np.ndarray, case: OnnxCase) -> np.ndarray:
    """Y as [..., Hv] rows, one per (batch, query, head)."""
    y = f32(y)
    return y.reshape(*y.shape[:-1], case.q_heads, case.v_head_size) if case.rank == 3 else y


def check_onnx_case(fn: Callable, case: OnnxCase, rng, edit: Callable | None = None):
    """Runs fn (an onnx_attention) on the case and compares with onnx.reference.

    edit(inputs), if given, changes the numpy inputs in place first. Checks: Y
    within the dtype's tolerance, present_key/value exact, the rows onnx gives
    as exactly 0 (fully masked) exactly 0, no NaN. Returns (Y, Y_oracle) as float32.
    """
    inputs, attrs = make_onnx_inputs(case, rng)
    if edit is not None:
        edit(inputs)
    y, present_key, present_value = call_onnx_attention(fn, inputs, attrs)
    ey, ek, ev = onnx_reference(inputs, attrs)
    want = np_dtype(case.dtype)
    for name, x in (("Y", y), ("present_key", present_key), ("present_value", present_value)):
        assert x.dtype == want, f"{name} dtype {x.dtype} != {want}"
    assert present_key.shape == (case.batch, case.kv_heads, case.total, case.head_size)
    assert present_value.shape == (case.batch, case.kv_heads, case.total, case.v_head_size)
    np.testing.assert_array_equal(f32(present_key), ek, err_msg="present_key")
    np.testing.assert_array_equal(f32(present_value), ev, err_msg="present_value")
    assert_close(y_rows(y, case), y_rows(ey, case), case.dtype, "Y")
    oracle_rows = y_rows(ey, case)
    assert_zero_rows(y_rows(y, case), np.all(oracle_rows == 0, axis=-1), "Y")
    return f32(y), ey


# ----------------------------------------------------------------------------
# dot_product_attention cases
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DpaCase:
    """One dot_product_attention call. bias / mask: None or DIMS over
    B, N, T (query), S (key), 1 (broadcast), e.g. "B1TS"."""

    batch: int = 2
    q_len: int = 6
    kv_len: int = 8
    q_heads: int = 4
    kv_heads: int = 2
    head_size: int = 16
    v_head_size: int = 16
    bias: str | None = None
    mask: str | None = None
    is_causal: bool = False
    q_lengths: tuple | None = None
    kv_lengths: tuple | None = None
    window: int | tuple | None = None
    softcap: float = 0.0
    scale: float | None = None
    dtype: str = "float32"

    def replace(self, **kw) -> "DpaCase":
        return dataclasses.replace(self, **kw)


def make_dpa_inputs(case: DpaCase, rng) -> tuple[tuple, dict]:
    """numpy (query, key, value) and the keyword arguments of dot_product_attention
    (softcap only when nonzero, so the kwargs also suit jax.nn.dot_product_attention)."""
    c, dt = case, case.dtype
    query = randn(rng, (c.batch, c.q_len, c.q_heads, c.head_size), dt)
    key = randn(rng, (c.batch, c.kv_len, c.kv_heads, c.head_size), dt)
    value = randn(rng, (c.batch, c.kv_len, c.kv_heads, c.v_head_size), dt)
    sizes = dict(B=c.batch, N=c.q_heads, T=c.q_len, S=c.kv_len)
    kwargs = dict(scale=c.scale, is_causal=c.is_causal, local_window_size=c.window)
    if c.bias is not None:
        kwargs["bias"] = randn(rng, _dims(c.bias, sizes), dt)
    if c.mask is not None:
        kwargs["mask"] = random_bool_mask(rng, _dims(c.mask, sizes))
    if c.q_lengths is not None:
        kwargs["query_seq_lengths"] = np.asarray(c.q_lengths, np.int32)
    if c.kv_lengths is not None:
        kwargs["key_value_seq_lengths"] = np.asarray(c.kv_lengths, np.int32)
    if c.softcap:
        kwargs["softcap"] = c.softcap
    return (query, key, value), kwargs


def dpa_allowed(case: DpaCase, kwargs: dict) -> np.ndarray:
    """bool [B, N, T, S]: which keys each query row may attend (causal top-left,
    window sides read literally as jax.nn reads them, negative too; lengths, the bool
    mask; not the bias)."""
    c = case
    i = np.arange(c.q_len)[:, None]
    j = np.arange(c.kv_len)[None, :]
    ok = np.ones((c.batch, c.q_heads, c.q_len, c.kv_len), bool)
    if c.is_causal:
        ok &= j <= i
    if c.window is not None:
        left, right = (c.window, c.window) if isinstance(c.window, int) else c.window
        ok &= (j >= i - left) & (j <= i + right)
    if c.q_lengths is not None:
        ok &= (i < np.asarray(c.q_lengths)[:, None, None, None])
    if c.kv_lengths is not None:
        ok &= (j < np.asarray(c.kv_lengths)[:, None, None, None])
    if "mask" in kwargs:
        m = kwargs["mask"]
        ok &= m.reshape((1,) * (4 - m.ndim) + m.shape)
    return ok


def dpa_visible_rows(case: DpaCase, kwargs: dict) -> np.ndarray:
    """bool [B, T, N]: the query row has at least one key it may attend."""
    return dpa_allowed(case, kwargs).any(-1).transpose(0, 2, 1)


def dpa_f64_oracle(case: DpaCase, args: tuple, kwargs: dict) -> np.ndarray:
    """dot_product_attention's semantics in float64 (BTNH in and out)."""
    query, key, value = (np.swapaxes(np.asarray(x, np.float64), 1, 2) for x in args)
    scale = case.scale if case.scale is not None else case.head_size ** -0.5
    bias = kwargs.get("bias")
    if bias is not None:
        bias = np.asarray(bias, np.float64)
        bias = bias.reshape((1,) * (4 - bias.ndim) + bias.shape)
    out = attention_f64(query, key, value, scale=scale, softcap=case.softcap, bias=bias,
                        allowed=dpa_allowed(case, kwargs))
    return np.swapaxes(out, 1, 2)


def jax_dpa_oracle(args: tuple, kwargs: dict) -> np.ndarray:
    """jax.nn.dot_product_attention (xla) in float32 at full matmul precision."""
    args32 = tuple(f32(a) for a in args)
    kw = dict(kwargs)
    if "bias" in kw:
        kw["bias"] = f32(kw["bias"])
    with jax.default_matmul_precision("highest"):
        out = _jax_dpa(*to_jnp(args32), **to_jnp(kw))
    return f32(out)


_jax_dpa = jax.jit(functools.partial(jax.nn.dot_product_attention, implementation="xla"),
                   static_argnames=("scale", "is_causal", "local_window_size"))


def _jax_understands(case: DpaCase) -> bool:
    """jax.nn has no softcap and no Hv != H."""
    return case.softcap == 0 and case.head_size == case.v_head_size


def check_dpa_case(fn: Callable, case: DpaCase, rng, oracle: Callable | None = None,
                   edit: Callable | None = None):
    """Runs fn (a dot_product_attention) and compares with the oracle (default:
    jax.nn.dot_product_attention, or the float64 oracle where jax.nn has no
    equivalent) on rows that have a visible key; rows with none must be exactly 0
    in fn's output. edit(kwargs), if given, changes the numpy keyword inputs in
    place first. Returns the bool [B, T, N] rows that have a visible key."""
    args, kwargs = make_dpa_inputs(case, rng)
    if edit is not None:
        edit(kwargs)
    out = fn(*to_jnp(args), **to_jnp(kwargs))
    assert out.dtype == np_dtype(case.dtype)
    assert out.shape == (case.batch, case.q_len, case.q_heads, case.v_head_size)
    if oracle is not None:
        expected = f32(oracle(*to_jnp(args), **to_jnp(kwargs)))
    elif _jax_understands(case):
        expected = jax_dpa_oracle(args, kwargs)
    else:
        expected = dpa_f64_oracle(case, args, kwargs)
    visible = dpa_visible_rows(case, kwargs)
    assert_close(f32(out)[visible], expected[visible], case.dtype)
    assert_zero_rows(out, ~visible)
    return visible

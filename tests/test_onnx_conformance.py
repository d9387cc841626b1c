"""The ONNX project's own Attention conformance cases (opset 23-25), run through
jax_mea.onnx_attention and compared the way ONNX's backend test runner compares
them (its assert_similar_outputs: shapes, dtypes, rtol/atol of the case).

The cases are the generators behind onnx.backend.test.case.node.collect_testcases
("Attention") in the installed onnx package; their expected outputs come from
onnx.reference. The `_expanded` variants are the same cases run through the
operator's function body, not new inputs, so they are left out."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from onnx import helper
from onnx.backend.test.runner import Runner
from onnx.reference import ReferenceEvaluator

import jax_mea
from conftest import OnnxCase, call_onnx_attention, make_onnx_inputs

# onnx 1.23.2 ships 93 Attention cases; a newer onnx may add more, never fewer.
MIN_CASES = 93

_INPUTS = ("Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen")
_OUTPUTS = ("Y", "present_key", "present_value", "qk_matmul_output")


@functools.lru_cache(maxsize=None)
def _cases() -> dict:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # other operators' generators warn on import
        warnings.simplefilter("ignore")
        cases = collect_testcases("Attention")
    return {c.name: c for c in cases if not c.name.endswith("_expanded")}


def _call(case):
    """(outputs, expected): onnx_attention's answers for the outputs the case's
    node asks for, and the case's expected arrays, in the node's output order."""
    node, = (n for n in case.model.graph.node if n.op_type == "Attention")
    graph_inputs = [i.name for i in case.model.graph.input]
    feeds = dict(zip(graph_inputs, case.data_sets[0][0]))
    args = {role: feeds[name] for role, name in zip(_INPUTS, node.input) if name}
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    wanted = [role for role, name in zip(_OUTPUTS, node.output) if name]
    if "qk_matmul_output" in wanted:
        attrs.setdefault("qk_matmul_output_mode", 0)
    # One jitted program per case: compiling it costs less than running op by op.
    results = jax.jit(functools.partial(jax_mea.onnx_attention, **attrs))(
        args.pop("Q"), args.pop("K"), args.pop("V"), **args)
    outputs = [np.asarray(results[_OUTPUTS.index(role)]) for role in wanted]
    return outputs, list(case.data_sets[0][1])


def test_all_cases_collected():
    assert len(_cases()) >= MIN_CASES, sorted(_cases())


@pytest.mark.parametrize("name", sorted(_cases()))
def test_onnx_attention_case(name):
    case = _cases()[name]
    outputs, expected = _call(case)
    Runner.assert_similar_outputs(expected, outputs, rtol=case.rtol, atol=case.atol,
                                  model_dir=name)


# --- Beyond the shipped cases ------------------------------------------------------
# qk_matmul_output with what the shipped cases do not combine it with: an external
# cache (nonpad_kv_seqlen), a window, GQA, a short rank-1 float mask, 3D inputs, a
# vmap. The oracle is onnx.reference, opset 25.


def _onnx_reference_4(inputs: dict, attrs: dict):
    feeds = {}
    for name in _INPUTS:
        x = inputs.get(name)
        if x is not None:
            feeds[name] = np.asarray(x).astype(np.int64) if name == "nonpad_kv_seqlen" else x
    names = [n if n in feeds else "" for n in _INPUTS]
    while not names[-1]:
        names.pop()
    onnx_attrs = {k: v for k, v in attrs.items() if v is not None and not (
        k.endswith("window_size") and v < 0)}
    onnx_attrs["is_causal"] = int(onnx_attrs.get("is_causal", 0))
    node = helper.make_node("Attention", names, list(_OUTPUTS), **onnx_attrs)
    tensor = helper.np_dtype_to_tensor_dtype
    graph = helper.make_graph(
        [node], "attention",
        [helper.make_tensor_value_info(n, tensor(x.dtype), None) for n, x in feeds.items()],
        [helper.make_tensor_value_info(o, tensor(feeds["Q"].dtype), None) for o in _OUTPUTS])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    return ReferenceEvaluator(model).run(None, feeds)


QK_CASES = {
    "gqa-nonpad-causal-window-rank1-float-mask": OnnxCase(
        q_heads=4, kv_heads=2, q_len=3, kv_len=9, nonpad=(5, 9), is_causal=True,
        window=(2, -1), mask="float:t"),
    "3d-past-bool-mask": OnnxCase(rank=3, q_heads=2, kv_heads=1, past_len=3, mask="bool:QT"),
}


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("name", list(QK_CASES))
def test_qk_matmul_output_beyond_shipped_cases(rng, name, mode):
    # Mode 0 with a softcap: onnx.reference returns the softcapped scores, its spec text
    # the raw ones (jax-mea follows the spec: test_qk_matmul_output_mode0_is_raw).
    case = QK_CASES[name].replace(softcap=0.0 if mode == 0 else 2.0)
    inputs, attrs = make_onnx_inputs(case, rng)
    attrs["qk_matmul_output_mode"] = mode
    fn = jax.jit(functools.partial(jax_mea.onnx_attention, **attrs))
    outputs = call_onnx_attention(fn, inputs, {})
    expected = _onnx_reference_4(inputs, attrs)
    Runner.assert_similar_outputs(expected, [np.asarray(o) for o in outputs], rtol=1e-4,
                                  atol=1e-5)


def test_qk_matmul_output_mode0_is_raw(rng):
    """Mode 0 is the scaled QK before the softcap (ONNX's spec text), under vmap too."""
    case = OnnxCase(q_heads=4, kv_heads=2, softcap=1.0, mask="bool:QT", scale=0.5)
    inputs, attrs = make_onnx_inputs(case, rng)
    attrs["qk_matmul_output_mode"] = 0
    fn = jax.jit(functools.partial(jax_mea.onnx_attention, **attrs))
    *_, qk = call_onnx_attention(fn, inputs, {})
    k = np.repeat(inputs["K"], 2, axis=1)
    raw = np.einsum("bnqh,bnkh->bnqk", inputs["Q"], k) * 0.5
    np.testing.assert_allclose(np.asarray(qk), raw, rtol=1e-5, atol=1e-5)
    assert np.abs(raw).max() > 1.0, "scores within the softcap: the test shows nothing"

    def qk(q):
        return call_onnx_attention(fn, dict(inputs, Q=q), {})[3]

    vmapped = jax.jit(jax.vmap(qk))(jnp.stack([inputs["Q"], 2 * inputs["Q"]]))
    np.testing.assert_allclose(np.asarray(vmapped), np.stack([raw, 2 * raw]), rtol=1e-5,
                               atol=1e-5)

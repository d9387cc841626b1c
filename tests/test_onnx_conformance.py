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
import numpy as np
import pytest
from onnx import helper
from onnx.backend.test.runner import Runner

import jax_mea

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

"""jax_mea.onnx_attention against the ONNX oracle (onnx.reference, op Attention)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jax_mea
from jax_mea import reference
from conftest import (DTYPES, OnnxCase, assert_close, assert_same, assert_ulp_close,
                      assert_zero_rows, call_onnx_attention, check_onnx_case, f32,
                      make_onnx_inputs, onnx_reference, reference_onnx_attention, y_rows)

HEADS = pytest.mark.parametrize("q_heads,kv_heads", [(4, 4), (4, 2), (3, 1)],
                                ids=["mha", "gqa", "mqa"])
DTYPE = pytest.mark.parametrize("dtype", DTYPES)


def check(case, rng, edit=None):
    return check_onnx_case(jax_mea.onnx_attention, case, rng, edit)


def check_against_reference(case, rng):
    """jax_mea.onnx_attention vs jax_mea.reference.onnx_attention on the same inputs:
    both compute in float32 and round to the dtype, so Y agrees to 1 ulp (plus the
    float32 bound), present exactly."""
    inputs, attrs = make_onnx_inputs(case, rng)
    y, k, v = call_onnx_attention(jax_mea.onnx_attention, inputs, attrs)
    ey, ek, ev = call_onnx_attention(reference_onnx_attention, inputs, attrs)
    assert y.dtype == ey.dtype and y.shape == ey.shape
    assert_same(k, ek, "present_key")
    assert_same(v, ev, "present_value")
    assert_ulp_close(y_rows(y, case), y_rows(ey, case), case.dtype, "Y")
    assert_zero_rows(y_rows(y, case), np.all(y_rows(ey, case) == 0, axis=-1), "Y")


@pytest.mark.parametrize("q_len,past_len", [(1, 0), (9, 0), (1, 6), (9, 6)],
                         ids=["sq1", "sq9", "sq1-past", "sq9-past"])
@pytest.mark.parametrize("head_size,v_head_size", [(8, 8), (48, 24), (64, 32), (24, 80)])
@HEADS
# Layouts are dtype-independent: 3D in float32 only.
@pytest.mark.parametrize("rank,dtype", [(4, dt) for dt in DTYPES] + [(3, "float32")],
                         ids=lambda x: {3: "3d", 4: "4d"}.get(x, x))
def test_shapes(rng, rank, q_heads, kv_heads, head_size, v_head_size, q_len, past_len, dtype):
    check(OnnxCase(rank=rank, q_heads=q_heads, kv_heads=kv_heads, head_size=head_size,
                   v_head_size=v_head_size, q_len=q_len, kv_len=11, past_len=past_len,
                   dtype=dtype), rng)


MASKS = [
    # rank 2 [Sq|1, T]
    "bool:QT", "float:Qt", "bool:1t",
    # rank 3 [Nq|1, Sq|1, T]
    "bool:NQT", "float:1Qt", "float:N1T",
    # rank 4 [B|1, Nq|1, Sq|1, T]
    "bool:BNQT", "float:BNQt", "bool:B1Qt", "float:11QT", "bool:1NQT", "float:B11T",
]


@DTYPE
@pytest.mark.parametrize("past_len", [0, 4])
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("mask", MASKS)
def test_masks(rng, mask, is_causal, past_len, dtype):
    check(OnnxCase(mask=mask, is_causal=is_causal, past_len=past_len, q_len=6, kv_len=7,
                   head_size=16, v_head_size=24, dtype=dtype), rng)


@pytest.mark.parametrize("mask", ["bool:Qt", "float:B1QT"])
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
def test_masks_3d(rng, mask, is_causal):
    check(OnnxCase(rank=3, mask=mask, is_causal=is_causal, past_len=3, q_heads=6,
                   kv_heads=2, head_size=8, v_head_size=24), rng)


@DTYPE
@pytest.mark.parametrize("mask", [None, "bool:B1Qt", "float:1NQT"])
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("q_len", [1, 4])
@pytest.mark.parametrize("nonpad", [(7, 7), (0, 0), (0, 7), (3, 5)],
                         ids=["full", "zero", "zero-full", "partial"])
def test_nonpad_kv_seqlen(rng, nonpad, q_len, is_causal, mask, dtype):
    check(OnnxCase(nonpad=nonpad, q_len=q_len, kv_len=7, is_causal=is_causal, mask=mask,
                   dtype=dtype), rng)


@DTYPE
@pytest.mark.parametrize("mask", [None, "float:BNQT", "bool:1NQT"])
@pytest.mark.parametrize("is_causal,past_len", [(False, 0), (True, 0), (True, 5)],
                         ids=["full", "causal", "causal-past"])
@pytest.mark.parametrize("softcap,scale", [(1.5, None), (0.0, 0.25), (3.0, 0.6)],
                         ids=["softcap", "scale", "softcap-scale"])
def test_softcap_and_scale(rng, softcap, scale, is_causal, past_len, mask, dtype):
    check(OnnxCase(softcap=softcap, scale=scale, is_causal=is_causal, past_len=past_len,
                   mask=mask, head_size=32, v_head_size=32, dtype=dtype), rng)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("cache", ["none", "past", "nonpad"])
@pytest.mark.parametrize("is_causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("window", [(2, -1), (-1, 1), (0, 0), (3, 2), (1, 1)],
                         ids=lambda w: f"win{w[0]}_{w[1]}")
def test_window(rng, window, is_causal, cache, dtype):
    """left/right_window_size (ONNX opset 25's attributes; jax-mea accepts them on 24)."""
    extra = dict(past_len=4) if cache == "past" else (
        dict(nonpad=(5, 9)) if cache == "nonpad" else {})
    check(OnnxCase(window=window, is_causal=is_causal, q_len=5, kv_len=9, dtype=dtype,
                   **extra), rng)


# --- Fully masked rows: exactly 0, never NaN --------------------------------------


def _false_rows(inputs):
    inputs["attn_mask"][0, :, 1] = False
    inputs["attn_mask"][1, 2, :] = False


def _neg_inf_rows(inputs):
    inputs["attn_mask"][:, 0, 2] = -np.inf
    inputs["attn_mask"][1, 1, :] = -np.inf


FULLY_MASKED = {
    "bool-rows": (OnnxCase(mask="bool:BNQT", softcap=2.0), _false_rows),
    "float-rows": (OnnxCase(mask="float:BNQT"), _neg_inf_rows),
    "bool-rows-causal-past": (OnnxCase(mask="bool:BNQT", is_causal=True, past_len=3), _false_rows),
    "nonpad-zero": (OnnxCase(nonpad=(0, 7)), None),
    "nonpad-zero-sq1": (OnnxCase(nonpad=(0, 4), q_len=1), None),
    "causal-negative-offset": (OnnxCase(nonpad=(2, 7), q_len=5, is_causal=True), None),
    "window-beyond-keys": (OnnxCase(q_len=8, kv_len=3, window=(1, 1)), None),
    "short-mask-window": (OnnxCase(mask="bool:1NQt", kv_len=9, window=(0, 0), is_causal=True),
                          None),
}


@DTYPE
@pytest.mark.parametrize("name", list(FULLY_MASKED))
def test_fully_masked_rows(rng, name, dtype):
    case, edit = FULLY_MASKED[name]
    _, expected = check(case.replace(dtype=dtype), rng, edit)
    assert np.all(y_rows(expected, case) == 0, axis=-1).any(), "no fully masked row built"


# --- Property test against the pure-JAX reference ----------------------------------

HEAD_SIZES = [8, 16, 24, 32, 48, 64, 80]


@st.composite
def onnx_cases(draw):
    batch = draw(st.integers(1, 2))
    kv_heads = draw(st.integers(1, 3))
    q_len, kv_len = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    cache = draw(st.sampled_from(["none", "past", "nonpad"]))
    past_len = draw(st.integers(1, 8)) if cache == "past" else 0
    nonpad = (tuple(draw(st.integers(0, kv_len)) for _ in range(batch))
              if cache == "nonpad" else None)
    mask = None
    kind = draw(st.sampled_from([None, "bool", "float"]))
    if kind is not None:
        dims = [draw(st.sampled_from(choice)) for choice in ("B1", "N1", "Q1")]
        rank = draw(st.integers(2, 4))
        mask = f"{kind}:{''.join(dims[3 - rank + 1:])}{draw(st.sampled_from('Tt'))}"
    return OnnxCase(
        batch=batch, kv_heads=kv_heads, q_heads=kv_heads * draw(st.integers(1, 3)),
        q_len=q_len, kv_len=kv_len, past_len=past_len, nonpad=nonpad, mask=mask,
        head_size=draw(st.sampled_from(HEAD_SIZES)),
        v_head_size=draw(st.sampled_from(HEAD_SIZES)),
        rank=draw(st.sampled_from([3, 4])), is_causal=draw(st.booleans()),
        softcap=draw(st.sampled_from([0.0, 0.0, 2.5])),
        scale=draw(st.sampled_from([None, None, 0.2])),
        window=(draw(st.integers(-1, 4)), draw(st.integers(-1, 4))),
        dtype=draw(st.sampled_from(DTYPES)))


# derandomize: the same examples every run (a failure reproduces; the suite's time
# is fixed). About 15 s on the 2-core CPU machine.
@settings(max_examples=30, deadline=None, derandomize=True)
@given(case=onnx_cases(), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(case, seed):
    check_against_reference(case, np.random.default_rng(seed))


# --- Larger shapes: several tiles of rows and keys on every kernel ----------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", [
    OnnxCase(batch=2, q_heads=8, kv_heads=2, q_len=300, kv_len=300, head_size=128,
             v_head_size=128, is_causal=True),
    OnnxCase(batch=1, q_heads=8, kv_heads=8, q_len=1, kv_len=1, past_len=4099, head_size=64,
             v_head_size=128, is_causal=True, mask="bool:B1Qt"),
    OnnxCase(batch=2, q_heads=16, kv_heads=4, q_len=77, kv_len=2048, head_size=96,
             v_head_size=48, nonpad=(1500, 2048), is_causal=True, mask="float:1NQt"),
    OnnxCase(batch=2, q_heads=4, kv_heads=1, q_len=129, kv_len=129, past_len=512,
             head_size=256, v_head_size=256, window=(200, 0), softcap=30.0),
], ids=["prefill-causal", "decode-long-past", "nonpad-float-mask", "window-softcap"])
def test_large_against_reference(rng, case, dtype):
    check_against_reference(case.replace(dtype=dtype), rng)


def test_traced_scale(rng):
    """A traced scale is folded into Q (the kernels take a static one)."""
    case = OnnxCase(mask="bool:BNQT", is_causal=True, scale=0.7)
    inputs, attrs = make_onnx_inputs(case, rng)
    scale = attrs.pop("scale")
    fn = jax.jit(lambda x, s: call_onnx_attention(jax_mea.onnx_attention, x, dict(attrs,
                                                                                 scale=s)))
    y, _, _ = fn({k: v for k, v in inputs.items() if v is not None}, jnp.float32(scale))
    ey, _, _ = onnx_reference(inputs, dict(attrs, scale=scale))
    assert_close(y, ey, "float32", "Y")

"""Trace-time validation shared by the public functions.

Every error names the argument, the shape it had and what was expected, so a
user sees the mistake at trace time instead of a kernel failure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_mea.primitives import UNBOUNDED_WINDOW

FLOAT_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def shape_of(x) -> tuple[int, ...]:
    return tuple(np.shape(x))


def check_rank(name: str, x, ranks, layout_hint: str = "") -> None:
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if np.ndim(x) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        hint = f" {layout_hint}" if layout_hint else ""
        raise ValueError(f"{name} must be rank {want}{hint}, got shape {shape_of(x)}")


def check_float_dtype(name: str, x) -> jnp.dtype:
    dtype = jnp.result_type(x)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {dtype}")
    return dtype


def check_same_dtype(names_and_arrays, dtype) -> None:
    for name, x in names_and_arrays:
        if x is not None and jnp.result_type(x) != dtype:
            raise TypeError(f"{name} has dtype {jnp.result_type(x)}, expected {dtype} "
                            "(the query's dtype)")


def check_int_vector(name: str, x, batch: int) -> None:
    if shape_of(x) != (batch,):
        raise ValueError(f"{name} must have shape ({batch},) (one entry per batch), "
                         f"got {shape_of(x)}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
        raise TypeError(f"{name} must be an integer array, got {jnp.result_type(x)}")


def check_equal(name: str, got, expected, what: str) -> None:
    if got != expected:
        raise ValueError(f"{name}: {what} is {got}, expected {expected}")


def check_gqa(num_heads: int, num_kv_heads: int, kv_heads: str = "key/value heads") -> None:
    """GQA: query head h uses kv head h // (num_heads // num_kv_heads). Checked here
    only (the FFI layer guards the native boundary, kernels assume it)."""
    if num_kv_heads <= 0 or num_heads % num_kv_heads:
        raise ValueError(f"the number of query heads ({num_heads}) must be a positive "
                         f"multiple of the number of {kv_heads} ({num_kv_heads})")


def is_traced(x) -> bool:
    """True for a value only known when the program runs (a jax tracer)."""
    return isinstance(x, jax.core.Tracer)


def _float32_value(name: str, value, what: str = "") -> float:
    """float(value), checked to be finite in float32: the kernels' type for it."""
    if np.ndim(value) != 0 and np.size(value) != 1:
        raise ValueError(f"{name} must be a scalar, got shape {shape_of(value)}")
    value = float(np.reshape(np.asarray(value), ()))
    if np.isnan(value) or np.isinf(value):
        raise ValueError(f"{name} must be finite{what}, got {value}")
    if abs(value) > float(np.finfo(np.float32).max):
        raise ValueError(f"{name} = {value:g} overflows float32 (the kernels' type for it; "
                         f"largest {float(np.finfo(np.float32).max):.3g})")
    return value


def check_scale(scale, *, positive: bool = True) -> None:
    """A static scale must be finite in float32 (and positive, unless `positive` is
    False: jax.nn accepts any sign). A traced scale is checked by nothing but its
    shape: it is folded into the query (see `split_scale`)."""
    if scale is None:
        return
    if is_traced(scale):
        if shape_of(scale) not in ((), (1,)):
            raise ValueError(f"scale must be a scalar, got shape {shape_of(scale)}")
        return
    value = _float32_value("scale", scale)
    if positive and not value > 0.0:
        raise ValueError(f"scale must be positive, got {scale}")
    if positive and np.float32(value) == 0.0:
        raise ValueError(f"scale = {value:g} underflows to 0 in float32 (the kernels' type "
                         "for it)")


def check_softcap(softcap) -> None:
    value = _float32_value("softcap", softcap, " (0 disables it)")
    if not value >= 0.0:
        raise ValueError(f"softcap must be >= 0 (0 disables it), got {softcap}")


def split_scale(scale, head_size: int):
    """(kernel_scale, query_factor): the kernels take a positive static scale, and
    any other scale is folded into the query: a traced one whole (kernel scale 1),
    a negative one as an exact sign flip, zero as a zero query. query_factor is
    None when there is nothing to fold. `scale` has passed check_scale."""
    if scale is None:
        return 1.0 / float(np.sqrt(head_size)), None
    if is_traced(scale):
        return 1.0, jnp.reshape(scale, ())
    value = float(np.reshape(np.asarray(scale), ()))
    if np.float32(value) == 0.0:  # zero, or as good as zero for the kernels' float32
        return 1.0, 0.0
    if value < 0.0:
        return -value, -1.0
    return value, None


def fold_into_query(query, factor):
    """query * factor (see split_scale), multiplied in float32 and rounded once to
    the query's dtype: the factor itself is never rounded to bfloat16/float16."""
    if factor is None:
        return query
    scaled = query.astype(jnp.float32) * jnp.asarray(factor, jnp.float32)
    return scaled.astype(query.dtype)


def check_positive(name: str, value: int, what: str) -> None:
    """Head counts and head sizes: the kernels divide by them."""
    if value <= 0:
        raise ValueError(f"{name}: {what} is {value}, must be positive")


def mask_to_rank4(name: str, mask, batch: int, num_heads: int, q_len: int, kv_len: int, *,
                  allow_short: bool, ranks=(1, 2, 3, 4)):
    """Views a mask of rank in `ranks` as [B|1, N|1, Sq|1, T'] (a reshape: leading 1
    axes; rank 1 is [T'], as ONNX opset 25 and jax.nn broadcast it).

    With allow_short (ONNX), the last axis may be shorter than kv_len (the rest
    counts as masked); otherwise it must be kv_len or 1 (broadcast, materialised).
    """
    check_rank(name, mask, ranks)
    shape = shape_of(mask)
    full = (1,) * (4 - len(shape)) + shape
    expected = f"[{batch}|1, {num_heads}|1, {q_len}|1, " + (
        f"<= {kv_len}]" if allow_short else f"{kv_len}|1]")
    ok = all(d in (1, want) for d, want in zip(full[:3], (batch, num_heads, q_len)))
    last = full[3]
    ok = ok and (1 <= last <= kv_len if allow_short else last in (1, kv_len))
    if not ok:
        raise ValueError(f"{name} of shape {shape} does not broadcast to {expected} "
                         f"(batch, query heads, query length, key length)")
    mask = jnp.reshape(mask, full)
    if not allow_short and last != kv_len:
        mask = jnp.broadcast_to(mask, full[:3] + (kv_len,))
    return mask


def _window_size(name: str, w) -> int:
    """One side of a jax.nn-style window: an int (negative too, literally), or a float
    read as jax.nn reads it (key j is kept iff j >= i - w, so w counts as floor(w));
    +inf is unbounded (UNBOUNDED_WINDOW)."""
    if isinstance(w, (bool, int, np.integer)):
        return int(np.clip(int(w), -UNBOUNDED_WINDOW, UNBOUNDED_WINDOW))
    try:
        value = float(w)
    except (TypeError, ValueError):
        raise ValueError(f"{name} sizes must be numbers, got {w!r}") from None
    if value == np.inf:
        return UNBOUNDED_WINDOW
    if not np.isfinite(value):
        raise ValueError(f"{name} sizes must be finite or +inf (unbounded), got {w!r}")
    return int(np.clip(np.floor(value), -UNBOUNDED_WINDOW, UNBOUNDED_WINDOW))


def window_pair(name: str, window) -> tuple[int, int]:
    """(left, right) from None (both UNBOUNDED_WINDOW), a size w (= (w, w)) or a pair,
    read literally as jax.nn reads local_window_size: key j is visible to row i iff
    i - left <= j <= i + right (right = -1 excludes the diagonal); floats as floor(w),
    +inf unbounded."""
    if window is None:
        return UNBOUNDED_WINDOW, UNBOUNDED_WINDOW
    if np.ndim(window) == 0:
        left = right = _window_size(name, window)
    else:
        if np.shape(window) != (2,):
            raise ValueError(f"{name} must be a number or a pair (left, right), "
                             f"got {window!r}")
        left, right = (_window_size(name, w) for w in window)
    return left, right


def onnx_window_size(name: str, value) -> int:
    """An ONNX window attribute: an integer >= -1 (-1: unbounded); None is -1."""
    if value is None:
        return -1
    if isinstance(value, (bool, int, np.integer)):
        size = int(value)
    else:
        try:
            ok = float(value).is_integer()
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name} must be an integer (an ONNX int attribute), "
                             f"got {value!r}")
        size = int(value)
    if size < -1:
        raise ValueError(f"{name} must be >= -1 (-1: unbounded), got {value}")
    return size


def decode_window(name: str, window) -> int:
    """The left window of causal decode from None, a size w or a pair (w, right):
    right may only be 0, None or +inf, which mean what causality already does (a
    query sees no later key); a wider right side would contradict it. The left
    size is >= 0; None (or +inf) is unbounded (UNBOUNDED_WINDOW)."""
    left = window
    if window is not None and np.ndim(window) != 0:
        try:
            left, right = window
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an int or a pair (left, right), "
                             f"got {window!r}") from None
        if right not in (0, None, float("inf")):  # -1, read literally, drops the diagonal
            raise ValueError(f"{name}: decode_attention is causal, so the right side must "
                             f"be 0, None or +inf, got {window!r}")
    left = window_pair(name, left)[0]
    if left < 0:
        raise ValueError(f"{name} must be >= 0 (None: unbounded), got {window!r}")
    return left

"""Trace-time validation shared by the public functions.

Every error names the argument, the shape it had and what was expected, so a
user sees the mistake at trace time instead of a kernel failure.
"""

from __future__ import annotations

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


def check_scale(scale) -> None:
    if scale is not None and not float(scale) > 0.0:
        raise ValueError(f"scale must be positive, got {scale}")


def check_softcap(softcap) -> None:
    if not float(softcap) >= 0.0:
        raise ValueError(f"softcap must be >= 0 (0 disables it), got {softcap}")


def default_scale(scale, head_size: int) -> float:
    return float(scale) if scale is not None else 1.0 / float(np.sqrt(head_size))


def mask_to_rank4(name: str, mask, batch: int, num_heads: int, q_len: int, kv_len: int, *,
                  allow_short: bool):
    """Views a rank 2-4 mask as [B|1, N|1, Sq|1, T'] (a reshape: leading 1 axes).

    With allow_short (ONNX), the last axis may be shorter than kv_len (the rest
    counts as masked); otherwise it must be kv_len or 1 (broadcast, materialised).
    """
    check_rank(name, mask, (2, 3, 4))
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


def window_pair(name: str, window) -> tuple[int, int]:
    """(left, right) from None (both UNBOUNDED_WINDOW), an int w (= (w, w)) or a pair, read
    literally as jax.nn reads local_window_size: key j is visible to row i iff
    i - left <= j <= i + right (right = -1 excludes the diagonal)."""
    if window is None:
        return UNBOUNDED_WINDOW, UNBOUNDED_WINDOW
    if isinstance(window, (int, np.integer)):
        left = right = int(window)
    else:
        try:
            left, right = (int(w) for w in window)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an int or a pair (left, right), got {window!r}")
    return left, right

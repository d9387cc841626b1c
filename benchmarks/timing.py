"""Shared timing utilities for the jax-mea benchmarks.

Import this module before jax: it keeps jax from preallocating most of the GPU, so
that torch can run in the same process.

  time_jax      median seconds per call of a jitted callable (warm-up, repeats of N
                calls, block_until_ready; rotates among input sets, optionally threads a
                donated state through the calls)
  time_torch    median seconds of a torch callable (triton.testing.do_bench, which also
                flushes L2 before every call)
  ceilings      measured copy bandwidth and bf16 matmul rate, in this process
  print_table, write_csv, environment
"""
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import csv
import datetime
import json
import math
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

L2_BYTES = 50e6   # H100 L2 is 50 MB; larger than any CPU cache, so safe there too


def n_input_sets(bytes_per_set, l2_bytes=L2_BYTES, max_sets=64):
    """How many distinct input sets to rotate among so that a call does not find its
    inputs in L2, left there by an earlier call: enough sets to cover twice L2."""
    if bytes_per_set >= l2_bytes:
        return 1
    return int(min(max_sets, math.ceil(2 * l2_bytes / max(bytes_per_set, 1))))


def time_jax(fn, input_sets, *, carries=None, calls=20, repeats=5, budget_s=2.0):
    """Median seconds per call of `fn`, a jitted callable.

    input_sets: list of argument tuples; call i uses input_sets[i % len(input_sets)].
    carries: optional list of states, one per input set, for a stateful fn called as
      `out, carries[j] = fn(carries[j], *input_sets[j])` (donate the state, e.g. a KV
      cache, with donate_argnums=0 so that no call copies it).
    Each of `repeats` measurements times `calls` back-to-back calls (fewer where one
    call is slow, to stay near `budget_s` in all) and blocks on all their outputs.
    """
    n = len(input_sets)
    if carries is not None and len(carries) != n:
        raise ValueError("need one carry per input set")

    def run(k, start=0):
        outs = []
        t0 = time.perf_counter()
        for i in range(start, start + k):
            j = i % n
            if carries is None:
                outs.append(fn(*input_sets[j]))
            else:
                out, carries[j] = fn(carries[j], *input_sets[j])
                outs.append(out)
        jax.block_until_ready((outs, carries))
        return time.perf_counter() - t0

    run(n)                                   # compile, and touch every input set once
    one = run(1)
    k = max(1, min(calls, int(budget_s / repeats / max(one, 1e-9))))
    return statistics.median(run(k, start=r * k) / k for r in range(repeats))


def _host_seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_cuda():
    """The torch module if torch is importable and sees a CUDA device, else None."""
    try:
        import torch
    except Exception:
        return None
    return torch if torch.cuda.is_available() else None


def time_torch(fn, warmup_ms=25, rep_ms=100):
    """Median seconds per call of a torch callable on the current CUDA device."""
    try:
        from triton.testing import do_bench
    except Exception:                        # no triton: plain CUDA events, no L2 flush
        torch = torch_cuda()
        for _ in range(3):
            fn()
        times = []
        for _ in range(50):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        return statistics.median(times) * 1e-3
    return do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median") * 1e-3


def ceilings(copy_bytes=1 << 30, matmul_n=8192, matmul_dtype="bfloat16"):
    """Measured ceilings in this process: {'copy_Bps': bytes read + written per second,
    'matmul_flops': n^3 matmul FLOP/s, plus each measurement by name}. Takes the best of
    jax and (where it runs) torch."""
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (copy_bytes // 4,), jnp.float32)
    res = {"copy_jax_Bps": 2 * x.nbytes / time_jax(jax.jit(lambda x: x + 1), [(x,)])}
    if jax.default_backend() == "cpu":           # XLA's CPU elementwise loop is no memcpy
        src = np.asarray(x)
        dst = np.empty_like(src)
        res["copy_numpy_Bps"] = 2 * src.nbytes / min(
            _host_seconds(lambda: np.copyto(dst, src)) for _ in range(5))
    n = matmul_n
    a, b = (jax.random.normal(k, (n, n), matmul_dtype) for k in jax.random.split(key))
    res["matmul_jax_flops"] = 2 * n**3 / time_jax(jax.jit(jnp.matmul), [(a, b)])
    del x, a, b
    torch = torch_cuda()
    try:
        if torch is not None:
            _torch_ceilings(torch, res, copy_bytes, n, matmul_dtype)
    except Exception as e:  # keep jax's numbers
        print(f"(torch ceilings failed: {type(e).__name__}: {e})")
    res["copy_Bps"] = max(v for k, v in res.items() if k.startswith("copy_"))
    res["matmul_flops"] = max(v for k, v in res.items() if k.startswith("matmul_"))
    return res


def _torch_ceilings(torch, res, copy_bytes, n, matmul_dtype):
    src = torch.rand(copy_bytes // 4, device="cuda")
    dst = torch.empty_like(src)
    res["copy_torch_Bps"] = 2 * src.nbytes / time_torch(lambda: dst.copy_(src))
    a, b = (torch.randn(n, n, device="cuda", dtype=getattr(torch, matmul_dtype))
            for _ in range(2))
    res["matmul_torch_flops"] = 2 * n**3 / time_torch(lambda: a @ b)
    del src, dst, a, b
    torch.cuda.empty_cache()


def environment():
    """Date, device and versions, to store beside results."""
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
           "jax": jax.__version__, "python": platform.python_version()}
    torch = torch_cuda()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_device"] = torch.cuda.get_device_name()
    return env


def fmt(value, spec=".3g"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def print_table(rows, columns):
    """rows: list of dicts; columns: list of (key, header, format spec)."""
    cells = [[h for _, h, _ in columns]]
    cells += [[fmt(r.get(k), spec) for k, _, spec in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    left = [spec.startswith("<") for _, _, spec in columns]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) if l else c.rjust(w) for c, w, l in zip(line, widths, left)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_csv(path, rows, meta=None, quiet=False):
    """rows (list of dicts) to path as CSV; meta (dict) beside it as <path>.json."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    if meta is not None:
        with open(path + ".json", "w") as f:
            json.dump(meta, f, indent=1, default=str)
    if not quiet:
        print(f"wrote {path}")

"""Shared timing utilities for the jax-mea benchmarks.

Import this module before jax: it keeps jax from preallocating most of the GPU, so
that torch can run in the same process.

  time_jax      seconds per call of a jax callable, on the device: programs of n1 and n2
                calls back to back in one jit (rotating among input sets, optionally
                threading a donated state), (t(n2) - t(n1)) / (n2 - n1) of their medians
  time_torch    the same for a torch callable, from CUDA-graph replays timed by events
  time_steps    seconds per step of programs that run n steps each (a lax.scan of a
                decode step: scan_programs), the state donated and threaded through runs
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


# Calls per timed program: both at least XLA's smallest command buffer (5 commands,
# --xla_gpu_graph_min_graph_size), so that both programs run the same way (a CUDA
# graph, or thunk by thunk) and the difference holds no graph launch: with (2, 12)
# a 12-call program paid a graph launch that a 2-call one did not (about 60 us of
# host time before the GPU starts, 6 us per call in the slope; H100, 2026-11-25).
JAX_COUNTS = (6, 18)


def time_jax(fn, input_sets, *, carries=None, counts=JAX_COUNTS, repeats=7):
    """Seconds per call of `fn` on the device, measured inside one jitted program.

    input_sets: list of argument tuples; call i uses input_sets[i % len(input_sets)],
      each call's arguments are parameters of their own (XLA cannot merge two calls).
    carries: optional list of states, one per input set, for a stateful fn called as
      `out, carries[j] = fn(carries[j], *input_sets[j])`; they are donated to the program
      (e.g. a KV cache appended in place), so that no call copies them.
    A program runs n calls back to back; programs of n1 and n2 calls (`counts`) are
    timed in turn after a warm-up and the time per call is (t(n2) - t(n1)) / (n2 - n1)
    (per_call): the program's dispatch and synchronisation cancel, so small calls are
    timed as the GPU runs them, not as the host issues single programs.
    """
    n_sets = len(input_sets)
    if carries is not None and len(carries) != n_sets:
        raise ValueError("need one carry per input set")
    counts = (counts[0], max(counts[1], n_sets + counts[0]))  # every set used per program
    state = {"carries": carries}

    def program(n):
        def run(carries, args):
            carries = None if carries is None else list(carries)
            outs = []
            for i in range(n):
                if carries is None:
                    outs.append(fn(*args[i]))
                else:
                    j = i % n_sets
                    out, carries[j] = fn(carries[j], *args[i])
                    outs.append(out)
            return outs, carries
        return jax.jit(run, donate_argnums=0 if carries is not None else ())

    def timed(prog, args):
        t0 = time.perf_counter()
        outs, state["carries"] = prog(state["carries"], args)
        jax.block_until_ready((outs, state["carries"]))
        return time.perf_counter() - t0

    programs = {n: (program(n), [input_sets[i % n_sets] for i in range(n)]) for n in counts}
    for prog, args in programs.values():       # compile, warm up
        timed(prog, args)
        timed(prog, args)
    return per_call([lambda n=n: timed(*programs[n]) for n in counts], counts, repeats)


def per_call(run, counts, repeats):
    """Seconds per call from timings of programs of n1 < n2 calls (run[i]() times the
    program of counts[i] calls once): the median over `repeats` of back-to-back pairs'
    (t(n2) - t(n1)) / (n2 - n1), so that drift between the two cancels. The median
    t(n2) / n2 bounds it from above (it includes the fixed cost); a slope under half of
    that bound is taken for noise (seen once on the H100: a 0.19 ms call measured at
    0.07 ms) and the bound is returned instead, which never flatters a contender."""
    (n1, n2), slopes, whole = counts, [], []
    for _ in range(repeats):
        t1, t2 = run[0](), run[1]()
        slopes.append((t2 - t1) / (n2 - n1))
        whole.append(t2 / n2)
    slope, upper = statistics.median(slopes), statistics.median(whole)
    return slope if 0.5 * upper <= slope <= upper else upper


# Scan lengths of the scan-timed programs (scan_programs): the slope between them is
# the time per step. The host clock around one program jitters by tens to a hundred
# us; over 32 steps of 10 us that moved a small cache's step 2x between two runs
# (H200, session 27: jax xla B1 S1024 at 5.9 and 12.8 us). 128 steps apart cut that
# four-fold and still keep a 2 ms step's program under 0.3 s.
SCAN_COUNTS = (8, 136)


def scan_programs(step, counts=SCAN_COUNTS):
    """{n: program(carry, *consts) -> (carry, None)} running carry = step(carry, *consts)
    n times in one lax.scan, for time_steps. The carry is donated (a KV cache carried
    through the scan is updated in place, never copied); consts are arguments, not
    closed-over constants, so that large arrays are not baked into the program."""
    def program(n):
        def run(carry, *consts):
            carry, _ = jax.lax.scan(lambda c, _: (step(c, *consts), None), carry, None,
                                    length=n)
            return carry, None
        return jax.jit(run, donate_argnums=0)
    return {n: program(n) for n in counts}


def time_steps(programs, carry, consts=(), *, repeats=5):
    """Seconds per step of device programs that run n steps each, timed on the device.

    programs: {n: program(carry, *consts) -> (carry, out)}, each running n steps in one
      program (a lax.scan: scan_programs, or a model's own generate loop); the carry is
      donated and threaded from one run to the next (a run must leave it ready for the
      next one, e.g. cache lengths set back).
    Each program runs twice to warm up (compile, autotune), then `repeats` times, each
    run timed from the call to block_until_ready (one program: one dispatch for n
    steps). With one n: the median of t / n (the run's fixed cost, tens of us, spread
    over the steps); with two: per_call's median of (t(n2) - t(n1)) / (n2 - n1), the
    fixed cost cancelled.
    Returns (seconds per step, the carry after the last run, the first run's `out` of
    the largest n): the caller goes on with the carry (the one passed in was donated).
    """
    counts = sorted(programs)
    state = {"carry": carry}
    outs = {}

    def timed(n):
        t0 = time.perf_counter()
        state["carry"], out = programs[n](state["carry"], *consts)
        jax.block_until_ready((state["carry"], out))
        outs.setdefault(n, out)
        return time.perf_counter() - t0

    for n in counts:
        timed(n)
        timed(n)
    if len(counts) == 1:
        n = counts[0]
        t = statistics.median(timed(n) / n for _ in range(repeats))
    elif len(counts) == 2:
        t = per_call([lambda n=n: timed(n) for n in counts], counts, repeats)
    else:
        raise ValueError(f"time_steps takes one or two programs, got {counts}")
    return t, state["carry"], outs[counts[-1]]


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


def time_torch(fn, n_sets=1, *, counts=(2, 12), repeats=7, stream=None):
    """Seconds per call of a torch callable on the current CUDA device, on the device.

    fn(j) launches one call on input set j (0 <= j < n_sets; rotate among sets so that
    a call does not find its inputs in L2). n calls are captured into a CUDA graph and
    its replays timed with events; as in time_jax, the time per call is
    (t(n2) - t(n1)) / (n2 - n1) (per_call). Where capture fails, falls back to
    triton.testing.do_bench (per-call events, L2 flushed before each call).
    stream: the stream to capture on (default torch's own). A backward of forward
    graphs built beforehand needs the stream they ran on: autograd runs each backward
    op on its forward op's stream, and no other stream may launch during capture."""
    torch = torch_cuda()
    counts = (counts[0], max(counts[1], n_sets + counts[0]))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):              # warm-up outside capture: plans, workspaces
        for j in range(n_sets):
            fn(j)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    try:
        graphs = {}
        for n in counts:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                for i in range(n):
                    fn(i % n_sets)
            graph.replay()
            graphs[n] = graph

        def replay(n):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            graphs[n].replay()
            b.record()
            b.synchronize()
            return a.elapsed_time(b) * 1e-3

        return per_call([lambda n=n: replay(n) for n in counts], counts, repeats)
    except Exception as e:
        print(f"(torch graph capture failed: {type(e).__name__}: {e}; timing with do_bench)")
        torch.cuda.synchronize()
        from triton.testing import do_bench
        return do_bench(lambda: fn(0), warmup=25, rep=100, return_mode="median") * 1e-3


def ceilings(copy_bytes=1 << 30, matmul_n=8192, matmul_dtype="bfloat16"):
    """Measured ceilings in this process: {'copy_Bps': bytes read + written per second,
    'matmul_flops': n^3 matmul FLOP/s, plus each measurement by name}. Takes the best of
    jax and (where it runs) torch."""
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (copy_bytes // 4,), jnp.float32)
    res = {"copy_jax_Bps": 2 * x.nbytes / time_jax(lambda x: x + 1, [(x,)], counts=(1, 4))}
    if jax.default_backend() == "cpu":           # XLA's CPU elementwise loop is no memcpy
        src = np.asarray(x)
        dst = np.empty_like(src)
        res["copy_numpy_Bps"] = 2 * src.nbytes / min(
            _host_seconds(lambda: np.copyto(dst, src)) for _ in range(5))
    n = matmul_n
    a, b = (jax.random.normal(k, (n, n), matmul_dtype) for k in jax.random.split(key))
    res["matmul_jax_flops"] = 2 * n**3 / time_jax(jnp.matmul, [(a, b)], counts=(1, 6))
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
    res["copy_torch_Bps"] = 2 * src.nbytes / time_torch(lambda j: dst.copy_(src), counts=(1, 4))
    a, b = (torch.randn(n, n, device="cuda", dtype=getattr(torch, matmul_dtype))
            for _ in range(2))
    res["matmul_torch_flops"] = 2 * n**3 / time_torch(lambda j: a @ b, counts=(1, 6))
    del src, dst, a, b
    torch.cuda.empty_cache()


def environment():
    """Date, device and versions, to store beside results."""
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
           "jax": jax.__version__, "python": platform.python_version()}
    if os.environ.get("XLA_FLAGS"):  # e.g. a command-buffer setting changes small steps
        env["xla_flags"] = os.environ["XLA_FLAGS"]
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

"""GPU timeline of decode attention calls through JAX, from the JAX profiler (CUPTI).

Runs jitted programs of n back-to-back calls of jax_mea.dot_product_attention and
jax.nn.dot_product_attention (cudnn) on the same BSNH inputs, traces three programs
and prints every GPU kernel of the last n calls with its duration and the gap before
it: what each call costs on the device, apart from the host (the benchmarks' wall
clock per call includes the host where it is slower than the GPU).

    python3 tools/jax_timeline.py [--shapes 1x1024,1x32768,16x8192] [--calls 12]
    python3 tools/jax_timeline.py --smoke      # on the CPU: host events only
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
from jax.profiler import ProfileData

import jax_mea

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import timing  # noqa: E402  (the benchmarks' timer, to compare with the timeline)


def events(profile, plane_prefix):
    out = []
    for plane in profile.planes:
        if plane.name.startswith(plane_prefix):
            for line in plane.lines:
                out += [(ev.start_ns, ev.duration_ns, ev.name, line.name) for ev in line.events]
    return sorted(out)


def trace(run):
    """run() under the JAX profiler; returns its ProfileData."""
    d = tempfile.mkdtemp()
    jax.profiler.start_trace(d)
    run()
    jax.profiler.stop_trace()
    path = next(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs
                if f.endswith(".xplane.pb"))
    return ProfileData.from_file(path)


def print_busiest_host_events(profile, t0=None, t1=None, top=12):
    """The host events with the most total time (in [t0, t1] where given): name,
    count, mean duration."""
    by_name = {}
    for start, dur, nm, line in events(profile, "/host"):
        if (t0 is None or t0 <= start) and (t1 is None or start <= t1):
            c = by_name.setdefault(re.sub(r"\.\d+$", "", nm)[:60], [0, 0])
            c[0] += 1
            c[1] += dur
    print("  host, busiest events (count, mean us):")
    for nm, (cnt, tot) in sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {nm:60s} {cnt:5d} {tot / cnt / 1e3:9.2f}")


def wall_clock(name, fn, prog, calls, n, repeats=7, trace_timer=False):
    """The host's view of a program of n calls: the time until prog() returns (the
    host enqueueing every call) and until its results are ready, medians over
    `repeats`; then the benchmarks' time_jax per call, to set beside the GPU span."""
    enqueue, whole = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = prog(*calls)
        t1 = time.perf_counter()
        jax.block_until_ready(out)
        t2 = time.perf_counter()
        enqueue.append(t1 - t0)
        whole.append(t2 - t0)
    q, k, v = calls[:3]
    per_call = timing.time_jax(fn, [(q, k, v)])
    if trace_timer:  # what the host does while time_jax runs (e.g. graphs re-recorded)
        profile = trace(lambda: timing.time_jax(fn, [(q, k, v)], repeats=2))
        print(f"=== {name}: time_jax under the profiler")
        print_busiest_host_events(profile, top=25)
    print(f"=== {name}: host enqueue {statistics.median(enqueue) / n * 1e6:.2f} us per call, "
          f"ready {statistics.median(whole) / n * 1e6:.2f} us per call ({n} calls); "
          f"time_jax {per_call * 1e6:.2f} us per call")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default="1x1024,1x32768,16x8192", help="BxS, comma separated")
    p.add_argument("--heads", default="32/8")
    p.add_argument("--head-size", type=int, default=128)
    p.add_argument("--calls", type=int, default=12)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--trace-timer", action="store_true",
                   help="also profile timing.time_jax itself and list the host's busiest events")
    args = p.parse_args()
    nq, nkv = map(int, args.heads.split("/"))
    H, n = args.head_size, args.calls
    shapes = [(1, 256)] if args.smoke else [tuple(map(int, s.split("x")))
                                            for s in args.shapes.split(",")]
    fns = {"jax_mea": lambda q, k, v: jax_mea.dot_product_attention(q, k, v)}
    if not args.smoke:
        fns["jax-cudnn"] = lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, implementation="cudnn")
    plane = "/host:CPU" if args.smoke else "/device:GPU"
    key = jax.random.PRNGKey(0)
    for B, S in shapes:
        q = jax.random.normal(key, (B, 1, nq, H), jnp.bfloat16)
        k = jax.random.normal(key, (B, S, nkv, H), jnp.bfloat16)
        v = jax.random.normal(key, (B, S, nkv, H), jnp.bfloat16)
        for name, fn in fns.items():
            prog = jax.jit(lambda *a, fn=fn: [fn(*a[3 * i:3 * i + 3]) for i in range(n)])
            calls = [q, k, v] * n
            try:
                for _ in range(2):
                    jax.block_until_ready(prog(*calls))
            except Exception as e:  # e.g. cuDNN refusing the shape
                print(f"=== {name} B{B} S{S}: n/a ({type(e).__name__})")
                continue
            wall_clock(name, fn, prog, calls, n, trace_timer=args.trace_timer)
            profile = trace(lambda: [jax.block_until_ready(prog(*calls)) for _ in range(3)])
            evs = events(profile, plane)
            last = evs[-(len(evs) // 3):] if evs else []   # the third program
            print(f"=== {name} B{B} S{S} N{nq}/{nkv} H{H}: {len(last)} events in the last program")
            prev_end, busy = None, 0
            for start, dur, nm, line in last:
                gap = (start - prev_end) / 1e3 if prev_end is not None else 0.0
                busy += dur
                print(f"  {nm[:64]:64s} {dur / 1e3:8.2f} us  gap {gap:7.2f} us  [{line[:24]}]")
                prev_end = start + dur
            if last:
                span = (last[-1][0] + last[-1][1] - last[0][0]) / 1e3
                print(f"  span {span:.1f} us for {n} calls: {span / n:.2f} us per call "
                      f"(kernels busy {busy / 1e3 / n:.2f} us per call)")
            if last and not args.smoke:
                # What the host did while the last program ran (from 1 ms before its
                # first kernel): the busiest event names, with count and mean duration.
                print_busiest_host_events(profile, last[0][0] - 1_000_000,
                                          last[-1][0] + last[-1][1])


if __name__ == "__main__":
    main()

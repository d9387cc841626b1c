"""GPU timeline of decode attention calls through JAX, from the JAX profiler (CUPTI).

Runs jitted programs of n back-to-back calls of jax_mea.dot_product_attention and
jax.nn.dot_product_attention (cudnn) on the same BSNH inputs, traces three programs
and prints every GPU kernel of the last n calls with its duration and the gap before
it: what each call costs on the device, apart from the host (the benchmarks' wall
clock per call includes the host where it is slower than the GPU).

    python3 tools/jax_timeline.py [--shapes 1x1024,1x32768,16x8192] [--calls 12]
    python3 tools/jax_timeline.py --smoke      # on the CPU: host events only

--prefill gives the query the key length (S queries: a prefill call, e.g.
--prefill --shapes 2x4096 --heads 32/32 --calls 6 [--causal]): what a forward call
costs on the device through JAX, beside the kernel alone (sm90_check --bench).

--model CONFIG instead profiles benchmarks/decode_model.py's program (its grid point
--batch x --context, every variant) and prints each attention kernel's time per layer
against the copy-bandwidth floor of that layer's K+V (the bytes the step reads from
the layer's cache / the copy bandwidth measured in the same run), as a fraction; the
kernels are found and told apart as benchmarks/kernel_times.py says. Last come
the kernels outside attention of every variant side by side, the largest
differences from jax_mea's first.

    python3 tools/jax_timeline.py --model large --batch 8 --context 4096 [--steps 32]
    python3 tools/jax_timeline.py --model smoke --smoke      # on the CPU

--scan instead profiles the scan contenders of benchmarks/decode.py --scan (the same
steps: common.SCAN_SETUPS) as one program of --steps decode steps each (default 40), on
--shapes with --heads / --head-size and a cache of capacity S + --cap-extra: per step,
the device span (first kernel's start to last kernel's end, over the steps), the
kernels' busy time and count, and the kernels of the middle step with the gap before
each. Where the span exceeds the busy time the step waits on something other than its
kernels (the host, a launch); beside it, the benchmark's host-clock time per step.

    python3 tools/jax_timeline.py --scan --shapes 1x1024,1x4096,8x1024 [--cap-extra 64]
    python3 tools/jax_timeline.py --scan --smoke      # on the CPU
"""
import argparse
import os
import re
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import jax_mea

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import timing  # noqa: E402  (the benchmarks' timer, to compare with the timeline)
from kernel_times import events, program_kernels, summarize, totals, trace  # noqa: E402


def print_busiest_host_events(profile, t0=None, t1=None, top=12):
    """The host events with the most total time (in [t0, t1] where given): name,
    count, mean duration."""
    by_name = {}
    for start, dur, nm, line, _ in events(profile, "/host"):
        if (t0 is None or t0 <= start) and (t1 is None or start <= t1):
            c = by_name.setdefault(re.sub(r"\.\d+$", "", nm)[:60], [0, 0])
            c[0] += 1
            c[1] += dur
    print("  host, busiest events (count, mean us):")
    for nm, (cnt, tot) in sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {nm:60s} {cnt:5d} {tot / cnt / 1e3:9.2f}")


def print_with_gaps(rows):
    """rows: (name, start ns, duration ns, note) by start; one line each, with the gap
    since the previous one ended (negative: they overlap)."""
    prev_end = None
    for name, start, dur, note in rows:
        gap = (start - prev_end) / 1e3 if prev_end is not None else 0.0
        print(f"  {name[:64]:64s} {dur / 1e3:8.2f} us  gap {gap:7.2f} us{note}")
        prev_end = start + dur


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


def model_timeline(args):
    """--model: every variant of one decode_model grid point, profiled; per layer, each
    attention kernel's calls and time and the layer's copy floor over that time."""
    import decode_model as dm
    dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))
    variants = dm.usable(args.variants.split(","))
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    cfg, params = dm.setup(args.model, dtype)
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}, {dtype}; copy "
          f"{ceil['copy_Bps'] / 1e12:.3f} TB/s\n{args.model}: {cfg}")
    rows = dm.measure_point(args.model, cfg, params, args.batch, args.context,
                            steps=args.steps, variants=variants, copy_Bps=ceil["copy_Bps"],
                            dtype=dtype, repeats=args.repeats)
    for r in rows:
        if "_kernels" not in r:
            print(f"=== {r['variant']}: n/a ({r.get('note', '')})")
            continue
        per = r["_steps"] * cfg.n_layers                      # kernel calls per layer
        floor_us = r["kv_MB_per_layer"] * 1e6 / ceil["copy_Bps"] * 1e6
        tot = totals(r["_kernels"])
        print(f"=== {r['variant']} {args.model} B{r['batch']} ctx{r['context']} (capacity "
              f"{r['capacity']}): {r['ms_per_step']:.4f} ms/step timed, "
              f"{r['traced_ms_per_step']:.4f} traced; K+V read per layer "
              f"{r['kv_MB_per_layer']:.1f} MB, at copy speed {floor_us:.2f} us")
        print(f"  {'attention kernel':56s} {'calls/layer':>11s} {'us/layer':>9s} "
              f"{'floor/time':>10s}")
        groups = summarize(r["_kernels"])
        for group, attention, count, ns in groups:
            if attention:
                us = ns / per / 1e3
                print(f"  {group[:56]:56s} {count / per:11.2f} {us:9.2f} {floor_us / us:10.0%}")
        us = tot["attention_ns"] / per / 1e3
        if us:
            print(f"  {'all attention':56s} {'':11s} {us:9.2f} {floor_us / us:10.0%}"
                  f"   ({r['attn_share']:.0%} of the traced step)")
        other = [(g, c, ns) for g, a, c, ns in groups if not a]
        print(f"  other kernels, the longest per step (of {len(other)} kinds):")
        for group, count, ns in other[:args.top]:
            print(f"    {group[:60]:60s} {count / r['_steps']:7.1f}/step "
                  f"{ns / r['_steps'] / 1e3:9.2f} us/step")
        if tot["unresolved_ns"]:
            names = sorted({k.group for k in r["_kernels"] if k.how == "unresolved"})
            print(f"  unresolved (counted as not attention): "
                  f"{tot['unresolved_ns'] / r['_steps'] / 1e3:.2f} us/step in "
                  f"{', '.join(names[:8])}")
    print_other_kernels_side_by_side(rows, args.top)


def print_other_kernels_side_by_side(rows, top):
    """The kernels outside attention, per step, of every profiled variant side by side,
    the largest differences from jax_mea's first: what besides attention makes one
    variant's step longer (e.g. a copy XLA inserts for one variant's operands only)."""
    per_variant = {}
    for r in rows:
        if "_kernels" in r:
            per_variant[r["variant"]] = {g: (c / r["_steps"], ns / r["_steps"] / 1e3)
                                         for g, a, c, ns in summarize(r["_kernels"]) if not a}
    if "jax_mea" not in per_variant or len(per_variant) < 2:
        return
    names = list(per_variant)
    groups = set().union(*(v.keys() for v in per_variant.values()))
    ours = per_variant["jax_mea"]

    def spread(g):  # the largest |ours - other| in us per step
        mine = ours.get(g, (0, 0))[1]
        return max(abs(mine - v.get(g, (0, 0))[1]) for n, v in per_variant.items() if n != "jax_mea")
    print("other kernels side by side (calls/step, us/step), the largest differences first:")
    print(f"  {'kernel':48s}" + "".join(f" {n:>22s}" for n in names))
    for g in sorted(groups, key=spread, reverse=True)[:top]:
        cells = [per_variant[n].get(g, (0, 0)) for n in names]
        print(f"  {g[:48]:48s}" + "".join(f" {c:8.1f} {us:13.2f}" for c, us in cells))


def scan_timeline(args):
    """--scan: each scan contender's program of args.steps decode steps, profiled."""
    import common
    nq, nkv = map(int, args.heads.split("/"))
    dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))
    n = args.steps
    shapes = [(2, 64)] if args.smoke else [tuple(map(int, s.split("x")))
                                          for s in args.shapes.split(",")]
    names = [v if v.endswith("-scan") else v + "-scan" for v in args.variants.split(",")]
    if args.smoke:
        names = [v for v in names if v != "jax-cudnn-scan"]
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}, {dtype}; {n} steps "
          f"per program")
    for B, S in shapes:
        case = common.Case(B, nq, nkv, args.head_size, S, capacity=S + args.cap_extra)
        for name in names:
            try:
                step, carry, consts, err = common.SCAN_SETUPS[name](case, dtype, 0)
                # One compile: the program run is the one whose HLO names the kernels.
                prog = timing.scan_programs(step, (n,))[n].lower(carry, *consts).compile()
                hlo = prog.as_text()
                state = {"carry": carry}

                def run():
                    state["carry"], _ = prog(state["carry"], *consts)
                    jax.block_until_ready(state["carry"])
                run()
                run()
                profile = trace(run)
                kernels = program_kernels(profile, hlo)
                wall, state["carry"], _ = timing.time_steps(
                    timing.scan_programs(step), state["carry"], consts)
            except Exception as e:  # e.g. cuDNN refusing the shape
                print(f"=== {name} {case.name}: n/a ({type(e).__name__}: {str(e)[:80]})")
                continue
            tot = totals(kernels)
            print(f"=== {name} {case.name}: device span {tot['span_ns'] / n / 1e3:.2f} us "
                  f"per step, kernels busy {tot['kernel_ns'] / n / 1e3:.2f} us in "
                  f"{len(kernels) / n:.1f} kernels; host clock {wall * 1e6:.2f} us per step "
                  f"(timing.time_steps); rel err {err:.1e}")
            # The middle step: one period's kernels from the first that starts past the
            # middle (a window anchored on a kernel, not on the clock: never empty).
            period = tot["span_ns"] / n
            mid = min(k.start_ns for k in kernels) + period * (n // 2) if kernels else 0
            t0 = min((k.start_ns for k in kernels if k.start_ns >= mid), default=0)
            middle = [k for k in kernels if t0 <= k.start_ns < t0 + period]
            print_with_gaps([(k.name, k.start_ns, k.duration_ns, "") for k in middle])
            if args.trace_timer:  # the host's side of the same program: what each thunk costs
                print_busiest_host_events(profile, top=20)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default="1x1024,1x32768,16x8192", help="BxS, comma separated")
    p.add_argument("--heads", default="32/8")
    p.add_argument("--head-size", type=int, default=128)
    p.add_argument("--calls", type=int, default=12)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--prefill", action="store_true", help="S queries (default 1)")
    p.add_argument("--causal", action="store_true")
    p.add_argument("--trace-timer", action="store_true",
                   help="also list the host's busiest events: of timing.time_jax itself, or with "
                        "--scan of the profiled scan program")
    p.add_argument("--model", default=None,
                   help="a benchmarks/decode_model.py config: profile its decode program")
    p.add_argument("--batch", type=int, default=None, help="--model: batch (default 8)")
    p.add_argument("--context", type=int, default=None,
                   help="--model: tokens in the cache (default 4096)")
    p.add_argument("--steps", type=int, default=None,
                   help="--model: steps per run (32); --scan: steps per program (40)")
    p.add_argument("--scan", action="store_true",
                   help="profile decode.py --scan's contenders (see the docstring)")
    p.add_argument("--cap-extra", type=int, default=64,
                   help="--scan: cache capacity beyond the length")
    p.add_argument("--repeats", type=int, default=5, help="--model: timed runs")
    p.add_argument("--variants", default="jax_mea,jax-cudnn,jax-xla")
    p.add_argument("--dtype", default=None, help="--model: default bfloat16 (float32 with --smoke)")
    p.add_argument("--top", type=int, default=8, help="--model: other kernels to list")
    args = p.parse_args()
    if args.scan:
        args.steps = args.steps or (4 if args.smoke else 40)
        return scan_timeline(args)
    if args.model:
        args.batch = args.batch or (2 if args.smoke else 8)
        args.context = args.context or (24 if args.smoke else 4096)
        args.steps = args.steps or (4 if args.smoke else 32)
        return model_timeline(args)
    nq, nkv = map(int, args.heads.split("/"))
    H, n = args.head_size, args.calls
    shapes = [(1, 256)] if args.smoke else [tuple(map(int, s.split("x")))
                                            for s in args.shapes.split(",")]
    causal = args.causal
    fns = {"jax_mea": lambda q, k, v: jax_mea.dot_product_attention(q, k, v, is_causal=causal)}
    if not args.smoke:
        fns["jax-cudnn"] = lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, is_causal=causal, implementation="cudnn")
    plane = "/host:CPU" if args.smoke else "/device:GPU"
    key = jax.random.PRNGKey(0)
    for B, S in shapes:
        q = jax.random.normal(key, (B, S if args.prefill else 1, nq, H), jnp.bfloat16)
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
            busy = sum(dur for _, dur, _, _, _ in last)
            print_with_gaps([(nm, start, dur, f"  [{line[:24]}]")
                             for start, dur, nm, line, _ in last])
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

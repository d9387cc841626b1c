"""Decode-step attention (T = 1 over a KV cache) on the GPU: jax_mea against its peers.

Contenders (common.py): jax_mea.dot_product_attention and jax.nn.dot_product_attention
with implementation "xla" and "cudnn", all on the same keys [B, Skv, Nkv, H] (with
key_value_seq_lengths for ragged rows); torch SDPA's flash, efficient and cudnn
backends (where torch with CUDA imports) on [B, Nkv, Skv, H]; and jax_mea-step, a
whole jax_mea.decode_attention step (the cache, filled to Skv - 1 and donated, gets
the Skv-th token appended in place, then attention over it). All are timed on the
device side (timing.py). Per shape: time, TB/s (q, valid k and v, out, each once),
fraction of the copy bandwidth measured in the same run, relative error of row 0
against a float32 reference, and best peer time / jax_mea time (> 1: jax_mea faster;
peers are the contenders that are not jax_mea's).

--scan adds the scan-timed contenders (common.py): jax_mea-scan, jax-xla-scan and
jax-cudnn-scan, n decode steps inside one lax.scan, each step's query depending on the
previous output, per step = (t(40) - t(8)) / 32; jax_mea's cache is carried and
appended in place, with capacity Case.cap. Their ratio column compares jax_mea-scan
with the best scan peer. The small grid has shapes whose cache capacity exceeds the
length, by 64 and by 2x (a decode loop's cache is larger than what it holds);
--capacity adds such variants to every shape.

    python benchmarks/decode.py [--grid small|full] [--scan] [--capacity +64,2x] [--rounds 3]
                                [--shard 0/2] [--only ragged] [--budget-s 500] [--out DIR]
    python benchmarks/decode.py --smoke [--scan]  # tiny shapes, runs on the CPU

Writes <out>/decode[_<grid>][_shard].csv (+ .json with device, versions, ceilings) and a
PNG of the fraction of copy bandwidth per shape and contender.
"""
import argparse
import dataclasses
import itertools
import os
import time

import timing

from common import CONTENDERS, SCAN_CONTENDERS, Case, available, run_cases

BATCHES = (1, 8, 16, 64)
LENGTHS = (1024, 4096, 8192, 32768)
HEADS = ((32, 8), (32, 32), (64, 8))
HEAD_SIZES = ((64, 64), (128, 128), (256, 256), (192, 128))   # (H, Hv)
MAX_CACHE_BYTES = 40e9


def full_grid():
    cases = [Case(B, nq, nkv, h, L, Hv=hv) for B, L, (nq, nkv), (h, hv)
             in itertools.product(BATCHES, LENGTHS, HEADS, HEAD_SIZES)]
    cases += [Case(B, 32, 8, h, L, Hv=hv, ragged=True) for B, L, (h, hv)
              in itertools.product(BATCHES[1:], LENGTHS, HEAD_SIZES)]
    return cases


def small_grid():
    """A representative subset: batch x length at the common GQA shape, then the heads,
    head sizes and ragged lengths one at a time, and the shapes of ANCHORS.md."""
    cases = [Case(B, 32, 8, 128, L) for B in BATCHES for L in (1024, 8192, 32768)]
    cases += [Case(16, nq, nkv, 128, 8192) for nq, nkv in HEADS[1:]]
    cases += [Case(B, 32, 8, h, L, Hv=hv) for B, L in ((16, 8192), (1, 32768))
              for h, hv in HEAD_SIZES if h != 128]
    cases += [Case(B, 32, 8, 128, L, ragged=True) for B, L in ((8, 32768), (16, 8192), (64, 4096))]
    cases += [Case(64, 32, 8, 128, 2048)]
    # Issue 11's shapes apart from the grid, each with capacity = length, + 64 and 2x
    # (B1 S4096 N32/8: a cache that fits in L2)
    cases += with_capacities([Case(B, nq, nkv, 128, S) for B, S, nq, nkv in (
        (8, 4096, 32, 8), (8, 4096, 16, 4), (16, 4096, 16, 4), (8, 8192, 16, 4),
        (1, 4096, 32, 8), (1, 32768, 32, 8))], "+64,2x")
    return cases


def with_capacities(cases, spec):
    """Each case, then the same with each cache capacity of spec ('+64': 64 more than
    the length, '2x': twice the length; comma separated)."""
    caps = [(lambda S, e=int(c[1:]): S + e) if c.startswith("+") else
            (lambda S, f=int(c[:-1]): f * S) for c in spec.split(",") if c]
    return [dataclasses.replace(c, capacity=cap(c.Skv)) if cap else c
            for c in cases for cap in [None] + caps]


SMOKE = [Case(2, 4, 2, 32, 256), Case(1, 8, 8, 64, 512), Case(2, 4, 2, 48, 128, Hv=32),
         Case(3, 4, 2, 32, 300, ragged=True)] + with_capacities([Case(2, 8, 2, 32, 192)], "+64,2x")


def plot(rows, path, title):
    try:
        import matplotlib
    except ImportError:
        print("(no matplotlib here: no plot)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = list(dict.fromkeys(r["case"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.3 * len(cases) + 3), 6))
    for i, name in enumerate(dict.fromkeys(r["contender"] for r in rows)):
        pts = [(cases.index(r["case"]), r["frac_ceiling"]) for r in rows
               if r["contender"] == name and r["frac_ceiling"] is not None]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, ls="none", marker="o^svDx"[i % 6], ms=8 if i == 0 else 5,
                    label=name, zorder=3 if i == 0 else 2)
    ax.axhline(0.85, color="gray", ls="--", lw=1, label="85% target")
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([c.replace("decode ", "") for c in cases],
                       rotation=90, fontsize=7)
    ax.set_ylabel("fraction of measured copy bandwidth")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", choices=("small", "full"), default="small")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th case from the i-th")
    p.add_argument("--smoke", action="store_true", help="tiny shapes, float32 (CPU check)")
    p.add_argument("--dtype", default=None, help="default bfloat16 (float32 with --smoke)")
    p.add_argument("--only", default="", help="comma-separated parts of case names to keep "
                   "(e.g. 'ragged,B1 S32768')")
    p.add_argument("--contenders", default=",".join(
        n for n in CONTENDERS if n not in SCAN_CONTENDERS))
    p.add_argument("--scan", action="store_true",
                   help="add the scan-timed contenders (" + ", ".join(SCAN_CONTENDERS) + ")")
    p.add_argument("--capacity", default="",
                   help="add variants of every shape with these cache capacities (+64, 2x)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="start no shape after this many seconds (the table covers the rest)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure each contender this many times per shape, the order "
                        "reversed every other round, and report the median (default 1; the "
                        "scan line's small caches moved 10%% between two sessions' runs)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args()
    deadline = time.monotonic() + args.budget_s if args.budget_s else None
    dtype = args.dtype or ("float32" if args.smoke else "bfloat16")
    cases = SMOKE if args.smoke else (full_grid() if args.grid == "full" else small_grid())
    cases = list(dict.fromkeys(with_capacities(cases, args.capacity)))   # each shape once
    cases = [c for c in cases if c.cache_bytes(2) <= MAX_CACHE_BYTES]
    if args.only:
        cases = [c for c in cases if any(part in c.name for part in args.only.split(","))]
    i, n = map(int, args.shard.split("/"))
    cases = cases[i::n]
    contenders = args.contenders.split(",")
    contenders = available(contenders + [n for n in SCAN_CONTENDERS
                                         if args.scan and n not in contenders])

    env = timing.environment()
    ceil = timing.ceilings(**(dict(copy_bytes=1 << 24, matmul_n=256) if args.smoke else {}))
    print(f"{env['device']}, jax {env['jax']}, torch {env.get('torch', 'n/a')}, {dtype}; "
          f"copy {ceil['copy_Bps'] / 1e12:.3f} TB/s; {len(cases)} shapes"
          + (f"; XLA_FLAGS={env['xla_flags']}" if "xla_flags" in env else ""))
    name = "decode_smoke" if args.smoke else f"decode_{args.grid}" + (
        f"_{i}of{n}" if n > 1 else "") + ("_only" if args.only else "")
    name += "_scan" if args.scan else ""
    csv_path = os.path.join(args.out, name + ".csv")
    kw = dict(counts=(1, 3), repeats=3) if args.smoke else {}
    rows = run_cases(cases, contenders, dtype, metric="bytes", ceiling=ceil["copy_Bps"],
                     csv_path=csv_path, meta=dict(env, ceilings=ceil), deadline=deadline,
                     rounds=args.rounds, **kw)
    plot(rows, os.path.join(args.out, name + ".png"),
         f"decode attention, {dtype}, {env['device']}, {env['date']}; copy "
         f"{ceil['copy_Bps'] / 1e12:.2f} TB/s")


if __name__ == "__main__":
    main()

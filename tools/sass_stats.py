"""Summarize ncu's per-instruction SASS table of one kernel, or compare two.

    ncu --set full -k regex:BwdKernel --launch-count 1 -o ours ./bwd_check --bench
    ncu --import ours.ncu-rep --page source --csv --print-source sass > ours.csv
    python3 tools/sass_stats.py ours.csv [theirs.csv] [--loop-min 1.0e6]

For each table: executed instructions, warp stall samples by reason, and per opcode the
instructions executed and the share of stall samples; with --loop-min, the opcode mix
of the instructions executed at least that many times (a kernel's main loop: e.g. the
backward's per-tile body ran 1.05 M times at B2 S4096 N32 H128). With two tables, the
stall reasons side by side, in thousands of samples, and per reason the opcodes where
they differ most (session 19 read the backward's gap to FlashAttention-2 this way:
RESULTS.md, nineteenth session).

With --regions, the code between barriers (BAR, SYNCS waits, EXIT) as regions, the ones
with the most stall samples first: their instructions, how often their busiest
instruction ran, stall samples, and the instruction-fetch ("no instruction") samples.
Code that runs once per warp and stalls on fetch is cold code: inside a model a decode
CTA pays about 4 ns per such instruction (RESULTS.md, twenty-first session), and
`decode_check --bench --pollute` reproduces it for ncu.
"""
import argparse
import collections
import csv
import re


def load(path):
    """(header, rows) of an ncu source-page CSV (its first lines may name the kernel)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    at = next(i for i, r in enumerate(rows[:8]) if "Source" in r)
    header = rows[at]
    return header, [r for r in rows[at + 1:] if len(r) == len(header)]


def opcode(source):
    """'@!P0 LDSM.16.MT88.4 R4, [R2]' -> 'LDSM' (predicate and modifiers dropped)."""
    return re.sub(r"^@!?U?P\w+\s+", "", source.strip()).split(" ")[0].split(".")[0]


class Table:
    def __init__(self, path, loop_min=None):
        header, rows = load(path)
        col = {h: i for i, h in enumerate(header)}
        reasons = [h for h in header if h.startswith("stall_") and "(Not" not in h]
        num = lambda r, k: int(float(r[col[k]] or 0))  # noqa: E731
        self.path = path
        self.executed = collections.Counter()
        self.samples = collections.Counter()
        self.by_reason = {k: collections.Counter() for k in reasons}
        self.loop = collections.Counter()
        # --regions: [first address, instructions, max executions, samples, fetch samples]
        fetch = [k for k in reasons if "no_inst" in k]
        self.regions = [["", 0, 0, 0, 0]]
        for r in rows:
            region = self.regions[-1]
            if not region[0]:
                region[0] = r[col["Address"]] if "Address" in col else "?"
            region[1] += 1
            region[2] = max(region[2], num(r, "Instructions Executed"))
            region[3] += num(r, "Warp Stall Sampling (All Samples)")
            region[4] += sum(num(r, k) for k in fetch)
            if re.match(r"(BAR|SYNCS|EXIT)$", opcode(r[col["Source"]])):
                self.regions.append(["", 0, 0, 0, 0])
        for r in rows:
            op, ex = opcode(r[col["Source"]]), num(r, "Instructions Executed")
            self.executed[op] += ex
            self.samples[op] += num(r, "Warp Stall Sampling (All Samples)")
            for k in reasons:
                self.by_reason[k][op] += num(r, k)
            if loop_min is not None and ex >= loop_min:
                self.loop[op] += 1
        self.total = sum(sum(c.values()) for c in self.by_reason.values()) or 1

    def reason(self, k):
        return sum(self.by_reason[k].values())

    def print(self, top=25):
        print(f"== {self.path}: {sum(self.executed.values()) / 1e6:.1f} M instructions, "
              f"{self.total} stall samples")
        ranked = sorted(self.by_reason, key=self.reason, reverse=True)
        print("  " + " ".join(f"{k[6:]}={self.reason(k) / self.total * 100:.1f}%"
                              for k in ranked[:12]))
        for op, n in self.executed.most_common(top):
            share = self.samples[op] / self.total * 100
            print(f"  {op:10s} {n / 1e6:8.1f} M   stalls {share:5.1f}%")
        if self.loop:
            print(f"  loop body: {sum(self.loop.values())} instructions: " +
                  " ".join(f"{op} {n}" for op, n in self.loop.most_common(20)))

    def print_regions(self, top=25):
        regions = [g for g in self.regions if g[1]]
        print(f"  regions between barriers: {len(regions)}, by stall samples "
              "(address, instructions, max executions, samples, fetch samples):")
        for g in sorted(regions, key=lambda g: -g[3])[:top]:
            print(f"    {g[0]:>8s} {g[1]:5d} {g[2]:10d} {g[3]:8d} {g[4]:8d}")


def compare(a, b):
    print(f"== stall samples (K): {a.path} | {b.path}")
    for k in sorted(a.by_reason, key=lambda k: -(a.reason(k) + b.reason(k))):
        ka, kb = a.reason(k) / 1e3, b.reason(k) / 1e3
        if ka + kb < 1:
            continue
        ops = set(a.by_reason[k]) | set(b.by_reason[k])
        diff = sorted(ops, key=lambda o: -abs(a.by_reason[k][o] - b.by_reason[k][o]))[:4]
        print(f"  {k[6:]:18s} {ka:8.1f} {kb:8.1f}   " + " ".join(
            f"{o} {a.by_reason[k][o] / 1e3:.1f}/{b.by_reason[k][o] / 1e3:.1f}" for o in diff))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tables", nargs="+", help="one or two ncu source-page CSVs")
    p.add_argument("--loop-min", type=float, default=None,
                   help="count the opcodes executed at least this many times")
    p.add_argument("--regions", action="store_true",
                   help="the code between barriers, most stalled first (cold code)")
    args = p.parse_args(argv)
    tables = [Table(t, args.loop_min) for t in args.tables[:2]]
    for t in tables:
        t.print()
        if args.regions:
            t.print_regions()
    if len(tables) == 2:
        compare(*tables)


if __name__ == "__main__":
    main()

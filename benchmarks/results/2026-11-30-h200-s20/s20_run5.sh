#!/usr/bin/env bash
# Session 20, call 5 (issue 11): decode with q_len 1 fast paths in RowOf and GroupKeys
# (dcq; no division and no loop over the rows on the way to a CTA's first load)
# against main (dc): decode_check's checks, then the bench alternating both binaries.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/dc*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 200 $D/dcq > "$OUT/dcq_check.log" 2>&1; echo "dcq decode_check rc=$? $(tail -n 1 $OUT/dcq_check.log)"
grep -m 10 FAIL "$OUT/dcq_check.log" | cut -c1-200
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for v in dc dcq dcq dc dc dcq; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -E "^B.*(ctas[0-9]+ +[0-9])"; done > "$OUT/dcq_bench.log" 2>&1
cut -c1-150 "$OUT/dcq_bench.log"
echo "end at $((SECONDS - T0))s"

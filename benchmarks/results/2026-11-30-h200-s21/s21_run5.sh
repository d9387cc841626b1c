#!/usr/bin/env bash
# Session 21, call 5 (issue 11): does a model's traffic between two attention calls
# explain the model's 30.4 us per layer against the kernel's 27.5 alone? decode_check
# --pollute runs a kernel of 192 KB of code preferring L1 before every timed call
# (cold instruction caches, the shared-memory carve-out changed); timed and traced
# with and without it, main (870a981 + the flag).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/dcp*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
S="B8 S4096 N16/4 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64"
for m in "" --pollute "" --pollute; do echo "== ${m:-clean}"; timeout 100 $D/dcp --bench --append $m --filter "$S" | grep -A8 "^shape"; done > "$OUT/bench.log" 2>&1
cut -c1-200 "$OUT/bench.log"
for m in "" --pollute; do echo "== trace ${m:-clean}"; timeout 30 $D/dcptrace --bench --trace --append $m --filter "B8 S4096 N16/4 H128/128 cap+64" 2>&1 | sed -n 3,16p
  timeout 30 $D/dcptrace --bench --trace --append $m --filter "B1 S1024 N16/4 H128/128 cap+64" 2>&1 | sed -n 3,14p; done > "$OUT/trace.log" 2>&1
cut -c1-170 "$OUT/trace.log"
echo "end at $((SECONDS - T0))s"

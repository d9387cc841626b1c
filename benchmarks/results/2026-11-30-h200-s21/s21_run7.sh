#!/usr/bin/env bash
# Session 21, call 7 (issue 11): the compact merge with warp-parallel split weights
# (dcm2; call 6's rolled weights cost 1.5 us at 33 splits when warm). Checks, the bench
# clean and polluted alternating with call 5's main (dcp), the polluted trace; the
# package built on the device for GPU pytest (test_decode) and the large model's
# timeline at B8 ctx4096.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/dc*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 60 $D/dcm2 --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep -m 5 FAIL "$OUT/check_small.log" | cut -c1-200
S="B8 S4096 N16/4 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
for v in dcp dcm2 dcm2 dcp; do for m in "" --pollute; do echo "== $v ${m:-clean}"; timeout 100 $D/$v --bench --append $m --filter "$S" | grep -A8 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,32), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,7 -s -k1,2 | cut -c1-120
timeout 30 $D/dcm2trace --bench --trace --append --pollute --filter "B8 S4096 N16/4 H128/128 cap+64" 2>&1 | sed -n 3,16p > "$OUT/trace.log"; grep -E "event|epilogue|merge" "$OUT/trace.log" | cut -c1-170
timeout 60 $D/dcm2 > "$OUT/check.log" 2>&1; echo "full check (cut at 60 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc; tail -n 3 /tmp/build.log
timeout 100 python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider -n 8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 3
for bc in "8 4096"; do set -- $bc
  timeout 100 python3 tools/jax_timeline.py --model large --batch $1 --context $2 --steps 32 > "$OUT/timeline_b$1.log" 2>&1
  grep -E "ms/step|DecodeMma|cudnn_generated|lean_reduction|all attention" "$OUT/timeline_b$1.log" | cut -c1-150
done
echo "end at $((SECONDS - T0))s"

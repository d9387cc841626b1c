#!/usr/bin/env bash
# Issue 11, session 26 call 3: the spread merge with one MergeGroup call site (call 2's
# build had two); checks, kernel A/B against main (dcmain = main at 0fbe01d; B64 S1024
# runs configuration 0, whose 4-warp kernel now keeps one register on the stack), then
# through JAX: the package build, the GPU pytest of the decode step (the spread merge's
# cooperative launch inside XLA's programs), and the model's B1 ctx32768 points with cuDNN
# in the same run. Carry [".probe/s26b"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s26b; mkdir -p $D
for v in dc dcmain; do xz -dc .probe/s26b/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dc --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dc --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S32768 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H128/128 cap+64 len+1,B64 S1024 N32/8 H128/128,B64 S1024 N32/32 H128/128"
for v in dcmain dc dc dcmain; do for m in --pollute ""; do echo "== $v ${m:-clean}"
  timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 150 python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
for cfg in large 8b; do
  timeout $((590 - SECONDS + T0)) python3 benchmarks/decode_model.py --config $cfg --batch 1 --context 32768 --steps 32 \
    --variants jax_mea,jax-cudnn --rounds 3 > "$OUT/model_$cfg.log" 2>&1
  echo "model $cfg rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg|round" "$OUT/model_$cfg.log" | cut -c1-200
done

#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 28, not run).
# Carry [".probe/s29"]; about 550 s. Keep $OUT to 8 files or fewer.
#  1. 0133a99 (the decode epilogue's loops rolled, without divisions) passed decode_check
#     (--small 49/49, memcheck 0 errors, the full list 402/402, session 28 call 6) but has
#     not run through JAX: the package build and the GPU pytest of the decode step. If
#     it fails, revert 0133a99.
#  2. Pending 0028 (each thread merges the warps' states of its own rows; no warp-per-row
#     pass and no barrier before the write) and 0029 (no runtime division on the path
#     from a CTA's kv length to its first load) against main: --small, memcheck, the
#     trace of B1 S1024 (keys+append and the epilogue's phases) and the bench, clean and
#     polluted. Either one faster: its full list (decode_check launches through the same
#     LaunchDecodeAttention as the FFI handler), then the GPU pytest with it built in.
#  3. ncu's executed-instruction table of one B1 S1024 launch of main (comes back as
#     dec_b1.csv.xz; tools/sass_stats.py --regions reads it).
# Binaries in .probe/s29 (git-ignored): dc / dctrace = main at 6739609, dc0028 /
# dc0028trace and dc0029 / dc0029trace = the same with `git apply pending/0028-*.patch`
# or `pending/0029-*.patch` (each alone).
# Rebuild if missing (never two ninja builds at once):
#   ninja -C build/cuda decode_check && xz -6 -c build/cuda/tests/native/decode_check > .probe/s29/dc.xz
#   ninja -C build/trace decode_check && xz -6 -c build/trace/tests/native/decode_check > .probe/s29/dctrace.xz
# then the same after each git apply into dc00NN.xz / dc00NNtrace.xz, and git checkout cuda/.
# build/trace is configured once with
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s29; mkdir -p $D
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 240 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_examples.py \
  -q -p no:cacheprovider -n 4 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
grep -E "FAILED|Error" "$OUT/pytest.log" | head -10
for v in dc dctrace dc0028 dc0028trace dc0029 dc0029trace; do xz -dc .probe/s29/$v.xz > $D/$v; chmod +x $D/$v; done
for v in dc0028 dc0029; do
  timeout 60 $D/$v --small > "$OUT/check_small_$v.log" 2>&1; echo "$v --small rc=$? $(tail -n 1 $OUT/check_small_$v.log | cut -c1-80)"
  timeout 90 compute-sanitizer --tool memcheck $D/$v --small > "$OUT/memcheck.log" 2>&1
  echo "$v memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
done
S="B1 S1024 N32/8 H128/128 cap+64 len+1"
for v in dctrace dc0028trace dc0029trace; do echo "== $v"; timeout 60 $D/$v --bench --trace --append --filter "$S"; done > "$OUT/trace.log" 2>&1
grep -E "^==|cluster ctas72|keys|first tile|epilogue|CTA total|ep:" "$OUT/trace.log" | grep -A11 "^==" | cut -c1-150 | head -45
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in dc dc0028 dc0029 dc0029 dc0028 dc; do for pol in "" --pollute; do echo "== $v$pol"; timeout 60 $D/$v --bench --append $pol --filter "$S" | grep -A30 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-16s %s\n", v, $0}' "$OUT/bench.log" | sort -s -k2,9 | sed -E 's/ +/ /g' | awk '{printf "%s %s %s %s %s %s %s | %s\n", $1, $2, $3, $4, $5, $6, $7, $(NF-3)}'
echo "A/B t=$((SECONDS - T0))s"
# 3. ncu's executed-instruction count of every SASS line of one B1 S1024 launch of main
#    (the default plan, 9 splits in clusters): which once-per-CTA code a warp runs, to
#    aim the next cuts (tools/sass_stats.py --regions; the table itself comes back).
S="B1 S1024 N32/8 H128/128 cap+64 len+1"
timeout 120 ncu --clock-control none --set full -k regex:DecodeMma --launch-skip 5 --launch-count 1 \
  -o $D/dec_b1 $D/dc --bench --append --filter "$S" > /dev/null 2>&1; echo "ncu rc=$?"
ncu --import $D/dec_b1.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/dec_b1.csv
xz -6 -c $D/dec_b1.csv > "$OUT/dec_b1.csv.xz"
python3 tools/sass_stats.py $D/dec_b1.csv --regions 2>&1 | head -n 45 | cut -c1-150
echo "end t=$((SECONDS - T0))s"

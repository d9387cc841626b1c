#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 27, not run).
# On main after ad47abb (the cluster merge by push), which ran decode_check (--small,
# memcheck, the full list 402/402) and a kernel A/B, but not yet through JAX:
#   1. the package build, then the GPU pytest of the decode step (test_decode.py,
#      test_gpu_large.py, test_examples.py): the push merge inside XLA's programs;
#   2. the model at the cluster-merged points, cuDNN in the same run (small and large
#      B8 ctx1024: session 25 read small B8 ctx1k at 0.958 of cuDNN);
#   3. the trace of the push merge (B1 S1024 and B1 S4096 N32/8): the epilogue's phases
#      against session 27 call 3's (to smem 0.26, weights 0.38, write 0.42, cluster
#      barrier 0.61, slice 0.67, exit barrier 0.83 us at B1 S1024).
# Binaries: .probe/s28/{dctrace,dc,dcpull}.xz (git-ignored; dc = ninja -C build/cuda
# decode_check at main, dcpull = the same at 9bd444b; rebuild dctrace with
#   ninja -C build/trace decode_check && mkdir -p .probe/s28 &&
#   xz -6 -c build/trace/tests/native/decode_check > .probe/s28/dctrace.xz
# where build/trace is configured as pending/README.md's next_s27 section said:
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE).
# Run with carry [".probe/s28"] (about 520 s). Keep $OUT to 8 files or fewer.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
xz -dc .probe/s28/dctrace.xz > /tmp/dctrace; chmod +x /tmp/dctrace
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1"
timeout 60 /tmp/dctrace --bench --trace --append --filter "$S" > "$OUT/trace.log" 2>&1
echo "trace rc=$? t=$((SECONDS - T0))s"
grep -E "cluster ctas.*event|epilogue|CTA total|ep:" "$OUT/trace.log" | cut -c1-170 | head -40
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 200 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_examples.py \
  -q -p no:cacheprovider -n 4 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
# The review's open point: configuration 0 (H256) clusters now fit 1 CTA per SM (the
# receive buffer), so some of its plans merge through the workspace instead. Plans and
# times of H256 shapes, pull (dcpull = main before ad47abb) against push (dc = main).
for v in dcpull dc dc dcpull; do xz -dc .probe/s28/$v.xz > /tmp/$v; chmod +x /tmp/$v; echo "== $v"
  timeout 60 /tmp/$v --bench --append --filter "B1 S32768 N32/8 H256/256,B16 S8192 N32/8 H256/256,B1 S4096 N32/8 H256/256" \
    | grep -A20 "^shape" | grep "^B"; done > "$OUT/bench_h256.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-7s %s\n", v, $0}' "$OUT/bench_h256.log" | sort -s -k2 | sed -E 's/ +/ /g' | cut -c1-200
for cfg in small large; do
  timeout $((580 - SECONDS + T0)) python3 benchmarks/decode_model.py --config $cfg --batch 8 --context 1024 \
    --steps 32 --variants jax_mea,jax-cudnn --rounds 3 > "$OUT/model_$cfg.log" 2>&1
  echo "model $cfg rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg|round" "$OUT/model_$cfg.log" | cut -c1-200
done

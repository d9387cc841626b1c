#!/usr/bin/env bash
# Session 23, call 3: the kernel before (.probe/s23/dc, 2e9d9f6) and after (.probe/s23b/dc,
# 8c8e967) the overflow flags, alternated, polluted and clean; then the model's B1 points
# (carry [".probe/s23", ".probe/s23b"]).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23c; mkdir -p $D
xz -dc .probe/s23/dc.xz > $D/old; xz -dc .probe/s23b/dc.xz > $D/new; chmod +x $D/old $D/new
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in old new new old; do for m in "" --pollute; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k1,2 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout $((330 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 1 --context 4096,32768 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_large.log" 2>&1
echo "model large rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^large" "$OUT/model_large.log" | cut -c1-200
timeout $((575 - SECONDS + T0)) python3 benchmarks/decode_model.py --config 8b --batch 1 --context 32768,4096 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_8b.log" 2>&1
echo "model 8b rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^8b" "$OUT/model_8b.log" | cut -c1-200

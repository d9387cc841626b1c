#!/usr/bin/env bash
# session 16 run 4: issue 15's table at the landed tree (a2a1fc2: tensor-map prefetch,
# packing by waves, the persistent grid), both dtypes, two alternating rounds; the
# --simple / --pingpong checks and kernel_check of the same build meanwhile.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/s16d
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$? ($((SECONDS-T0))s)" >> "$OUT/build.log" ) &
bp=$!
for f in --pingpong --simple; do
  timeout 60 $D/sm90_check --quick $f > /tmp/q.log 2>&1; echo "sm90_check --quick $f rc=$?"; tail -n 1 /tmp/q.log
done
timeout 60 $D/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check --quick rc=$?"; tail -n 1 /tmp/kc.log
wait $bp; tail -n 1 "$OUT/build.log"
timeout $((500 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward --rounds 2 \
  --dtypes bfloat16,float16 --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((470 - SECONDS + T0)) > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A12 "^case" "$OUT/prefill.log"; tar czf "$OUT/pf.tgz" -C "$OUT" pf; rm -rf "$OUT/pf"
echo "end at $((SECONDS - T0))s"

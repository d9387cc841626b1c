#!/usr/bin/env bash
# Session 13, run 5: the decode step without the lengths operand (no per-layer memcpy):
# GPU tests, the model's timeline, the decode_model grid (large config).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=16 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$? ($((SECONDS-T0))s)"
timeout 150 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_score_parity.py tests/test_export.py -q -p no:cacheprovider -n 12 -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? ($((SECONDS-T0))s)"; grep -E "^FAILED|passed|failed" $OUT/pytest.log | tail -n 5
F="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 100 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$F" > $OUT/tl_large.log; grep -E "ms/step|DecodeMma|cudnn_gen|memcpy|all attention" $OUT/tl_large.log
timeout $((570 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --variants jax_mea,jax-cudnn,jax-xla --budget-s $((520 - SECONDS + T0)) --out $OUT 2>&1 | grep -v "$F" > $OUT/model.log; tail -n 13 $OUT/model.log
echo "end $((SECONDS-T0))s"

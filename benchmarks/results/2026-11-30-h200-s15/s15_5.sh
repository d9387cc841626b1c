#!/usr/bin/env bash
# Session 15, run 5: GPU pytest of the forward after the TMA-store epilogue, then issue 15's
# sequence table (512 to 16k, N32 H128 causal and not, bf16 and fp16, two alternating rounds).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? ($((SECONDS-T0))s)"
timeout 200 python3 -m pytest -q -x tests/test_dot_product_attention.py tests/test_score_parity.py \
  tests/test_onnx_conformance.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? ($((SECONDS-T0))s)"; tail -n 3 "$OUT/pytest.log"
timeout $((590 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward --rounds 2 \
  --seqs 512,1024,2048,4096,8192,16384 --only "N32 H128" --dtypes bfloat16,float16 \
  --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((560 - SECONDS + T0)) > "$OUT/prefill_seqs.log" 2>&1
echo "prefill rc=$?"; grep -A16 "^case" "$OUT/prefill_seqs.log"; tar czf "$OUT/pf.tgz" -C "$OUT" pf; rm -rf "$OUT/pf"
echo "end at $((SECONDS - T0))s"

#!/usr/bin/env bash
# Issue 11: the next session's second device call (written in session 22, not run):
# pending 0020 in the model, if next_s23.sh found it correct and faster. Run on a
# tree with 0020 applied (git apply pending/0020-*.patch), no carry; about 420 s.
#   1. the package built with 0020; GPU pytest of the decode step (packed included);
#   2. the large model's points where 0020 changes the split chunks (B8 ctx4096: 4
#      splits, 1152 -> 1025 keys a split; B8 ctx1024: 3 splits; B1 ctx4096: 17
#      splits; B1 ctx32768: 33 splits), with the peers, and B8 ctx4096's kernels per
#      layer (session 22: our kernel 26.95 us, cuDNN's 21.77 + 2.39).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
git apply --check pending/0020-*.patch 2>/dev/null && { echo "0020 is not applied: git apply it first"; exit 2; }
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 120 python3 -m pytest tests/test_decode.py tests/test_examples.py -q -x -p no:cacheprovider -n 8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s"; tail -n 2 "$OUT/pytest.log"
timeout 80 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --steps 32 > "$OUT/timeline.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; grep -A4 "^=== " "$OUT/timeline.log" | cut -c1-150
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 8,1 --context 4096,1024,32768 \
  --steps 32 --budget-s $((500 - SECONDS + T0)) --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model.log" 2>&1
echo "model rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^large" "$OUT/model.log" | cut -c1-200

#!/usr/bin/env bash
# Session 12, device run 4: the blocked float32 CUDA backward on the GPU (test_gradients),
# fwd+bwd through prefill.py, and Nsight Compute of the sm_90a forward vs cuDNN's (H128).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
SEC="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
timeout 100 ncu $SEC -k regex:AttentionFwdSm90Kernel --launch-skip 30 --launch-count 1 $B/sm90_check --bench --filter "B2 S4096 N32 H128 bf16" > $OUT/ncu_sm90.log 2>&1; echo "ncu sm90 rc=$? ($((SECONDS-T0))s)"
wait $bp; tail -n 1 $OUT/build.log
timeout 100 python3 -m pytest tests/test_gradients.py tests/test_cuda_backward_optin.py -p no:cacheprovider -n 14 -q -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED" $OUT/pytest.log | head -n 12
timeout 90 python3 benchmarks/prefill.py --passes fwd+bwd --only "N32 H128" --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out $OUT/pf --budget-s 70 > $OUT/prefill_fb.log 2>&1; echo "prefill fwd+bwd rc=$? ($((SECONDS-T0))s)"; grep -A6 "^case" $OUT/prefill_fb.log
timeout $((400-SECONDS+T0)) ncu $SEC -k regex:"sdpa|fmha|cudnn" --launch-skip 2 --launch-count 1 python3 .probe/ncu_cudnn.py > $OUT/ncu_cudnn.log 2>&1; echo "ncu cudnn rc=$? ($((SECONDS-T0))s)"
for f in ncu_sm90 ncu_cudnn; do echo "== $f"; grep -E "Duration|SM Busy|Executed Ipc A|Issue Slots Busy|Compute \(SM\) Throughput|Memory Throughput|No Eligible|Registers Per|Warp Cycles Per Issued|One or More Eligible|Achieved Occupancy" $OUT/$f.log | head -n 14; done
rm -rf $OUT/pf; echo "end at $((SECONDS-T0))s"

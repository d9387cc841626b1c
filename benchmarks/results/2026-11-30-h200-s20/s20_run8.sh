#!/usr/bin/env bash
# Session 20, call 8 (issue 14): the package built on the device at the tree of call 7
# (the sm_90a backward's 64 x 64 instance), then the JAX gradient tests on the GPU.
# Output (console): build rc=0 at 99s; 33 passed in 30.79s.
T0=$SECONDS; JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1; echo "build rc=$? at $((SECONDS-T0))s"; XLA_PYTHON_CLIENT_PREALLOCATE=false timeout $((225 - SECONDS + T0)) python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py tests/test_cuda_backward_optin.py 2>&1 | tail -3; echo "end at $((SECONDS-T0))s"

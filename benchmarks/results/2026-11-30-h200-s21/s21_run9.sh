#!/usr/bin/env bash
# Session 21, call 9 (issue 11): the large model at ctx 32768 (B1, B8), main at 439cc43
# (the package already built on the warm machine by call 8).
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false; JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/b.log 2>&1; echo build rc=$?; timeout 140 python3 benchmarks/decode_model.py --config large --batch 1,8 --context 32768 --steps 32 --variants jax_mea,jax-cudnn,jax-xla 2>&1 | grep -E "ms/step|n/a" | cut -c1-150

#!/usr/bin/env bash
# Installs jax-mea and its test dependencies into the current Python, building the
# native extension from source (the CUDA kernels too when nvcc is found; set
# JAX_MEA_CUDA=OFF to skip them). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --upgrade pip
# Build requirements first, then build without isolation so the build sees the
# same jax (its FFI headers) that the package runs with.
"$PY" -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.0" "jax>=0.6" cmake ninja
# Editable: tests and examples run from the source tree, whose jax_mea/ would
# otherwise shadow the installed package (and its compiled _ext).
"$PY" -m pip install -q --no-build-isolation -e ".[test]"
"$PY" -c "import jax_mea, jax; print('jax-mea installed; CUDA kernels built:', jax_mea._ffi.built_with_cuda, '; jax', jax.__version__, jax.devices())"

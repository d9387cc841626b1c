#!/usr/bin/env bash
# Installs jax-mea and its test dependencies into the current Python, building the
# native extension from source (the CUDA kernels too when nvcc is found, which takes
# minutes; JAX_MEA_CUDA=OFF skips them, =ON requires them). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --upgrade pip
# Build requirements first, then build without isolation so the build sees the
# same jax (its FFI headers) that the package runs with.
"$PY" -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.0" "jax>=0.6" cmake ninja
# Say what the build will do before it starts: when CMake finds nvcc (CUDACXX, the
# PATH, $CUDA_PATH/bin) the default (AUTO) compiles the CUDA kernels too, GPU or not,
# and that is most of the install's time (CI builds them on CPU-only machines to
# catch compile errors).
mode=${JAX_MEA_CUDA:-AUTO}
nvcc=${CUDACXX:-$(command -v nvcc || true)}
if [ -z "$nvcc" ] && [ -x "${CUDA_PATH:-/nonexistent}/bin/nvcc" ]; then
  nvcc=$CUDA_PATH/bin/nvcc
fi
if [ "$mode" = OFF ]; then
  echo "jax-mea: building the CPU kernels only (JAX_MEA_CUDA=OFF)."
elif [ -n "$nvcc" ]; then
  echo "jax-mea: nvcc found ($nvcc): compiling the CUDA kernels too (JAX_MEA_CUDA=$mode)."
  echo "  That takes minutes (about 1.5 of the 2 install minutes on a 2-core machine)."
  echo "  CPU-only machine? Skip them: JAX_MEA_CUDA=OFF bash tools/install.sh"
elif [ "$mode" = ON ]; then
  echo "jax-mea: JAX_MEA_CUDA=ON but no nvcc found (CUDACXX, PATH, CUDA_PATH): the build" \
       "will stop at CMake's CUDA check." >&2
else
  echo "jax-mea: no nvcc found: building the CPU kernels only."
fi
# Editable: tests and examples run from the source tree, whose jax_mea/ would
# otherwise shadow the installed package (and its compiled _ext).
"$PY" -m pip install -q --no-build-isolation -e ".[test]"
"$PY" -c "import jax_mea, jax; print('jax-mea installed; CUDA kernels built:', jax_mea._ffi.built_with_cuda, '; jax', jax.__version__, jax.devices())"

#!/usr/bin/env bash
# Build llama-cpp-python for a portable x86-64 baseline (AVX2/FMA/F16C), never -march=native.
# Why: pip caches built wheels by version only, and a native build from one CPU crashed another with SIGILL (AMX).
# So: no pip cache (--no-cache-dir), always from source, and only the libraries Keel loads (no mtmd/llava,
# tools, examples, tests or server, and not llama.cpp's `common` library: llama-cpp-python forces it on, yet its
# bindings never load it, and it is 52 of 127 files and the slowest to compile). The flags are recorded beside the
# install so a test can check them.
set -euo pipefail
PY=${1:?usage: install_llama_cpp.sh PYTHON}
VERSION=0.3.36
ARCH=$(uname -m)
case "$ARCH" in
  x86_64|amd64)
    CPU_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF" ;;
  aarch64|arm64)
    CPU_FLAGS="-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8-a" ;;
  *)
    CPU_FLAGS="-DGGML_NATIVE=OFF" ;;
esac
ONLY_LIB="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_SERVER=OFF -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_RPC=OFF \
-DCMAKE_BUILD_TYPE=Release"
export CMAKE_ARGS="$CPU_FLAGS $ONLY_LIB"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
STAMP=$(dirname "$PY")/../.llama-build-flags
WANT="llama-cpp-python==$VERSION $ARCH common=off $CMAKE_ARGS"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$PY" -c "import llama_cpp" 2>/dev/null; then
  echo "llama-cpp-python $VERSION already built here with the portable flags"
  exit 0
fi
echo "building llama-cpp-python $VERSION from source, portable flags: $CMAKE_ARGS"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps --no-binary :all: -d "$work" \
  "llama-cpp-python==$VERSION"
tar -xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
src="$work/llama_cpp_python-$VERSION"
forced='set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)'
if grep -qF "$forced" "$src/CMakeLists.txt"; then
  sed -i "s/set(LLAMA_BUILD_COMMON ON CACHE BOOL/set(LLAMA_BUILD_COMMON OFF CACHE BOOL/" "$src/CMakeLists.txt"
else
  echo "note: llama-cpp-python's CMakeLists no longer forces the common library on; building it as is"
fi
"$PY" -m pip install -q --disable-pip-version-check --no-cache-dir --force-reinstall --no-deps "$src"
echo "$WANT" > "$STAMP"
echo "llama-cpp-python built in $(( $(date +%s) - start )) s"

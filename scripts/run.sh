#!/usr/bin/env bash
# Installs dependencies, builds align, and runs the main job.
# Today that is the model engine on the shared stories260K model; `align demo` (the built-in
# end-to-end alignment run) replaces it when it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
S=../shared/models/stories260K
if [ ! -f "$S/stories260K.bin" ]; then
  echo "run: missing $S/stories260K.bin (../shared must sit beside this checkout)" >&2
  exit 2
fi
build/align info -m "$S/stories260K.bin" -b 32 -T 256
echo
echo "== greedy, llama2.c-compatible:"
build/align generate -m "$S/stories260K.bin" -z "$S/tok512.bin" -t 0 -n 128 -i "Once upon a time" --compat llama2c
echo
echo "== 4 samples decoded as one batch:"
build/align generate -m "$S/stories260K.bin" -z "$S/tok512.bin" -t 0.8 -p 0.95 -s 7 -n 64 -i "Lily" --num-samples 4

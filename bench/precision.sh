#!/usr/bin/env bash
# Reduced precision: perplexity and speed of stories260K on TinyStories validation text with
# the decoder's weights as f32 / bf16 / int8 and its KV cache as f32 / f16, then the decoding
# speed per weight type of a random model of stories42M's shape (58M parameters), where the
# weights' bytes matter.  bench/bench_precision.c says how the windows are cut and scored.
#
# usage: bench/precision.sh [BUILD_DIR]     (default: build)
#   env: THREADS (default 2), REPS (default 3), MAX_WINDOWS (default 0 = every window)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared"
for f in "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" \
         "$shared/corpora/tinystories/TinyStories-validation-head.txt"; do
  [ -f "$f" ] || { echo "missing $f (../shared beside the checkout)"; exit 2; }
done
[ -x "$build/bench_precision" ] || { echo "build first: cmake --build $build (bench_precision missing)"; exit 2; }
export OMP_NUM_THREADS="${THREADS:-${OMP_NUM_THREADS:-2}}"
echo "threads: $OMP_NUM_THREADS"
"$build/bench_precision" "$shared/corpora/tinystories/TinyStories-validation-head.txt" \
  --model "$shared/models/stories260K/stories260K.bin" --tokenizer "$shared/models/stories260K/tok512.bin" \
  --window 256 --batch 32 --reps "${REPS:-3}" --max-windows "${MAX_WINDOWS:-0}"

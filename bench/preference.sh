#!/usr/bin/env bash
# Preference learning (issue 5), measured in one run:
#  1. A reward model trained on HH-RLHF (../shared/data/safety/hh_rlhf, harmless-base,
#     2,312 pairs; the shared prefix of each transcript is the prompt) with a deterministic
#     80/20 split (seed 42): held-out pairwise accuracy before and after training.  The
#     model is stories260K plus a score head: a 260K-parameter TinyStories model, so the
#     figure shows the pipeline working on real preferences, not a strong judge.
#  2. DPO step time with cached reference log-probs against a plain forward + backward over
#     the same chosen + rejected rows (bench_dpo.c), as a ratio (target at most 1.1x; the
#     issue measured 1.2-1.5x for PyTorch/TRL here).
#
# usage: bench/preference.sh [BUILD_DIR]     (default: build)
#        RM_EPOCHS=2 bench/preference.sh     (more reward-model training)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared"
hh="$shared/data/safety/hh_rlhf/harmless-base/test.jsonl.gz"
model="$shared/models/stories260K/stories260K.bin"
tok="$shared/models/stories260K/tok512.bin"
for f in "$hh" "$model" "$tok"; do
  [ -f "$f" ] || { echo "missing $f (../shared beside the checkout)"; exit 2; }
done
[ -x "$build/align" ] && [ -x "$build/bench_dpo" ] || { echo "build first: cmake --build $build"; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

echo "== reward model on HH-RLHF (80/20 split, seed 42)"
t0=$(date +%s)
"$build/align" rm train --data "$hh" --held-out 0.2 --seed 42 -m "$model" -z "$tok" --out "$tmp/rm" \
  --epochs "${RM_EPOCHS:-1}" --seq-len 256 --batch-size 8 --lr 3e-4 --eval-every 1000000 --eval-batches 1000 \
  --save-every 0 --quiet
t1=$(date +%s)
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }
before=$(grep '"step":0,' "$tmp/rm/metrics.jsonl" | grep eval_accuracy | field eval_accuracy)
after=$(grep eval_accuracy "$tmp/rm/metrics.jsonl" | tail -1 | field eval_accuracy)
pairs=$(grep -c . <(zcat "$hh"))
echo "pairs: $pairs (train $((pairs - (pairs * 2 + 5) / 10)), held out $(((pairs * 2 + 5) / 10)))"
printf 'held-out pairwise accuracy: %.4f before training (untrained head), %.4f after (%d s)\n' "$before" "$after" $((t1 - t0))

echo "== DPO step time (cached reference) vs plain forward + backward"
"$build/bench_dpo" "$hh" "$tok" 256 4 4 688 4 256 12

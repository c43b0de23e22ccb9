#!/usr/bin/env bash
# Pretraining parity: `align pretrain` vs the PyTorch reference trainer (bench/torch_train.py)
# on the same run directory: same initial weights (OUT/init), same token cache files
# (OUT/data.json), same hyperparameters (OUT/train_args.json).  Prints both final eval_loss
# values and their difference (acceptance: within 0.02 nats/token), how close the per-step
# losses stay, and the wall time of each side.
#
# Model: stories260K's shape (dim 64, 5 layers, 8 heads, 4 kv heads, hidden 172, vocab 512,
# tied embeddings), trained from scratch on the first 2 MiB of TinyStories with the
# stories260K tokenizer: batch 16 x 256 tokens, 300 steps (1.2M tokens), cosine schedule.
#
# usage: bench/pretrain.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, a temporary directory)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared"
data="$shared/corpora/tinystories/TinyStories-train-first2MiB.txt"
tok="$shared/models/stories260K/tok512.bin"
py=/usr/bin/python3
for f in "$data" "$tok"; do
  [ -f "$f" ] || { echo "missing $f (../shared beside the checkout)"; exit 2; }
done
[ -x "$build/align" ] || { echo "build first: cmake --build $build (align missing)"; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "PyTorch missing: ALIGN_BENCH_DEPS=1 scripts/setup.sh"; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
out="${2:-$tmp/run}"
if [ -e "$out" ]; then echo "$out exists: give a new directory"; exit 2; fi
steps="${PRETRAIN_STEPS:-300}"   # PRETRAIN_LR overrides the peak lr (1e-3)
cat > "$tmp/cfg.json" <<EOF
{"model": {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5,
           "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": true},
 "batch_size": 16, "seq_len": 256, "grad_accum": 1, "steps": $steps,
 "lr": ${PRETRAIN_LR:-1e-3}, "min_lr_ratio": 0.1, "warmup": 30, "schedule": "cosine",
 "weight_decay": 0.1, "grad_clip": 1.0,
 "eval_every": 100, "eval_batches": 20, "save_every": 0, "seed": 1337}
EOF

echo "align pretrain: $steps steps of 16 x 256 tokens, $OMP_NUM_THREADS threads"
t0=$(date +%s.%N)
"$build/align" pretrain --data "$data" --tokenizer "$tok" --config "$tmp/cfg.json" --out "$out" --quiet
t1=$(date +%s.%N)
echo "PyTorch reference (bench/torch_train.py) on $out"
"$py" "$here/bench/torch_train.py" --run-dir "$out" --out "$out/torch_metrics.jsonl" --compare \
  --threads "$OMP_NUM_THREADS" > "$tmp/compare.txt"
t2=$(date +%s.%N)
sed 's/^RESULT /  /' "$tmp/compare.txt"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "  wall time: align %.1f s, PyTorch %.1f s (incl. start-up, tokenization, evals)\n", b - a, c - b }'
diff=$(sed -n 's/^RESULT final eval_loss .* diff=\([-+0-9.e]*\)$/\1/p' "$tmp/compare.txt")
[ -n "$diff" ] || { echo "no final eval_loss to compare"; exit 1; }
awk -v d="$diff" 'BEGIN {
  ad = (d < 0 ? -d : d) + 0
  printf "final eval_loss |align - PyTorch| = %.2e nats/token (acceptance: < 0.02): %s\n", ad,
         ad < 0.02 ? "PASS" : "FAIL"
  exit ad < 0.02 ? 0 : 1 }'

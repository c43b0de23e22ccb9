#!/usr/bin/env bash
# Data-parallel SFT (docs/distributed.md, "What scales"): the same 20 steps of SFT on
# stories260K (--batch-size 8 --seq-len 128 --grad-accum 4) as one process of 2 threads
# and as 2 ranks of 1 thread under mpirun, on this machine's 2 cores.  Prints each run's
# tokens/s (the mean of metrics.jsonl's tokens_per_second over steps 6-20), their ratio,
# the last step's loss of both (they must agree to the printed digits), and the 2-rank
# run's own line on the bytes and time spent in the gradient sums.
#
# usage: bench/dist.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$here/build}" && pwd)"
S="${ALIGN_SHARED_DIR:-$here/../shared}/models/stories260K"
[ -f "$S/stories260K.bin" ] || { echo "missing $S/stories260K.bin (../shared beside the checkout)"; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun missing: apt-get install openmpi-bin libopenmpi-dev"; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for i in $(seq 0 63); do
  printf '{"prompt": "Tell me about the cat number %d.", "completion": "The cat played with the ball all day long and then slept."}\n' "$i"
done > "$tmp/sft.jsonl"
args=(sft --data "$tmp/sft.jsonl" -m "$S/stories260K.bin" -z "$S/tok512.bin" --seq-len 128 --batch-size 8
      --grad-accum 4 --steps 20)
OMP_NUM_THREADS=2 "$build/align" "${args[@]}" --out "$tmp/one" >/dev/null 2>&1
OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$build/align" "${args[@]}" --out "$tmp/two" 2>"$tmp/two.log" >/dev/null
rate() { grep '"loss"' "$1/metrics.jsonl" | sed -n 's/.*"step":\([0-9]*\),.*"tokens_per_second":\([0-9.]*\).*/\1 \2/p' |
         awk '$1 >= 6 {s += $2; n++} END {printf "%.0f", s / n}'; }
loss() { grep '"step":20,"loss"' "$1/metrics.jsonl" | sed 's/.*"loss":\([0-9.]*\).*/\1/'; }
r1=$(rate "$tmp/one") r2=$(rate "$tmp/two")
echo "SFT, stories260K, B8 x T128 x accum 4, 20 steps (tokens/s, mean of steps 6-20):"
echo "  1 process, 2 threads:  $r1   loss at step 20: $(loss "$tmp/one")"
echo "  2 ranks, 1 thread each: $r2   loss at step 20: $(loss "$tmp/two")"
awk -v a="$r1" -v b="$r2" 'BEGIN {printf "  2 ranks / 1 process: %.2fx\n", b / a}'
grep "ranks; summed" "$tmp/two.log" | sed 's/^/  /'

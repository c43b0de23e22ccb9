#!/usr/bin/env bash
# Generation throughput: align vs llama2.c run.c on stories260K, measured in one run.
#
# run.c is the peer.  Its source is not part of align: point LLAMA2C_DIR at a checkout
# of karpathy/llama2.c (a directory holding run.c).  It is built here twice: with
# -Ofast -march=native (the flags the issue names) and with -O3.  Without it, only
# align's figures are printed.
#
# usage: bench/generate.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared/models/stories260K"
[ -f "$shared/stories260K.bin" ] || { echo "missing $shared/stories260K.bin (../shared beside the checkout)"; exit 2; }
[ -x "$build/bench_generate" ] || { echo "build first: cmake --build $build (bench_generate missing)"; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

align_out="$("$build/bench_generate" "$shared/stories260K.bin" 32)"
echo "$align_out" | grep -v '^RESULT'
single=$(echo "$align_out" | sed -n 's/^RESULT single=\([0-9.]*\) .*/\1/p')
batched=$(echo "$align_out" | sed -n 's/^RESULT .*batched=\([0-9.]*\)/\1/p')

peer_dir="${LLAMA2C_DIR:-}"
if [ -z "$peer_dir" ] || [ ! -f "$peer_dir/run.c" ]; then
  echo "peer: set LLAMA2C_DIR to a llama2.c checkout to measure run.c in this run"
  exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# run.c reports tokens/s with a millisecond clock over ~12 ms, so take the median of many runs.
measure() {
  local bin="$1"
  for _ in $(seq 1 25); do
    "$bin" "$shared/stories260K.bin" -z "$shared/tok512.bin" -t 0 -n 256 2>&1 >/dev/null |
      sed -n 's/^achieved tok\/s: \([0-9.]*\)/\1/p'
  done | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
for flags in "-Ofast -march=native" "-O3"; do
  gcc $flags -o "$tmp/run" "$peer_dir/run.c" -lm
  tps=$(measure "$tmp/run")
  printf 'llama2.c run.c (%s), single stream: %.0f tok/s\n' "$flags" "$tps"
  awk -v a="$single" -v b="$batched" -v p="$tps" -v f="$flags" 'BEGIN {
    printf "  ratio single-stream align / run.c (%s): %.2fx (target 1.5x)\n", f, a / p;
    printf "  ratio batched-32 align / run.c single (%s): %.2fx (target 10x)\n", f, b / p }'
done

#!/usr/bin/env bash
# Generation throughput: align vs llama2.c run.c on stories260K, measured in one run.
#
# Both sides get the same statistic: the median of every timed run, pooled over ROUNDS
# rounds in which align and run.c take turns, so a host that speeds up or slows down
# during the script moves both alike.  Each workload decodes STEPS positions from BOS
# (run.c's `-t 0 -n STEPS`); run.c times a whole generation with its millisecond clock,
# so STEPS stays long enough (>= 256: 18 ms or more) and every figure is a median of
# 3 x ROUNDS runs.
#
# Printed: single-stream align (float cache) / run.c, batched 32 streams / run.c single,
# for the float cache and the f16 cache, and `align generate --num-samples 32 -t 0.8
# -p 0.9` (the path users run: continuous batching, sampling with top-p, the stop checks)
# against the batched figure.  The CLI reports two rates: its steps alone (the part that
# grows with the tokens, which bench_generate's loop also times) and the whole call,
# which adds making the decoder: allocating and first touching its KV cache and weight
# copies, a fixed cost of a few milliseconds that page faults dominate on a VM (the
# batched benchmark makes its decoder before its clock starts).  The target is set on
# the steps; both are printed.
#
# Every timed process (bench_generate, align generate, run.c) starts through bench_warm,
# which first keeps every core busy for WARM_MS milliseconds: on a VM whose vCPUs were
# idle, the first step of a fresh two-thread process stalls 4-8 ms in some runs, which a
# 45 ms `align generate` pays in full while bench_generate's repetitions after its warm-up
# do not.  WARM_MS=0 measures from idle.
#
# run.c is the peer.  Its source is not part of align: point LLAMA2C_DIR at a checkout
# of karpathy/llama2.c (a directory holding run.c).  It is built here with
# -Ofast -march=native (the flags the issue names) and with -O3.  Without it, only
# align's figures are printed.
#
# usage: bench/generate.sh [BUILD_DIR]     (default: build)
#   env: LLAMA2C_DIR, ROUNDS (default 7), STEPS (default "256 512"), WARM_MS (default 50)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared/models/stories260K"
[ -f "$shared/stories260K.bin" ] || { echo "missing $shared/stories260K.bin (../shared beside the checkout)"; exit 2; }
for b in bench_generate bench_warm align; do
  [ -x "$build/$b" ] || { echo "build first: cmake --build $build ($b missing)"; exit 2; }
done
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
rounds="${ROUNDS:-7}"
steps_list="${STEPS:-256 512}"
warm_ms="${WARM_MS:-50}"
warm() { "$build/bench_warm" "$(awk -v m="$warm_ms" 'BEGIN {print m / 1000}')" "$@"; }
model="$shared/stories260K.bin" tok="$shared/tok512.bin"

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
peer_dir="${LLAMA2C_DIR:-}"
have_peer=0
if [ -n "$peer_dir" ] && [ -f "$peer_dir/run.c" ]; then
  gcc -Ofast -march=native -o "$tmp/run_ofast" "$peer_dir/run.c" -lm
  gcc -O3 -o "$tmp/run_o3" "$peer_dir/run.c" -lm
  have_peer=1
else
  echo "peer: set LLAMA2C_DIR to a llama2.c checkout to measure run.c in this run"
fi

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# SAMPLES lines of bench_generate: "SAMPLES single a b c" -> one figure per line in FILE
samples() { sed -n "s/^SAMPLES $2 //p" "$1" | tr ' ' '\n'; }

for steps in $steps_list; do
  : > "$tmp/f32"; : > "$tmp/f16"; : > "$tmp/ofast"; : > "$tmp/o3"
  for f in gen genstep; do for kv in 32 16; do : > "$tmp/$f${kv}warm"; : > "$tmp/$f${kv}idle"; done; done
  for r in $(seq 1 "$rounds"); do
    warm "$build/bench_generate" "$model" 32 "$steps" 3 --generate > "$tmp/out"
    cat "$tmp/out" >> "$tmp/f32"
    warm "$build/bench_generate" "$model" 32 "$steps" 3 --kv-f16 --generate > "$tmp/out"
    cat "$tmp/out" >> "$tmp/f16"
    for kv in f32 f16; do
      for k in 1 2 3; do
        # a warmed start (the figures the target is set on), then the same run from idle
        for start in warm idle; do
          launch=$([ "$start" = warm ] && echo warm || echo env)
          $launch "$build/align" generate -m "$model" -z "$tok" --num-samples 32 -t 0.8 -p 0.9 -n $((steps - 1)) \
            -s "$((3 * r + k))" --kv-cache "$kv" >/dev/null 2>"$tmp/genout"
          sed -n 's/.*(\([0-9.]*\) tok\/s over.*/\1/p' "$tmp/genout" >> "$tmp/gen${kv#f}$start"
          sed -n 's/.*; steps \([0-9.]*\) tok\/s after.*/\1/p' "$tmp/genout" >> "$tmp/genstep${kv#f}$start"
        done
      done
    done
    if [ "$have_peer" = 1 ]; then
      for k in 1 2 3; do
        warm "$tmp/run_ofast" "$model" -z "$tok" -t 0 -n "$steps" 2>&1 >/dev/null |
          sed -n 's/^achieved tok\/s: \([0-9.]*\)/\1/p' >> "$tmp/ofast"
        warm "$tmp/run_o3" "$model" -z "$tok" -t 0 -n "$steps" 2>&1 >/dev/null |
          sed -n 's/^achieved tok\/s: \([0-9.]*\)/\1/p' >> "$tmp/o3"
      done
    fi
  done
  single=$(samples "$tmp/f32" single | median)
  b32=$(samples "$tmp/f32" batched | median)
  b16=$(samples "$tmp/f16" batched | median)
  n=$((3 * rounds))
  echo "== $steps positions from BOS, medians of $n runs each (align and run.c interleaved; each process started on cores warmed for $warm_ms ms) =="
  printf 'align single stream (float cache):          %8.0f tok/s\n' "$single"
  printf 'align batched 32 streams, float cache:      %8.0f tok/s aggregate\n' "$b32"
  printf 'align batched 32 streams, f16 cache:        %8.0f tok/s aggregate\n' "$b16"
  for kv in 32 16; do
    b=$([ "$kv" = 32 ] && echo "$b32" || echo "$b16")
    name=$([ "$kv" = 32 ] && echo "float cache" || echo "f16 cache  ")
    f=$([ "$kv" = 32 ] && echo f32 || echo f16)
    awk -v g="$(samples "$tmp/$f" generate | median)" -v b="$b" -v name="$name" 'BEGIN {
      printf "al_generate with the same sampling, in one process (bench_generate --generate), %s: %.0f tok/s = %.0f%% of batched\n", name, g, 100 * g / b }'
    for start in warm idle; do
      s=$(median < "$tmp/genstep$kv$start") g=$(median < "$tmp/gen$kv$start")
      awk -v g="$g" -v s="$s" -v b="$b" -v n="$n" -v name="$name" -v start="$start" -v ms="$warm_ms" 'BEGIN {
        if (start == "warm")
          printf "align generate --num-samples 32 -t 0.8 -p 0.9, %s: steps %.0f tok/s = %.0f%% of batched (target 90%%); whole call %.0f tok/s = %.0f%% (medians of %d)\n", name, s, 100 * s / b, g, 100 * g / b, n
        else if (ms > 0)
          printf "  the same without the warm-up:                      steps %.0f tok/s = %.0f%%; whole call %.0f tok/s = %.0f%%\n", s, 100 * s / b, g, 100 * g / b }'
    done
  done
  if [ "$have_peer" = 1 ]; then
    for flags in ofast o3; do
      p=$(median < "$tmp/$flags")
      label=$([ "$flags" = ofast ] && echo "-Ofast -march=native" || echo "-O3")
      printf 'llama2.c run.c (%s), single stream: %.0f tok/s\n' "$label" "$p"
      awk -v a="$single" -v b="$b32" -v h="$b16" -v p="$p" -v f="$label" 'BEGIN {
        printf "  single-stream align / run.c (%s): %.2fx (target 2.5x)\n", f, a / p;
        printf "  batched-32 align / run.c single (%s): float cache %.2fx, f16 cache %.2fx (target 10x)\n", f, b / p, h / p }'
    done
  fi
done
# The cold start bench_warm guards against, shown: the first decode step of 32 streams in
# a fresh process, FIRST_RUNS times from idle cores and as many after the warm-up.
first_runs="${FIRST_RUNS:-10}"
echo "== the first decode step of a fresh process (32 streams, $first_runs processes each) =="
for start in idle warm; do
  launch=$([ "$start" = warm ] && echo warm || echo env)
  for _ in $(seq 1 "$first_runs"); do
    $launch "$build/bench_generate" "$model" 32 256 --first-step
  done > "$tmp/first"
  later=$(sed -n 's/.*later_median_ms=\([0-9.]*\).*/\1/p' "$tmp/first" | median)
  sed -n 's/.*first_ms=\([0-9.]*\) .*/\1/p' "$tmp/first" |
    awk -v start="$start" -v ms="$warm_ms" -v later="$later" '{ n++; if ($1 > 1) stalls++; if ($1 > worst) worst = $1 }
      END {
        label = start == "warm" ? "after the " ms " ms warm-up:" : "from idle cores:"
        printf "%-26s %d of %d first steps over 1 ms (the longest %.2f ms); a later step %.3f ms (median)\n",
          label, stalls, n, worst, later }'
done
echo "== prompt prefill: one batch of rows against single steps (one sequence) =="
"$build/bench_generate" "$model" --prefill

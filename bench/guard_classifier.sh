#!/bin/sh
# The harm classifier's held-out precision/recall/F1, its false-positive rate on benign
# prompts that sound dangerous, and its scoring throughput (one thread).
#   bench/guard_classifier.sh [BUILD_DIR]      (default build)
# Set SIZES=1 to also compare hash-table sizes 2^14..2^22.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
cmake --build "$build" --target bench_guard_classifier -j2 >/dev/null
if [ "${SIZES:-0}" = 1 ]; then
    OMP_NUM_THREADS=1 "$build/bench_guard_classifier" "$here/data/guard_contrast_heldout.txt" --sizes
fi
OMP_NUM_THREADS=1 "$build/bench_guard_classifier" "$here/data/guard_contrast_heldout.txt"

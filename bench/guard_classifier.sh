#!/bin/sh
# The harm classifier's held-out precision/recall/F1, its false-positive rate on benign
# prompts that sound dangerous, and its scoring throughput (one thread).
#   bench/guard_classifier.sh [BUILD_DIR]      (default build)
# Set SIZES=1 to also compare hash-table sizes 2^14..2^22, COMPARE=1 to compare with a tiny
# transformer on the engine (bench_guard_transformer.c).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
cmake --build "$build" --target bench_guard_classifier -j2 >/dev/null
if [ "${SIZES:-0}" = 1 ]; then
    OMP_NUM_THREADS=1 "$build/bench_guard_classifier" "$here/data/guard_contrast_heldout.txt" --sizes
fi
OMP_NUM_THREADS=1 "$build/bench_guard_classifier" "$here/data/guard_contrast_heldout.txt"
# COMPARE=1: the choice the issue asks for, measured: the same split, the n-gram model
# against a tiny transformer on the engine (stories260K + a score head), ~1-2 minutes.
if [ "${COMPARE:-0}" = 1 ]; then
    cmake --build "$build" --target bench_guard_transformer -j2 >/dev/null
    OMP_NUM_THREADS=2 "$build/bench_guard_transformer" "$here/../../shared" "$here/data/guard_contrast_heldout.txt" \
        "${EPOCHS:-3}"
fi

#!/usr/bin/env bash
# Guard rules + PII speed (bench/bench_guard.c): MB/s on mixed English text, one thread,
# and the p99 latency of a 2 KB message with every part-A rail on.  Targets (issue 6):
# >= 200 MB/s per core, p99 < 2 ms.  MB/s are per second of the thread's CPU time (the
# per-core figure, steady while other jobs share the machine), wall clock in brackets.
# The text is ../shared's TinyStories with PII, encodings, profanity and the odd
# injection mixed in (seeded, so every run is the same).
#
# usage: bench/guard.sh [BUILD_DIR] [MiB]     (defaults: build, 16)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
[ -x "$build/bench_guard" ] || { echo "build first: cmake --build $build --target bench_guard"; exit 2; }
"$build/bench_guard" "${2:-16}"

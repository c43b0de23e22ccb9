#!/bin/sh
# Builds the libFuzzer targets with clang in their own build directory and runs each one
# for a while, starting from the seed corpora in fuzz/corpus/<target>/ (new inputs the
# fuzzer finds go to a scratch copy, so the checkout stays as it is).
# The seed is fixed, so a run is repeatable: CI tries the same inputs every time and fails
# only on a change of ours, never on luck. Explore with another FUZZ_SEED and more time.
#   FUZZ_RUNS     inputs per target (default 50000; 0 = no limit but time)
#   FUZZ_SECONDS  time cap per target (default 60)
#   FUZZ_SEED     libFuzzer's -seed (default 1)
#   FUZZ_BUILD    build directory (default build-fuzz)
#   FUZZ_JOBS     parallel compile jobs (default 2)
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-50000}
seed=${FUZZ_SEED:-1}
limit=""
[ "$runs" -gt 0 ] && limit="-runs=$runs"
build=${FUZZ_BUILD:-build-fuzz}
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 2; }
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DALIGN_FUZZ=ON \
      -DALIGN_WERROR=OFF -DALIGN_NATIVE=OFF >/dev/null
targets=$(ls fuzz/fuzz_*.c | sed 's|fuzz/||; s|\.c$||')
cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target $targets
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in $targets; do
    mkdir -p "$scratch/$t"
    echo "== $t (seed $seed, $runs runs, at most ${seconds}s)"
    # -max_len above the fuzz policies' size limits, so oversize inputs are tried too
    if ! "$build/$t" -seed="$seed" $limit -max_total_time="$seconds" -max_len=8192 -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 "$scratch/$t" "fuzz/corpus/$t" 2>"$scratch/$t.log"; then
        tail -n 60 "$scratch/$t.log" >&2
        echo "fuzz.sh: $t failed (crash input above)" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$scratch/$t.log" || true
    fi
done
exit $status

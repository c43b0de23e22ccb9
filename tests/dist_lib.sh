# What tests/test_dist_train.sh and tests/test_dist_rl.sh share; sourced with the script's
# arguments.  Skips (exit 77) without mpirun or stories260K; sets BUILD, SHARED, MODEL, TOK,
# ALIGN, COMPARE, MPIRUN, TOL and the MPI environment, makes and enters a scratch DIR
# (removed on exit), and defines fail, check and kill_rank1.

BUILD=${1:?usage: $(basename "$0") BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 2 # absolute: the tests run in DIR
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
SHARED=$(cd "${ALIGN_SHARED_DIR:-$(dirname "$0")/../../shared}" 2>/dev/null && pwd) ||
    { echo "skip: no shared directory (ALIGN_SHARED_DIR)"; exit 77; }
TOK=$SHARED/models/stories260K/tok512.bin
MODEL=$SHARED/models/stories260K/stories260K.bin
for f in "$TOK" "$MODEL"; do
    [ -e "$f" ] || { echo "skip: $f not found"; exit 77; }
done
ALIGN=$BUILD/align
COMPARE=$BUILD/dist_compare
# OpenMPI's own allocations look like leaks to AddressSanitizer
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# one node, no network probing: keeps mpirun quick and quiet in containers
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="mpirun --oversubscribe"
TOL=1e-6

DIR=$(mktemp -d "${TMPDIR:-/tmp}/align-dist.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check WHAT COMMAND...: runs a comparison, prints its figures
    local what=$1
    shift
    local out
    out=$("$@" 2>&1)
    local rc=$?
    echo "  $what: $out"
    [ $rc -eq 0 ] || fail "$what"
}

# kill_rank1 OUT TRAIN-ARGS... -- RESUME-ARGS...: trains on 2 ranks into OUT (checkpoints
# every 2 steps), kills rank 1 after the first checkpoint, expects mpirun to fail and say a
# process was killed, then resumes on 1 process with RESUME-ARGS --steps (last step + 2).
kill_rank1() {
    local out=$1 train=() resume=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do train+=("$1"); shift; done
    shift
    resume=("$@")
    echo "kill:"
    $MPIRUN -np 2 "$ALIGN" "${train[@]}" --steps 100000 --save-every 2 --keep 2 --out "$out" >"$out.log" 2>&1 &
    local job=$!
    for _ in $(seq 1 300); do # up to 30 s for the first checkpoint
        [ -e "$out/checkpoints/latest" ] && break
        sleep 0.1
    done
    # rank 1: the align process whose environment says OMPI_COMM_WORLD_RANK=1, a child of this mpirun
    local victim="" p
    for p in $(pgrep -P "$(pgrep -d, -P $job 2>/dev/null || echo $job)" 2>/dev/null) $(pgrep -P $job 2>/dev/null); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
            victim=$p
            break
        fi
    done
    if [ -z "$victim" ] || [ ! -e "$out/checkpoints/latest" ]; then
        fail "kill: no checkpoint or no rank 1 to kill"
        kill $job 2>/dev/null
    else
        kill -KILL "$victim"
    fi
    wait $job
    local rc=$?
    echo "  mpirun exit status $rc; its report:"
    grep -iE "rank|signal|killed|abort" "$out.log" | head -5 | sed 's/^/    /'
    [ $rc -ne 0 ] || fail "kill: mpirun exited 0"
    grep -qiE "signal 9|killed" "$out.log" || fail "kill: mpirun did not say a process was killed"
    local latest step
    latest=$(readlink "$out/checkpoints/latest" 2>/dev/null || cat "$out/checkpoints/latest")
    step=$(sed -n 's/.*step_0*\([0-9][0-9]*\).*/\1/p' <<<"$latest")
    "$ALIGN" "${resume[@]}" --steps $((${step:-0} + 2)) >"$out.resume.log" 2>&1 ||
        { fail "kill: the last checkpoint (step ${step:-?}) does not resume"; cat "$out.resume.log"; }
    [ -d "$out/final" ] && echo "  resumed from step $step to $((step + 2)) on 1 rank"
}

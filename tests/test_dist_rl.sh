#!/usr/bin/env bash
# Data-parallel online RL under mpirun (docs/distributed.md, "Online RL"): the same global
# batch on 2 ranks and on 1 gives the same rewards and losses (to 1e-6) and the same
# weights (to 1e-6) after 5 steps, for GRPO (full and LoRA, several loss aggregations,
# minibatches), RLOO, REINFORCE++ and PPO; the first step's dump is byte-identical; a run
# resumes on another rank count; a killed rank stops the job and leaves the last checkpoint
# resumable; too many ranks for the prompts is refused with the rank named.
# Usage: test_dist_rl.sh BUILD_DIR.  Exit 77 (skip) without mpirun.
set -u
BUILD=${1:?usage: test_dist_rl.sh BUILD_DIR}
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
SHARED=${ALIGN_SHARED_DIR:-$(dirname "$0")/../../shared}
ALIGN=$BUILD/align
COMPARE=$BUILD/dist_compare_rl
TOK=$SHARED/models/stories260K/tok512.bin
MODEL=$SHARED/models/stories260K/stories260K.bin
for f in "$TOK" "$MODEL"; do
    [ -e "$f" ] || { echo "skip: $f not found"; exit 77; }
done
# OpenMPI's own allocations look like leaks to AddressSanitizer
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# one node, no network probing: keeps mpirun quick and quiet in containers
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="mpirun --oversubscribe"
TOL=1e-6

DIR=$(mktemp -d "${TMPDIR:-/tmp}/align-dist-rl.XXXXXX")
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
run1() { # run1 NAME ARGS...: one process
    local name=$1
    shift
    "$ALIGN" "$@" --out "$name" >"$name.log" 2>&1 || { fail "$name"; cat "$name.log"; }
}
runN() { # runN N NAME ARGS...: N ranks
    local n=$1 name=$2
    shift 2
    $MPIRUN -np "$n" "$ALIGN" "$@" --out "$name" >"$name.log" 2>&1 || { fail "$name"; cat "$name.log"; }
}
# both runs of a pair: the same flags on 1 rank and on 2; WEIGHTS=0 for LoRA (adapters)
pair() { # pair NAME ALGO ARGS...
    local name=$1
    shift
    run1 "$name.1" "$@"
    runN 2 "$name.2" "$@"
    echo "$name:"
    check "metrics" "$COMPARE" metrics "$name.1/metrics.jsonl" "$name.2/metrics.jsonl" $TOL
    if [ "${WEIGHTS:-1}" = 1 ]; then
        check "weights" "$COMPARE" weights "$name.1/final" "$name.2/final" $TOL
    fi
}

printf '%s\n' '{"prompt": "Once upon a time"}' '{"prompt": "One day"}' '{"prompt": "Tom went"}' \
    '{"prompt": "The cat"}' '{"prompt": "Lily saw"}' '{"prompt": "There was a dog"}' >prompts.jsonl
# 4 prompts x 4 generations per step, 5 steps.  The trainer's default learning rate: Adam
# divides each gradient by its own size, so a gradient element near zero, whose last bits
# depend on the summation order, moves its weight by up to ~lr / 30 (docs/distributed.md).
COMMON=(--data prompts.jsonl -m "$MODEL" -z "$TOK" --reward 'regex:\bTom\b' --reward length:32
    --prompts-per-step 4 --num-generations 4 --max-completion-length 48 --steps 5 --seed 7 --lr 1e-5 --quiet)

pair grpo grpo "${COMMON[@]}" --dump-steps 1
check "step 1 dump" "$COMPARE" same grpo.1/dumps/step_1.jsonl grpo.2/dumps/step_1.jsonl
pair grpo_dapo grpo "${COMMON[@]}" --loss-type dapo --scale-rewards batch --epochs 2 --minibatches 2
WEIGHTS=0 pair grpo_lora grpo "${COMMON[@]}" --loss-type bnpo --lora --lr 1e-4
pair rloo rloo "${COMMON[@]}"
pair reinforce reinforce "${COMMON[@]}" --baseline
pair ppo ppo "${COMMON[@]}" --epochs 2 --minibatches 2

# resume on other rank counts: 2 ranks to the step-2 checkpoint, 3 ranks (an uneven split
# of the 4 prompts) from there, against the uninterrupted one-process run
runN 2 resume grpo "${COMMON[@]}" --dump-steps 1 --steps 3 --save-every 2
runN 3 resume grpo "${COMMON[@]}" --dump-steps 1 --resume
echo "resume 2 -> 3 ranks:"
check "metrics" "$COMPARE" metrics grpo.1/metrics.jsonl resume/metrics.jsonl $TOL
check "weights" "$COMPARE" weights grpo.1/final resume/final $TOL

# a rank killed mid-run: the job stops with an error, the last checkpoint is intact and resumes
echo "kill:"
$MPIRUN -np 2 "$ALIGN" grpo "${COMMON[@]}" --steps 100000 --save-every 2 --keep 2 --out killed >killed.log 2>&1 &
job=$!
for _ in $(seq 1 300); do # up to 30 s for the first checkpoint
    [ -e killed/checkpoints/latest ] && break
    sleep 0.1
done
# rank 1: the align process whose environment says OMPI_COMM_WORLD_RANK=1, a child of this mpirun
victim=""
for p in $(pgrep -P "$(pgrep -d, -P $job 2>/dev/null || echo $job)" 2>/dev/null) $(pgrep -P $job 2>/dev/null); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
        victim=$p
        break
    fi
done
if [ -z "$victim" ] || [ ! -e killed/checkpoints/latest ]; then
    fail "kill: no checkpoint or no rank 1 to kill"
    kill $job 2>/dev/null
else
    kill -KILL "$victim"
fi
wait $job
rc=$?
echo "  mpirun exit status $rc; its report:"
grep -iE "rank|signal|killed|abort" killed.log | head -3 | sed 's/^/    /'
[ $rc -ne 0 ] || fail "kill: mpirun exited 0"
grep -qiE "signal 9|killed" killed.log || fail "kill: mpirun did not say a process was killed"
step=$(sed -n 's/.*step_0*\([0-9][0-9]*\).*/\1/p' <<<"$(readlink killed/checkpoints/latest 2>/dev/null || cat killed/checkpoints/latest)")
"$ALIGN" grpo "${COMMON[@]}" --resume --steps $((${step:-0} + 2)) --out killed >killed.resume.log 2>&1 ||
    { fail "kill: the last checkpoint (step ${step:-?}) does not resume"; cat killed.resume.log; }
[ -d killed/final ] && echo "  resumed from step $step to $((step + 2)) on 1 rank"

# whole groups per rank: more ranks than prompts per step is refused, the rank named
if $MPIRUN -np 3 "$ALIGN" grpo "${COMMON[@]}" --prompts-per-step 2 --out refused >refused.log 2>&1; then
    fail "3 ranks for 2 prompts per step should be refused"
elif ! grep -q "rank [0-9] of 3: grpo: 3 ranks need at least 3 prompts per step" refused.log; then
    fail "unclear error for too many ranks"
    cat refused.log
fi

[ $failures -eq 0 ] && echo "dist_rl: all passed" || echo "dist_rl: $failures failed"
[ $failures -eq 0 ]

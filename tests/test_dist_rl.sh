#!/usr/bin/env bash
# Data-parallel online RL under mpirun (docs/distributed.md, "Online RL"): the same global
# batch on 2 ranks and on 1 gives the same rewards and losses (to 1e-6) and the same
# weights (to 1e-6) after 5 steps, for GRPO (full and LoRA, several loss aggregations,
# minibatches), RLOO, REINFORCE++ and PPO; the first step's dump is byte-identical; a run
# resumes on another rank count; a killed rank stops the job and leaves the last checkpoint
# resumable; too many ranks for the prompts is refused with the rank named.
# Usage: test_dist_rl.sh BUILD_DIR.  Exit 77 (skip) without mpirun.
set -u
. "$(dirname "$0")/dist_lib.sh" "$@"
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
kill_rank1 killed grpo "${COMMON[@]}" -- grpo "${COMMON[@]}" --resume --out killed

# whole groups per rank: more ranks than prompts per step is refused, the rank named
if $MPIRUN -np 3 "$ALIGN" grpo "${COMMON[@]}" --prompts-per-step 2 --out refused >refused.log 2>&1; then
    fail "3 ranks for 2 prompts per step should be refused"
elif ! grep -q "rank [0-9] of 3: grpo: 3 ranks need at least 3 prompts per step" refused.log; then
    fail "unclear error for too many ranks"
    cat refused.log
fi

[ $failures -eq 0 ] && echo "dist_rl: all passed" || echo "dist_rl: $failures failed"
[ $failures -eq 0 ]

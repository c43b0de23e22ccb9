#!/usr/bin/env bash
# examples/gentle-stories: teach stories260K to tell stories without violent or frightening
# words, with PPO, GRPO, RLOO and DPO, and measure what it costs (README.md here).
#
# From a clean checkout: builds align and gentle_eval if needed, trains every method,
# evaluates the base model and every trained model on 256 sampled stories, and writes
# examples/gentle-stories/results.jsonl and frontier.svg.  Runs go to $OUT
# (default $BUILD_DIR/gentle-stories; BUILD_DIR defaults to build).  About 10 minutes on
# two idle cores.
#
#   bash examples/gentle-stories/run.sh
#   BUILD_DIR=build-gs JOBS=2 bash examples/gentle-stories/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EX=examples/gentle-stories
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-$BUILD_DIR/gentle-stories}
SHARED=${SHARED:-../shared}
JOBS=${JOBS:-2} # trainings and evaluations run this many at a time
# One thread per job: these models are tiny, and OpenMP threads that wait for a busy core
# cost more than they bring.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

MODEL=$SHARED/models/stories260K/stories260K.bin
TOK=$SHARED/models/stories260K/tok512.bin
for f in "$MODEL" "$TOK" "$SHARED/corpora/tinystories/TinyStories-validation-head.txt"; do
    [ -f "$f" ] || { echo "run.sh: missing $f (the shared data checkout beside this one)" >&2; exit 1; }
done

start=$(date +%s)
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)" --target align gentle_eval >/dev/null
ALIGN=$BUILD_DIR/align
EVAL=$BUILD_DIR/gentle_eval
mkdir -p "$OUT"
rm -rf "${OUT:?}"/{ppo,grpo,rloo,dpo_*,eval}
mkdir -p "$OUT/eval"

# ---- training ----
# Every RL run: 8 prompts x 8 stories of up to 128 tokens per step, the lexicon reward,
# a constant learning rate (so the checkpoint at step k is the model a k-step run would
# give: the frontier points come from one run per method), a checkpoint every 5 steps.
RL_STEPS=30
rl() { # NAME EXTRA-FLAGS...
    local name=$1
    shift
    "$ALIGN" "$name" --data "$EX/prompts.jsonl" -m "$MODEL" -z "$TOK" \
        --reward "lexicon:$EX/lexicon.csv" --out "$OUT/$name" \
        --prompts-per-step 8 --num-generations 8 --max-completion-length 128 --temperature 1 \
        --steps $RL_STEPS --schedule constant --save-every 5 --keep 100 --seed 1 --quiet "$@" \
        >"$OUT/$name.log" 2>&1 || { echo "run.sh: align $name failed:" >&2; tail -5 "$OUT/$name.log" >&2; return 1; }
    echo "run.sh: $name done ($(($(date +%s) - start)) s)" >&2
}
# DPO: pairs from the base model's own stories, 8 per prompt in 4 rounds; each group's
# least violent story is chosen over its most violent one (groups that tie are skipped).
DPO_SETTINGS=("1.0 1" "0.3 1" "0.1 1" "0.1 2") # beta, epochs
dpo() {
    "$EVAL" --make-pairs "$OUT/pairs.jsonl" --per-prompt 8 --rounds 4 --lexicon "$EX/lexicon.csv" \
        --prompts "$EX/prompts.jsonl" --base "$MODEL" --tokenizer "$TOK" 2>"$OUT/pairs.log" ||
        { cat "$OUT/pairs.log" >&2; return 1; }
    for s in "${DPO_SETTINGS[@]}"; do
        set -- $s
        "$ALIGN" dpo --data "$OUT/pairs.jsonl" -m "$MODEL" -z "$TOK" --out "$OUT/dpo_b$1_e$2" \
            --beta "$1" --epochs "$2" --lr 1e-4 --precompute-ref --quiet >"$OUT/dpo_b$1_e$2.log" 2>&1 ||
            { echo "run.sh: align dpo failed:" >&2; tail -5 "$OUT/dpo_b$1_e$2.log" >&2; return 1; }
    done
    echo "run.sh: dpo done ($(($(date +%s) - start)) s)" >&2
}

# PPO (the slowest: a critic, 2 epochs x 2 minibatches per step) beside the others
rl ppo --lr 1e-4 --beta 0.05 --epochs 2 --minibatches 2 &
ppo_pid=$!
if [ "$JOBS" -lt 2 ]; then wait $ppo_pid; fi
rl grpo --lr 1e-4 --beta 0.04
rl rloo --lr 1e-4 --beta 0.05
dpo
wait $ppo_pid

# ---- evaluation ----
# label|method|setting|model: the base, each RL run at steps 5, 10, 20, 30, each DPO model
specs=("base|base|stories260K|$MODEL")
for m in ppo grpo rloo; do
    case $m in
    ppo) what="lr 1e-4, beta 0.05, 2x2 updates" ;;
    grpo) what="lr 1e-4, beta 0.04" ;;
    rloo) what="lr 1e-4, beta 0.05" ;;
    esac
    for s in 5 10 20 30; do
        d=$OUT/$m/checkpoints/$(printf 'step_%08d' $s)
        [ $s = $RL_STEPS ] && d=$OUT/$m/final
        specs+=("$m-$s|$m|$s steps, $what|$d")
    done
done
for s in "${DPO_SETTINGS[@]}"; do
    set -- $s
    specs+=("dpo-b$1-e$2|dpo|beta $1, $2 epoch(s), lr 1e-4|$OUT/dpo_b$1_e$2/final")
done
i=0
for spec in "${specs[@]}"; do
    IFS='|' read -r label method setting model <<<"$spec"
    extra=()
    case $label in base | grpo-30) extra=(--samples "$OUT/eval/$label.samples.jsonl") ;; esac
    "$EVAL" --model "$model" --label "$label" --method "$method" --setting "$setting" \
        --base "$MODEL" --tokenizer "$TOK" --lexicon "$EX/lexicon.csv" --prompts "$EX/prompts.jsonl" \
        --val "$SHARED/corpora/tinystories/TinyStories-validation-head.txt" "${extra[@]}" \
        >"$OUT/eval/$(printf '%02d' $i).json" 2>"$OUT/eval/$label.log" &
    i=$((i + 1))
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
done
wait
for ((k = 0; k < i; k++)); do
    f=$OUT/eval/$(printf '%02d' $k).json
    [ -s "$f" ] || { echo "run.sh: evaluation $k failed (see $OUT/eval/*.log)" >&2; exit 1; }
done
cat "$OUT"/eval/[0-9][0-9].json >"$EX/results.jsonl"
"$EVAL" --svg "$EX/frontier.svg" --results "$EX/results.jsonl"

"$EVAL" --table --results "$EX/results.jsonl"
echo "run.sh: done in $(($(date +%s) - start)) s; $EX/results.jsonl, $EX/frontier.svg" >&2

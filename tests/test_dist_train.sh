#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/distributed.md): the same global batch on 2
# ranks and on 1 gives the same losses and weights (to 1e-6) after 5 steps, for pretrain,
# SFT, DPO (with cached and on-the-fly reference log-probs), KTO and a reward model; a run
# resumes on another rank count; a killed rank stops the job and leaves the last
# checkpoint intact and resumable.  Usage: test_dist_train.sh BUILD_DIR.  Exit 77 (skip)
# without mpirun.
set -u
BUILD=${1:?usage: test_dist_train.sh BUILD_DIR}
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
SHARED=${ALIGN_SHARED_DIR:-$(dirname "$0")/../../shared}
ALIGN=$BUILD/align
COMPARE=$BUILD/dist_compare
TOK=$SHARED/models/stories260K/tok512.bin
MODEL=$SHARED/models/stories260K/stories260K.bin
TEXT=$SHARED/corpora/tinystories/TinyStories-validation-head.txt
for f in "$TOK" "$MODEL" "$TEXT"; do
    [ -e "$f" ] || { echo "skip: $f not found"; exit 77; }
done
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
# both runs of a pair: the same flags on 1 rank and on 2
pair_metrics() { # pair_metrics NAME ALIGN-ARGS...: the runs, and their metrics compared
    local name=$1
    shift
    "$ALIGN" "$@" --out "$name.1" >"$name.1.log" 2>&1 || { fail "$name on 1 rank"; cat "$name.1.log"; }
    $MPIRUN -np 2 "$ALIGN" "$@" --out "$name.2" >"$name.2.log" 2>&1 || { fail "$name on 2 ranks"; cat "$name.2.log"; }
    echo "$name:"
    check "metrics" "$COMPARE" metrics "$name.1/metrics.jsonl" "$name.2/metrics.jsonl" $TOL
}
pair() { # pair NAME ALIGN-ARGS...: the same, and the final weights compared
    pair_metrics "$@"
    check "weights" "$COMPARE" weights "$1.1/final" "$1.2/final" $TOL
}

# ---- data ----
cat >cfg.json <<'EOF'
{"model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": true},
 "batch_size": 4, "seq_len": 64, "lr": 0.004, "warmup": 2}
EOF
animals=(cat dog fox owl bear frog duck mouse)
things=(ball kite boat cake tree star hat drum)
for i in $(seq 0 63); do
    a=${animals[$((i % 8))]} t=${things[$(((i / 8) % 8))]}
    printf '{"prompt": "Tell me about the %s and the %s.", "chosen": "The %s found a %s and shared it with a friend.", "rejected": "No."}\n' "$a" "$t" "$a" "$t" >>pref.jsonl
    printf '{"prompt": "Tell me about the %s and the %s.", "completion": "The %s played with the %s all day."}\n' "$a" "$t" "$a" "$t" >>sft.jsonl
    good=$([ $((i % 3)) -eq 0 ] && echo false || echo true)
    printf '{"prompt": "Tell me about the %s.", "completion": "The %s had a %s.", "label": %s}\n' "$a" "$a" "$t" "$good" >>kto.jsonl
done

# ---- 1 rank vs 2 ranks, 5 steps of the same global batch ----
# grad-accum 4: each of the 2 ranks computes 2 micro-batches; evaluation and a checkpoint at step 5
PRE=(pretrain --data "$TEXT" --tokenizer "$TOK" --config cfg.json --cache-dir "$DIR/cache" --steps 5
     --eval-every 5 --eval-batches 3 --save-every 5 --quiet)
pair pretrain "${PRE[@]}" --grad-accum 4
# grad-accum 3 on 2 ranks: rank 0 computes 2 micro-batches, rank 1 one
pair pretrain_uneven "${PRE[@]}" --grad-accum 3
PRE+=(--grad-accum 4)
FT=(-m "$MODEL" -z "$TOK" --seq-len 64 --batch-size 2 --grad-accum 4 --steps 5 --lr 5e-4 --eval-every 5
    --eval-batches 2 --save-every 5 --quiet)
pair sft sft --data sft.jsonl "${FT[@]}"
# LoRA adapters with dropout: each micro-batch keeps its masks whichever rank computes it
# (DIR/final holds adapters only: the metrics are compared)
pair_metrics sft_lora sft --data sft.jsonl "${FT[@]}" --lora --lora-dropout 0.1
pair dpo dpo --data pref.jsonl "${FT[@]}"
pair dpo_cached dpo --data pref.jsonl --precompute-ref "${FT[@]}"
pair dpo_bco dpo --data pref.jsonl --loss sigmoid,bco_pair "${FT[@]}"
pair kto dpo --data kto.jsonl --loss kto "${FT[@]}"
pair rm rm train --data pref.jsonl "${FT[@]}"

# ---- resume on another rank count: 3 steps on 2 ranks, then to 5 on 1 (and 1 -> 2) ----
echo "resume:"
$MPIRUN -np 2 "$ALIGN" "${PRE[@]}" --steps 3 --save-every 1 --out resume21 >resume21.log 2>&1 &&
    "$ALIGN" pretrain --resume resume21 --steps 5 --quiet >>resume21.log 2>&1 || { fail "resume 2 -> 1 rank"; cat resume21.log; }
"$ALIGN" "${PRE[@]}" --steps 3 --save-every 1 --out resume12 >resume12.log 2>&1 &&
    $MPIRUN -np 2 "$ALIGN" pretrain --resume resume12 --steps 5 --quiet >>resume12.log 2>&1 || { fail "resume 1 -> 2 ranks"; cat resume12.log; }
for r in resume21 resume12; do
    check "$r metrics" "$COMPARE" metrics pretrain.1/metrics.jsonl $r/metrics.jsonl $TOL
    check "$r weights" "$COMPARE" weights pretrain.1/final $r/final $TOL
done

# ---- a rank killed mid-run: the job stops with an error, the last checkpoint is intact ----
echo "kill:"
$MPIRUN -np 2 "$ALIGN" "${PRE[@]}" --steps 100000 --save-every 2 --keep 2 --out killed >killed.log 2>&1 &
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
grep -iE "rank|signal|killed|abort" killed.log | head -5 | sed 's/^/    /'
[ $rc -ne 0 ] || fail "kill: mpirun exited 0"
grep -qiE "signal 9|killed" killed.log || fail "kill: mpirun did not say a process was killed"
step=$(sed -n 's/.*step_0*\([0-9][0-9]*\).*/\1/p' <<<"$(readlink killed/checkpoints/latest 2>/dev/null || cat killed/checkpoints/latest)")
"$ALIGN" pretrain --resume killed --steps $((${step:-0} + 2)) --quiet >>killed.resume.log 2>&1 ||
    { fail "kill: the last checkpoint (step ${step:-?}) does not resume"; cat killed.resume.log; }
[ -d killed/final ] && echo "  resumed from step $step to $((step + 2)) on 1 rank"

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed"

#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/distributed.md): the same global batch on 2
# ranks and on 1 gives the same losses and weights (to 1e-6) after 5 steps, for pretrain,
# SFT, DPO (with cached and on-the-fly reference log-probs), KTO and a reward model; a run
# resumes on another rank count; a killed rank stops the job and leaves the last
# checkpoint intact and resumable.  Usage: test_dist_train.sh BUILD_DIR.  Exit 77 (skip)
# without mpirun.
set -u
. "$(dirname "$0")/dist_lib.sh" "$@"
TEXT=$SHARED/corpora/tinystories/TinyStories-validation-head.txt
[ -e "$TEXT" ] || { echo "skip: $TEXT not found"; exit 77; }
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
kill_rank1 killed "${PRE[@]}" -- pretrain --resume killed --quiet

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed"

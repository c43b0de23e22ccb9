#!/usr/bin/env bash
# GPT-2 training throughput: align vs llm.c's CPU trainer vs PyTorch on identical work, in one run.
#
# A training step is forward + backward of the mean next-token cross-entropy over B x T
# positions + an AdamW update (lr 3e-4, betas 0.9/0.999, eps 1e-8, weight decay 0 as llm.c's
# train_gpt2.c uses), with NO gradient clipping on any side, because llm.c's CPU trainer has
# none.  Random-init model (Normal(0, 0.02), residual projections 0.02/sqrt(2L), LayerNorm 1,
# biases 0), the same fixed random tokens and targets every step, float32, 2 threads on every
# side (OMP_NUM_THREADS=2 / torch.set_num_threads(2)).  Steps after the warm-up step are timed.
#
#   5.5M: 6 layers, dim 256, 8 heads, hidden 1024, vocab 3072, max positions 256, tied
#         (5,591,040 parameters on all three sides), batch 8 x 256, 10 timed steps
#   124M: GPT-2 small: 12 layers, dim 768, 12 heads, hidden 3072, vocab 50257, max positions
#         1024, tied (124,439,808 parameters), batch 8 x 256, 3 timed steps.  llm.c pads its
#         token table (and so its classifier) to 50304 rows (124,475,904 parameters): its
#         classifier multiplies 0.1% more rows, which it then ignores in the softmax.
#
# align:   bench_train --gpt2 --no-clip --beta2 0.999 --wd 0 (bench/bench_train.c, public API:
#          al_forward, al_backward, al_adamw_step on AL_ARCH_GPT2).
# llm.c:   bench/llmc_train.c compiled with $LLMC_DIR/train_gpt2.c (karpathy/llm.c, not part of
#          this repository) with the flags of llm.c's Makefile (cc -Ofast -march=native -fopenmp
#          -DOMP ... -lm -lgomp); it writes a random checkpoint in llm.c's format, loads it with
#          gpt2_build_from_checkpoint, and times gpt2_forward / gpt2_zero_grad / gpt2_backward /
#          gpt2_update as train_gpt2.c's main() runs them.
# PyTorch: bench/torch_train.py --throughput --gpt2 (Debian's python3-torch; nanoGPT's model:
#          nn.Embedding wte/wpe, LayerNorm, fused c_attn, causal attention, tanh GELU, tied
#          lm_head; F.scaled_dot_product_attention where torch has it, else nanoGPT's
#          matmul + masked softmax fallback), torch.optim.AdamW.
#
# The machine is shared, so a run's figure is its median step (tokens per second of the middle
# timed step), the three sides alternate within each round (align, llm.c, PyTorch), and the
# table shows the median over rounds.  The mean over a run's timed steps is printed beside it.
# Targets: align >= 1.5x PyTorch and >= 3x llm.c tokens/s.
#
# usage: bench/gpt2_train.sh [BUILD_DIR]          (default: build; needs bench_train built)
#   LLMC_DIR=/path/to/llm.c   llm.c checkout (git clone https://github.com/karpathy/llm.c);
#                             unset or missing: the llm.c side is skipped
#   GPT2_CONFIGS="5.5M 124M"  which shapes (default both)
#   ROUNDS=N                  alternating rounds per shape (default 3 for 5.5M, 1 for 124M)
#   LLMC_CC=cc                compiler for llm.c (its Makefile's CC resolves to cc)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
py=/usr/bin/python3
[ -x "$build/bench_train" ] || { echo "build first: cmake --build $build (bench_train missing)"; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "PyTorch missing: ALIGN_BENCH_DEPS=1 scripts/setup.sh"; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
threads="$OMP_NUM_THREADS"

llmc=""
if [ -n "${LLMC_DIR:-}" ] && [ -f "$LLMC_DIR/train_gpt2.c" ]; then
  llmc="$build/llmc_train"
  echo "llm.c: $LLMC_DIR/train_gpt2.c; compiling $llmc"
  # llm.c's Makefile for train_gpt2 (CPU): CFLAGS -Ofast -Wno-unused-result -Wno-ignored-pragmas
  # -Wno-unknown-attributes -march=native, + -fopenmp -DOMP and -lgomp when OpenMP is found.
  "${LLMC_CC:-cc}" -Ofast -Wno-unused-result -Wno-ignored-pragmas -Wno-unknown-attributes -march=native \
    -fopenmp -DOMP -I"$LLMC_DIR" -DLLMC_TRAIN_GPT2_C="\"$LLMC_DIR/train_gpt2.c\"" \
    "$here/bench/llmc_train.c" -lm -lgomp -o "$llmc"
else
  echo "llm.c: skipped (set LLMC_DIR to a checkout: git clone https://github.com/karpathy/llm.c;" \
       "LLMC_DIR=\$PWD/llm.c bench/gpt2_train.sh)"
fi

#        name dim layers heads vocab maxpos batch seq steps warmup rounds
configs=("5.5M 256  6      8     3072  256    8     256 10    1      3"
         "124M 768  12     12    50257 1024   8     256 3     1      1")
want="${GPT2_CONFIGS:-5.5M 124M}"

field() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p"; }
result() { sed -n "s/^RESULT.* $1=\([-0-9.e+]*\).*/\1/p"; }
median() { sort -g | awk 'NF {v[++n] = $1} END {if (n) print (v[int((n + 1) / 2)] + v[int(n / 2) + 1]) / 2; else print 0}'; }

summary=()
for line in "${configs[@]}"; do
  read -r name dim layers heads vocab maxpos batch seq steps warmup rounds <<<"$line"
  case " $want " in *" $name "*) ;; *) continue ;; esac
  rounds="${ROUNDS:-$rounds}"
  echo "== $name: GPT-2, $layers layers, dim $dim, $heads heads, hidden $((4 * dim)), vocab $vocab, max positions" \
       "$maxpos, tied; batch $batch x $seq; $steps timed steps after $warmup warm-up; $threads threads;" \
       "$rounds alternating round(s); AdamW lr 3e-4 betas 0.9/0.999 eps 1e-8 wd 0, no clipping"
  a_all=""; l_all=""; t_all=""
  for r in $(seq 1 "$rounds"); do
    a_out="$("$build/bench_train" --gpt2 --no-clip --beta2 0.999 --wd 0 --max-pos "$maxpos" \
             "$dim" "$layers" "$heads" "$heads" "$((4 * dim))" "$vocab" "$batch" "$seq" "$steps" "$warmup" tied)"
    echo "$a_out" | grep -v '^RESULT' | sed 's/^/  /'
    a_all="$a_all$(echo "$a_out" | grep '^RESULT')"$'\n'
    if [ -n "$llmc" ]; then
      l_out="$("$llmc" "$layers" "$dim" "$heads" "$vocab" "$maxpos" "$batch" "$seq" "$steps" "$warmup")"
      echo "$l_out" | sed -n '/^llm.c train step/,/tok\/s/p' | sed 's/^/  /'
      l_all="$l_all$(echo "$l_out" | grep '^RESULT')"$'\n'
    fi
    t_out="$("$py" "$here/bench/torch_train.py" --throughput --gpt2 --no-clip --beta2 0.999 --wd 0 \
             --threads "$threads" --dim "$dim" --layers "$layers" --heads "$heads" --vocab "$vocab" \
             --max-pos "$maxpos" --batch "$batch" --seq "$seq" --steps "$steps" --warmup-steps "$warmup")"
    echo "$t_out" | awk '{
      match($0, /"tokens_per_second": [0-9.]+/); tps = substr($0, RSTART + 21, RLENGTH - 21)
      match($0, /"median_step_tokens_per_second": [0-9.]+/); med = substr($0, RSTART + 33, RLENGTH - 33)
      match($0, /"loss_first": [0-9.]+/); l0 = substr($0, RSTART + 14, RLENGTH - 14)
      match($0, /"loss": [0-9.]+/); l1 = substr($0, RSTART + 8, RLENGTH - 8)
      match($0, /"n_params": [0-9]+/); np = substr($0, RSTART + 12, RLENGTH - 12)
      match($0, /"attention": "[^"]*"/); att = substr($0, RSTART + 14, RLENGTH - 15)
      match($0, /"torch": "[^"]*"/); ver = substr($0, RSTART + 10, RLENGTH - 11)
      match($0, /"peak_rss_mb": [0-9.]+/); rss = substr($0, RSTART + 15, RLENGTH - 15)
      printf "  PyTorch %s (attention: %s): params %s, loss %.4f at step 1, %.4f at the last step; " \
             "%.0f tok/s over the timed steps (median step %.0f tok/s); peak RSS %.0f MiB\n",
             ver, att, np, l0, l1, tps, med, rss }'
    t_all="$t_all$t_out"$'\n'
  done
  a_med=$(echo "$a_all" | result median | median); a_mean=$(echo "$a_all" | result tps | median)
  t_med=$(echo "$t_all" | field median_step_tokens_per_second | median)
  t_mean=$(echo "$t_all" | field tokens_per_second | median)
  a_np=$(echo "$a_all" | result n_params | head -1); t_np=$(echo "$t_all" | field n_params | head -1)
  [ "$a_np" = "$t_np" ] || echo "  WARNING: parameter counts differ (align $a_np, PyTorch $t_np): the shapes disagree"
  if [ -n "$llmc" ]; then
    l_med=$(echo "$l_all" | result median | median); l_mean=$(echo "$l_all" | result tps | median)
    l_np=$(echo "$l_all" | result n_params | head -1)
  else
    l_med=0; l_mean=0; l_np=0
  fi
  row=$(awk -v n="$name" -v am="$a_med" -v aa="$a_mean" -v lm="$l_med" -v la="$l_mean" -v tm="$t_med" \
            -v ta="$t_mean" -v np="$a_np" -v lnp="$l_np" 'BEGIN {
    rt = am / tm; s = sprintf("%-5s %9s  align %8.1f (%8.1f)  PyTorch %8.1f (%8.1f)", n, np, am, aa, tm, ta)
    if (lm > 0) {
      rl = am / lm
      s = s sprintf("  llm.c %8.1f (%8.1f)  align/PyTorch %.2fx (>= 1.5x: %s)  align/llm.c %.2fx (>= 3x: %s)",
                    lm, la, rt, rt >= 1.5 ? "met" : "NOT met", rl, rl >= 3 ? "met" : "NOT met")
    } else {
      s = s sprintf("  llm.c skipped  align/PyTorch %.2fx (>= 1.5x: %s)", rt, rt >= 1.5 ? "met" : "NOT met")
    }
    print s }')
  echo "  $row"
  summary+=("$row")
done
echo "== tokens/s, median step, median over rounds (in brackets: mean over the timed steps); params: align's"
for s in "${summary[@]}"; do echo "  $s"; done

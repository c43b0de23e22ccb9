#!/usr/bin/env bash
# Training throughput: align vs PyTorch on identical Llama configurations, measured in one run.
#
# A training step is forward + backward (mean next-token NLL) + global-norm clipping + AdamW,
# on a random-init model (untied embeddings) and random tokens, in float32 with 2 threads on
# both sides (OMP_NUM_THREADS=2 / torch.set_num_threads(2)); tokens/s over the timed steps
# after warm-up.  align: bench/bench_train.c (public API).  PyTorch: bench/torch_train.py
# --throughput (Debian's python3-torch; the same HF-style model the parity check uses).
#
#   S: dim 256, 4 layers, 4 heads (kv 4), hidden 688, vocab 8192,  batch 8 x 256
#   M: dim 768, 12 layers, 12 heads (kv 12), hidden 2048, vocab 32000, batch 4 x 256
#
# MFU = tokens/s * flops/token / sgemm peak, with flops/token = 6*N_matmul + 12*L*T*dim
# (see bench_train.c) and the peak measured by bench_train (OpenBLAS sgemm 2048^3, same
# threads, same process) for both sides; PyTorch's own torch.mm peak is printed beside it.
# Peak RSS: getrusage of each process (PyTorch's includes the interpreter and libtorch).
#
# usage: bench/throughput.sh [BUILD_DIR]     (default: build)
#        THROUGHPUT_CONFIGS="S" bench/throughput.sh     (only S)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
py=/usr/bin/python3
[ -x "$build/bench_train" ] || { echo "build first: cmake --build $build (bench_train missing)"; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "PyTorch missing: ALIGN_BENCH_DEPS=1 scripts/setup.sh"; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
threads="$OMP_NUM_THREADS"

#        name dim layers heads kv hidden vocab batch seq steps warmup target
configs=("S    256  4      4     4  688    8192  8     256 8     2      1.5"
         "M    768  12     12    12 2048   32000 4     256 3     1      1.2")
want="${THROUGHPUT_CONFIGS:-S M}"

field() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p"; }
result() { sed -n "s/^RESULT.* $1=\([-0-9.e+]*\).*/\1/p"; }

for line in "${configs[@]}"; do
  read -r name dim layers heads kv hidden vocab batch seq steps warmup target <<<"$line"
  case " $want " in *" $name "*) ;; *) continue ;; esac
  echo "== $name: dim $dim, $layers layers, $heads/$kv heads, hidden $hidden, vocab $vocab, batch $batch x $seq," \
       "$steps timed steps after $warmup warm-up, $threads threads"
  a_out="$("$build/bench_train" "$dim" "$layers" "$heads" "$kv" "$hidden" "$vocab" "$batch" "$seq" "$steps" "$warmup")"
  echo "$a_out" | grep -v '^RESULT' | sed 's/^/  /'
  t_out="$("$py" "$here/bench/torch_train.py" --throughput --threads "$threads" --dim "$dim" --layers "$layers" \
           --heads "$heads" --kv-heads "$kv" --hidden "$hidden" --vocab "$vocab" --batch "$batch" --seq "$seq" \
           --steps "$steps" --warmup-steps "$warmup" --peak)"
  a_tps=$(echo "$a_out" | result tps); a_fpt=$(echo "$a_out" | result flops_per_token)
  peak=$(echo "$a_out" | result sgemm_gflops); a_rss=$(echo "$a_out" | result rss_mb)
  plan=$(echo "$a_out" | result plan_mb)
  t_tps=$(echo "$t_out" | field tokens_per_second); t_fpt=$(echo "$t_out" | field flops_per_token)
  t_rss=$(echo "$t_out" | field peak_rss_mb); t_mm=$(echo "$t_out" | field torch_mm_gflops)
  t_best=$(echo "$t_out" | field best_step_tokens_per_second); t_loss=$(echo "$t_out" | field loss)
  awk -v at="$a_tps" -v tt="$t_tps" -v tb="$t_best" -v af="$a_fpt" -v tf="$t_fpt" -v pk="$peak" -v tm="$t_mm" \
      -v ar="$a_rss" -v pl="$plan" -v tr="$t_rss" -v tg="$target" -v n="$name" -v tl="$t_loss" 'BEGIN {
    printf "  PyTorch: %.0f tok/s (best step %.0f), loss %.4f, torch.mm 2048^3 %.1f GFLOP/s, peak RSS %.1f MiB\n",
           tt, tb, tl, tm, tr
    if (af != tf) printf "  WARNING: flops/token differ (align %s, PyTorch %s): shapes disagree\n", af, tf
    printf "  %s: align %.0f tok/s, PyTorch %.0f tok/s, ratio %.2fx (target %sx); MFU align %.1f%%, PyTorch %.1f%%" \
           " (of %.0f GFLOP/s sgemm); align peak RSS %.0f MiB vs plan %.0f MiB (%+.0f%%), PyTorch %.0f MiB\n",
           n, at, tt, at / tt, tg, 100 * at * af / (pk * 1e9), 100 * tt * af / (pk * 1e9), pk, ar, pl,
           100 * (ar - pl) / pl, tr }'
done

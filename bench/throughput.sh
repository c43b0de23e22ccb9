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
# OpenBLAS picks its kernels at load time; Debian's build identifies this machine's AMD Zen 5
# (family 26) as Haswell and uses AVX2 kernels (~225 GFLOP/s sgemm on 2 cores).  Both align
# and PyTorch link the same libopenblas, so OPENBLAS_CORETYPE=SKYLAKEX (AVX-512, ~430 GFLOP/s)
# applies to both sides when set in the environment; bench_train prints the core in use.
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

#        name dim layers heads kv hidden vocab batch seq steps warmup reps target
configs=("S    256  4      4     4  688    8192  8     256 10    2      3    1.5"
         "M    768  12     12    12 2048   32000 4     256 4     2      1    1.2")
want="${THROUGHPUT_CONFIGS:-S M}"

field() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p"; }
result() { sed -n "s/^RESULT.* $1=\([-0-9.e+]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR] = $1} END {print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2}'; }

for line in "${configs[@]}"; do
  read -r name dim layers heads kv hidden vocab batch seq steps warmup reps target <<<"$line"
  case " $want " in *" $name "*) ;; *) continue ;; esac
  echo "== $name: dim $dim, $layers layers, $heads/$kv heads, hidden $hidden, vocab $vocab, batch $batch x $seq," \
       "$steps timed steps after $warmup warm-up, $threads threads, $reps alternating run(s) per side"
  a_all=""; t_all=""
  # Alternate the two sides so a noisy neighbour hurts both alike; report the median run.
  for r in $(seq 1 "$reps"); do
    a_out="$("$build/bench_train" "$dim" "$layers" "$heads" "$kv" "$hidden" "$vocab" "$batch" "$seq" "$steps" "$warmup")"
    echo "$a_out" | grep -v '^RESULT' | sed 's/^/  /'
    t_out="$("$py" "$here/bench/torch_train.py" --throughput --threads "$threads" --dim "$dim" --layers "$layers" \
             --heads "$heads" --kv-heads "$kv" --hidden "$hidden" --vocab "$vocab" --batch "$batch" --seq "$seq" \
             --steps "$steps" --warmup-steps "$warmup" --peak)"
    t_share=$(echo "$t_out" | sed -n 's/.*"forward": \([0-9.]*\), "backward": \([0-9.]*\), "clip_adamw": \([0-9.]*\).*/\1 \2 \3/p')
    echo "$t_out" | awk -v sh="$t_share" '{
      match($0, /"tokens_per_second": [0-9.]+/); tps = substr($0, RSTART + 21, RLENGTH - 21)
      match($0, /"peak_rss_mb": [0-9.]+/); rss = substr($0, RSTART + 15, RLENGTH - 15)
      match($0, /"torch_mm_gflops": [0-9.]+/); mm = substr($0, RSTART + 19, RLENGTH - 19)
      split(sh, s, " ")
      printf "  PyTorch: %.0f tok/s; time: forward %.0f%%, backward %.0f%%, clip + AdamW %.0f%%; torch.mm 2048^3 %.1f GFLOP/s; peak RSS %.1f MiB\n",
             tps, 100 * s[1], 100 * s[2], 100 * s[3], mm, rss }'
    a_all="$a_all$(echo "$a_out" | grep '^RESULT')"$'\n'
    t_all="$t_all$t_out"$'\n'
  done
  a_tps=$(echo "$a_all" | result tps | median); t_tps=$(echo "$t_all" | field tokens_per_second | median)
  a_fpt=$(echo "$a_all" | result flops_per_token | head -1); t_fpt=$(echo "$t_all" | field flops_per_token | head -1)
  peak=$(echo "$a_all" | result sgemm_gflops | median); a_rss=$(echo "$a_all" | result rss_mb | median)
  plan=$(echo "$a_all" | result plan_mb | head -1); t_rss=$(echo "$t_all" | field peak_rss_mb | median)
  awk -v at="$a_tps" -v tt="$t_tps" -v af="$a_fpt" -v tf="$t_fpt" -v pk="$peak" -v ar="$a_rss" -v pl="$plan" \
      -v tr="$t_rss" -v tg="$target" -v n="$name" 'BEGIN {
    if (af != tf) printf "  WARNING: flops/token differ (align %s, PyTorch %s): the shapes disagree\n", af, tf
    printf "  %s: align %.0f tok/s, PyTorch %.0f tok/s, ratio %.2fx (target %sx); MFU align %.1f%%, PyTorch %.1f%%" \
           " (of %.0f GFLOP/s sgemm); align peak RSS %.0f MiB vs plan %.0f MiB (%+.0f%%); PyTorch peak RSS %.0f MiB\n",
           n, at, tt, at / tt, tg, 100 * at * af / (pk * 1e9), 100 * tt * af / (pk * 1e9), pk, ar, pl,
           100 * (ar - pl) / pl, tr }'
done

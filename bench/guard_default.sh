#!/usr/bin/env bash
# The guard out of the box (issue 13): the built-in policy with the default harm model the
# build trains, measured on requests nobody here tuned it to.
#
#  1. Held-out templates: `align guard generate --split heldout` (items, frames and wrappers
#     the model never trained or calibrated on, Base64/ROT13/leetspeak/pig Latin included)
#     through the whole input side of the built-in policy, and through the harm rail alone:
#     precision, recall, F1, false-positive rate, latency p50/p99, prompts/s (one thread).
#  2. Benign prompts that only sound dangerous, written for this benchmark and trained on by
#     nothing (bench/data/guard_contrast_heldout.txt): the share flagged.
#  3. Latency of 2 KB prompts through the whole input side (budget: p99 <= 2 ms, one core).
#  4. Unseen sources: the same training with whole shared sources left out (AdvBench and
#     MaliciousInstruct harmful, Alpaca and self-instruct benign), each then scored as new
#     data: the share flagged.  Beside it, the classifier as it was before this issue
#     (shared data only, no generator, no WordNet, no calibration), on the same split.
#
# usage: bench/guard_default.sh [BUILD_DIR]      (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared"
align="$build/align"
[ -x "$align" ] && [ -f "$build/harm_default.bin" ] || { echo "build first: cmake --build $build"; exit 2; }
[ -d "$shared/data/safety" ] || { echo "missing $shared/data/safety (../shared beside the checkout)"; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1

"$align" guard generate --split heldout -n 4000 --seed 11 --encodings -o "$tmp/heldout.jsonl" 2>/dev/null
printf 'rails: {input: [harm]}\n' > "$tmp/harm_only.yaml"

echo "== 1. held-out templates (4000 requests, half harmful, a quarter wrapped), built-in policy"
"$align" guard eval --data "$tmp/heldout.jsonl" --json "$tmp/full.json" | sed -n '1,4p;/latency/p'
echo "-- harm rail alone"
"$align" guard eval --data "$tmp/heldout.jsonl" --policy "$tmp/harm_only.yaml" --json "$tmp/harm.json" | sed -n '2,2p'

echo "== 2. benign prompts that sound dangerous (bench/data/guard_contrast_heldout.txt)"
grep -v '^#' "$here/bench/data/guard_contrast_heldout.txt" | sed '/^$/d' |
    /usr/bin/env python3 -c 'import json,sys; [print(json.dumps({"prompt": l.rstrip("\n"), "label": 0})) for l in sys.stdin]' \
    > "$tmp/contrast.jsonl"
"$align" guard eval --data "$tmp/contrast.jsonl" --json "$tmp/contrast.json" | sed -n '1,2p'

echo "== 3. 2 KB prompts through the whole input side"
/usr/bin/env python3 - "$tmp/heldout.jsonl" "$tmp/long.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for i in range(500):
        text, k = "", i
        while len(text) < 2048:
            text += rows[k % len(rows)]["prompt"] + " "
            k += 7
        f.write(json.dumps({"prompt": text[:2048], "label": rows[i]["label"]}) + "\n")
EOF
"$align" guard eval --data "$tmp/long.jsonl" | grep latency

echo "== 4. unseen sources (left out of training, then scored); about a minute"
"$align" guard train -q --data-dir "$shared" -o "$tmp/unseen.bin" \
    --hold-out-source advbench,malicious_instruct,alpaca,self_instruct | grep -E 'held-out (templates|source)'
echo "-- the classifier before this issue (shared data only, no generator, WordNet or calibration)"
"$align" guard train -q --data-dir "$shared" -o "$tmp/before.bin" --generated 0 --valid 0 --no-wordnet \
    --hold-out-source advbench,malicious_instruct,alpaca,self_instruct | grep -E 'held-out (templates|source)'

python3 - "$tmp" <<'EOF'
import json, sys
t = sys.argv[1]
full, harm, con = (json.load(open(f"{t}/{n}.json")) for n in ("full", "harm", "contrast"))
print(f"RESULT guard_default f1={full['f1']:.4f} fpr={full['fpr']:.4f} harm_f1={harm['f1']:.4f} "
      f"harm_fpr={harm['fpr']:.4f} contrast_fpr={con['fpr']:.4f} p50_us={full['latency_p50_us']:.1f} "
      f"p99_us={full['latency_p99_us']:.1f} prompts_per_s={full['prompts_per_s']:.0f}")
EOF

#!/usr/bin/env bash
# The acceptance run of the demo (issues 7 and 11): the full `align demo` on each seed,
# then every acceptance figure of each run's summary.json against its target, PASS or
# FAIL, and for several seeds each table row's mean and spread.  Exit status 0 only when
# every target passes on every seed.
#   bash bench/demo.sh                       # seed 1, build/align, runs under /tmp/align-demo-bench
#   bash bench/demo.sh --seeds 1,2,3         # the robustness run
#   ALIGN=path/to/align OUT=dir THREADS=2 bash bench/demo.sh
# Each run starts from scratch (KEEP=1 resumes interrupted ones instead).
set -euo pipefail
cd "$(dirname "$0")/.."
ALIGN=${ALIGN:-build/align}
OUT=${OUT:-/tmp/align-demo-bench}
THREADS=${THREADS:-2}
SEEDS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) SEEDS=$2; shift 2 ;;
    --seeds=*) SEEDS=${1#--seeds=}; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$ALIGN" ]; then
  echo "demo.sh: $ALIGN not found (build first: cmake -S . -B build && cmake --build build)" >&2
  exit 2
fi
scratch=--from-scratch
[ "${KEEP:-0}" = 1 ] && scratch=
runs=()
for seed in ${SEEDS//,/ }; do
  dir="$OUT/seed$seed"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
  start=$(date +%s.%N)
  "$ALIGN" demo --out "$dir" --seed "$seed" --threads "$THREADS" $scratch
  end=$(date +%s.%N)
  load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
  python3 - "$dir/summary.json" "$start" "$end" "$load_before" "$load_after" > "$dir/timing.json" <<'PY'
import json, sys
print(json.dumps({"wall_seconds": float(sys.argv[3]) - float(sys.argv[2]),
                  "load_before": sys.argv[4], "load_after": sys.argv[5]}))
PY
  runs+=("$dir")
done
python3 - "${runs[@]}" <<'PY'
import json, math, sys
failed = 0
rows_by_seed = []
for d in sys.argv[1:]:
    s = json.load(open(d + "/summary.json"))
    t = json.load(open(d + "/timing.json"))
    print("\n== seed %s (%s): wall %.1f s, pipeline %.1f s; load before %s, after %s"
          % (s["settings"]["seed"], d, t["wall_seconds"], s["pipeline_seconds"], t["load_before"], t["load_after"]))
    for tg in s["acceptance"]:
        v = tg["value"]
        shown = "-" if v is None else ("%.3f" % v if "x sft" in tg["bound"] else "%.1f%%" % (100 * v))
        print("%s  %-60s %s (%s %s)" % ("PASS" if tg["pass"] else "FAIL", tg["target"], shown, tg["figure"], tg["bound"]))
        failed += not tg["pass"]
    minutes = t["wall_seconds"] / 60
    ok = minutes < 10
    failed += not ok
    print("%s  %-60s %.2f min" % ("PASS" if ok else "FAIL", "full demo under 10 minutes", minutes))
    rows_by_seed.append(s["rows"])
if len(rows_by_seed) > 1:
    cols = [("harmful_refusal_rate", "refused", 100), ("benign_solved_rate", "b.solved", 100),
            ("contrast_solved_rate", "c.solved", 100), ("benign_all_compliance_rate", "complied", 100),
            ("other_intent_rate", "other int", 100), ("leak_rate", "leaks", 100), ("whimsical_rate", "whimsy", 100),
            ("heldout_perplexity", "ppl", 1)]
    print("\n== mean ± spread (max - min) over %d seeds" % len(rows_by_seed))
    print("%-10s" % "" + "".join("%17s" % c[1] for c in cols))
    for row in rows_by_seed[0]:
        line = "%-10s" % row
        for key, _, scale in cols:
            v = [r[row].get(key) for r in rows_by_seed]
            v = [x * scale for x in v if x is not None]
            line += "%17s" % ("-" if not v else "%.1f ± %.1f" % (sum(v) / len(v), max(v) - min(v)))
        print(line)
sys.exit(1 if failed else 0)
PY

#!/usr/bin/env bash
# align serve under load: wrk on loopback against POST /v1/chat/completions.
#
# One server (the built-in guard policy on both sides, as served in production) and wrk
# with CONNECTIONS keep-alive connections on THREADS threads for DURATION seconds; every
# request is a non-streamed chat completion of MAX_TOKENS tokens at TEMPERATURE, its prompt
# one of eight (a Lua script varies them).  Measured:
#   - errors: wrk's socket errors (connect, read, write, timeout) and non-2xx answers,
#     which must all be zero (--max-concurrent CONNECTIONS + 1, for the probe: none refused)
#   - requests/s (wrk's) and latency p50 / p90 / p99, twice: wrk's, which applies its
#     coordinated-omission correction (synthetic samples for the requests a constant-rate
#     client would have sent while one was slow: mean x rate exceeds the connections), and
#     a probe's: one more client sending the same requests one at a time, plain timings
#   - tokens/s: align_completion_tokens_total from /metrics, before and after, over the run
#     (the probe's ~1% included); and the server's own mean latency from its histogram
#   - resident memory: VmRSS of the server every second; from the 10th second to the end it
#     must stay within 10% (max <= 1.10 x min): no leak, no growth with the load
# Exits 0 when the error and memory checks pass, 1 otherwise.
#
# usage: bench/serve.sh [BUILD_DIR]            (default: build)
#   DURATION=60 CONNECTIONS=64 THREADS=2       wrk's run
#   SLOTS=32 MAX_CONCURRENT=CONNECTIONS+1      the server's --slots and --max-concurrent
#   MAX_TOKENS=32 TEMPERATURE=0.8 STREAM=0     the requests (STREAM=1: server-sent events)
#   MODEL=PATH                                 default ../shared/models/stories260K/stories260K.bin
#   SERVE_ARGS="..."                           more align serve options (e.g. --weights bf16)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$here/build}" && pwd)"
align="$build/align"
DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SLOTS=${SLOTS:-32}
MAX_CONCURRENT=${MAX_CONCURRENT:-$((CONNECTIONS + 1))}
MAX_TOKENS=${MAX_TOKENS:-32}
TEMPERATURE=${TEMPERATURE:-0.8}
STREAM=${STREAM:-0}
MODEL=${MODEL:-${ALIGN_SHARED_DIR:-$here/../shared}/models/stories260K/stories260K.bin}
SERVE_ARGS=${SERVE_ARGS:-}
RSS_FROM=10 # the second from which resident memory must be flat
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

[ -x "$align" ] || { echo "build first: cmake --build $build --target align harm_default_model"; exit 2; }
[ -f "$build/harm_default.bin" ] || { echo "the guard's harm model is missing: cmake --build $build --target harm_default_model"; exit 2; }
[ -f "$MODEL" ] || { echo "$MODEL: no model (set MODEL)"; exit 2; }
[ "$DURATION" -gt "$RSS_FROM" ] || { echo "DURATION must be over $RSS_FROM s (the memory check starts there)"; exit 2; }
if ! command -v wrk >/dev/null; then
  # the Debian package, installed the way scripts/setup.sh installs its packages
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "bench: installing wrk"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/align-bench-serve.XXXXXX")"
server_pid=""
sampler_pid=""
probe_pid=""
cleanup() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
  if [ -n "$probe_pid" ]; then kill "$probe_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- the server ----
# shellcheck disable=SC2086 # SERVE_ARGS is a list of options
"$align" serve -m "$MODEL" --port 0 --port-file "$tmp/port" --review-db "$tmp/review.db" \
  --slots "$SLOTS" --max-concurrent "$MAX_CONCURRENT" --max-connections $((CONNECTIONS + 65)) -q $SERVE_ARGS \
  2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 600); do
  [ -s "$tmp/port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; echo "bench: the server exited"; exit 1; }
  sleep 0.1
done
[ -s "$tmp/port" ] || { echo "bench: the server did not listen within 60 s"; exit 1; }
url="http://127.0.0.1:$(cat "$tmp/port")"
metric() { curl -s "$url/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

stream_json=false
[ "$STREAM" = 1 ] && stream_json=true
# the requests: eight prompts in turn, each thread starting at its own place
cat >"$tmp/load.lua" <<EOF
-- POST /v1/chat/completions with varied prompts; counts non-2xx answers per thread and
-- prints the figures once wrk is done (one RESULT line for bench/serve.sh to read).
local prompts = {
  "Once upon a time",
  "Tell me a story about a little dog.",
  "What did Lily find in the garden?",
  "Tom and his mom went to the park",
  "Write a short story about a brave cat.",
  "The sun was shining and the birds were singing.",
  "Why is the sky blue?",
  "Sue had a red ball. One day",
}
local threads = {}
local id = 0

function setup(thread)
  thread:set("id", id)
  id = id + 1
  table.insert(threads, thread)
end

function init(args)
  n = id * 3            -- where this thread starts in the prompts
  non2xx = 0
  codes = ""
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n + 1
  local body = string.format(
    '{"messages":[{"role":"user","content":"%s"}],"max_tokens":$MAX_TOKENS,"temperature":$TEMPERATURE,"stream":$stream_json}',
    prompts[n % #prompts + 1])
  return wrk.format(nil, "/v1/chat/completions", nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if #codes < 200 then codes = codes .. " " .. status end
  end
end

function done(summary, latency, requests)
  local bad, codes_seen = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    codes_seen = codes_seen .. t:get("codes")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f connect=%d read=%d write=%d timeout=%d status=%d non2xx=%d " ..
    "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f codes=%s\n",
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.timeout, e.status, bad,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3, codes_seen == "" and "-" or (codes_seen:sub(2):gsub(" ", ","))))
end
EOF

echo "== align serve: $(basename "$MODEL"), --slots $SLOTS, --max-concurrent $MAX_CONCURRENT, built-in guard${SERVE_ARGS:+, $SERVE_ARGS}"
echo "   wrk: $CONNECTIONS connections, $THREADS threads, ${DURATION} s; chat completions of $MAX_TOKENS tokens" \
     "at temperature $TEMPERATURE, $([ "$STREAM" = 1 ] && echo streamed || echo not streamed); $(nproc) CPUs," \
     "OMP_NUM_THREADS=$OMP_NUM_THREADS"

# warm-up: a few requests (the first ones fault pages in)
for _ in 1 2 3 4; do
  curl -s -o /dev/null "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":$MAX_TOKENS}"
done

# ---- the run ----
chat_sum='align_request_duration_seconds_sum{endpoint="/v1/chat/completions"}'
chat_count='align_request_duration_seconds_count{endpoint="/v1/chat/completions"}'
tokens0=$(metric align_completion_tokens_total)
decoded0=$(metric align_decoded_tokens_total)
steps0=$(metric align_decode_steps_total)
server_sum0=$(metric "$chat_sum")
server_count0=$(metric "$chat_count")
# resident memory every second (kB), from wrk's start
(
  t=0
  while kill -0 "$server_pid" 2>/dev/null; do
    echo "$t $(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null)"
    sleep 1
    t=$((t + 1))
  done
) >"$tmp/rss" &
sampler_pid=$!
# the probe: one curl, keep-alive, a request after the other (a config file of transfers:
# more than it can make in DURATION), the prompts in turn; status and seconds per request
awk -v url="$url" -v n=$((DURATION * 300)) -v mt="$MAX_TOKENS" -v temp="$TEMPERATURE" -v stream="$stream_json" 'BEGIN {
  split("Once upon a time|Tell me a story about a little dog.|Why is the sky blue?|Sue had a red ball. One day", p, "|")
  for (i = 0; i < n; i++) {
    printf "url = \"%s/v1/chat/completions\"\nheader = \"Content-Type: application/json\"\n", url
    printf "data = \"{\\\"messages\\\":[{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"%s\\\"}],", p[i % 4 + 1]
    printf "\\\"max_tokens\\\":%s,\\\"temperature\\\":%s,\\\"stream\\\":%s}\"\n", mt, temp, stream
    printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code} %%{time_total}\\n\"\n%s", i < n - 1 ? "next\n" : ""
  }
}' >"$tmp/probe.cfg"
# (line-buffered: the probe is killed when wrk is done, and its last lines must be out)
stdbuf -oL curl -s -K "$tmp/probe.cfg" >"$tmp/probe.out" 2>/dev/null &
probe_pid=$!
load0=$(cut -d' ' -f1-3 /proc/loadavg)
wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 30s -s "$tmp/load.lua" "$url" >"$tmp/wrk.out" 2>&1 ||
  { cat "$tmp/wrk.out"; echo "bench: wrk failed"; exit 1; }
load1=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$probe_pid" 2>/dev/null || true
wait "$probe_pid" 2>/dev/null || true
probe_pid=""
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
tokens1=$(metric align_completion_tokens_total)
decoded1=$(metric align_decoded_tokens_total)
steps1=$(metric align_decode_steps_total)
server_sum1=$(metric "$chat_sum")
server_count1=$(metric "$chat_count")

result="$(grep '^RESULT' "$tmp/wrk.out")" || { cat "$tmp/wrk.out"; echo "bench: no RESULT line from wrk"; exit 1; }
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" ${result#RESULT}"; }
requests=$(get requests)
seconds=$(get seconds)
socket_errors=$(($(get connect) + $(get read) + $(get write) + $(get timeout)))
non2xx=$(get non2xx)
# the probe's answers: the last line may be cut short by the kill
read -r probe_n probe_bad probe_p50 probe_p90 probe_p99 probe_mean < <(
  awk 'NF == 2 && $1 ~ /^[0-9]+$/ { if ($1 == 200) print $2; else bad++ }
       END { print "BAD", bad + 0 }' "$tmp/probe.out" | sort -g | awk '
    $1 == "BAD" { bad = $2; next }
    { v[++n] = $1 * 1e3; s += $1 * 1e3 }
    function pct(q,  k) { k = int(q * n + 0.999999); if (k < 1) k = 1; return v[k] }
    END { printf "%d %d %.2f %.2f %.2f %.2f\n", n, bad, pct(0.5), pct(0.9), pct(0.99), n ? s / n : 0 }')

# ---- the server stops cleanly ----
kill -TERM "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=""

# ---- the figures ----
awk -v from=$RSS_FROM -v end="$DURATION" '
  $2 != "" && $1 >= from && $1 <= end { n++; if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2 }
  $2 != "" && $1 == 0 { first = $2 }
  END {
    if (!n) { print "rss none"; exit }
    printf "rss %d %d %d %.2f %d\n", first, min, max, 100 * (max - min) / min, n
  }' "$tmp/rss" >"$tmp/rss.sum"
read -r _ rss_first rss_min rss_max rss_growth rss_n <"$tmp/rss.sum" || true
tokens=$((tokens1 - tokens0))
pass=1
echo
printf '  requests          %d in %.1f s: %.1f requests/s\n' "$requests" "$seconds" "$(awk -v r="$requests" -v s="$seconds" 'BEGIN { print r / s }')"
printf '  latency (probe)   p50 %s ms, p90 %s ms, p99 %s ms, mean %s ms (%d requests one at a time beside wrk)\n' \
  "$probe_p50" "$probe_p90" "$probe_p99" "$probe_mean" "$probe_n"
printf '  latency (wrk)     p50 %s ms, p90 %s ms, p99 %s ms (max %s ms, mean %s ms; with its coordinated-omission correction)\n' \
  "$(get p50_ms)" "$(get p90_ms)" "$(get p99_ms)" "$(get max_ms)" "$(get mean_ms)"
# the server's own view: its latency histogram's sum and count over the run
printf '  server side       %d chat completions answered, mean %.2f ms from headers to last byte\n' \
  "$((server_count1 - server_count0))" \
  "$(awk -v s0="$server_sum0" -v s1="$server_sum1" -v n="$((server_count1 - server_count0))" 'BEGIN { print n ? 1e3 * (s1 - s0) / n : 0 }')"
printf '  tokens            %d completion tokens: %.0f tokens/s (decoder: %.1f rows per step)\n' "$tokens" \
  "$(awk -v t="$tokens" -v s="$seconds" 'BEGIN { print t / s }')" \
  "$(awk -v d="$((decoded1 - decoded0))" -v s="$((steps1 - steps0))" 'BEGIN { print s ? d / s : 0 }')"
echo "  load average      $load0 before, $load1 after (1, 5, 15 min; the server's busy threads count too)"
if [ "$socket_errors" -eq 0 ] && [ "$non2xx" -eq 0 ] && [ "$probe_bad" -eq 0 ]; then
  echo "  errors            none: PASS"
else
  echo "  errors            socket: connect $(get connect), read $(get read), write $(get write), timeout $(get timeout);" \
       "non-2xx: $non2xx (codes $(get codes)); the probe's non-200: $probe_bad: FAIL"
  pass=0
fi
if [ -z "${rss_min:-}" ]; then
  echo "  resident memory   no samples: FAIL"
  pass=0
else
  verdict=$(awk -v g="$rss_growth" 'BEGIN { print g <= 10 ? "PASS" : "FAIL" }')
  printf '  resident memory   %.1f MB at the start; from %d s to the end (%d samples): min %.1f MB, max %.1f MB (+%s%%): %s\n' \
    "$(awk -v k="$rss_first" 'BEGIN { print k / 1024 }')" "$RSS_FROM" "$rss_n" \
    "$(awk -v k="$rss_min" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss_max" 'BEGIN { print k / 1024 }')" \
    "$rss_growth" "$verdict"
  [ "$verdict" = PASS ] || pass=0
fi
if [ "$server_rc" -eq 0 ]; then
  echo "  server exit       0 after SIGTERM"
else
  echo "  server exit       $server_rc after SIGTERM: FAIL"
  tail -n 20 "$tmp/server.log"
  pass=0
fi
if [ "$pass" != 1 ]; then
  echo "== FAIL"
  exit 1
fi
echo "== PASS"

#!/usr/bin/env bash
# The client-side tests of `align serve` (docs/serve.md), run against real servers:
#
#   bash tests/serve/run_tests.sh BUILD_DIR
#
# Starts four servers from BUILD_DIR/align on free ports, each with its own review queue in
# a temporary directory:
#   main     the built-in policy, --api-keys, --max-body 65536, --runs (a small fixture)
#   review   a policy that escalates answers about dragons that lack "ask a grown-up",
#            --api-keys, --runs: the review queue and the dashboard
#   deny     a policy whose constitution denies "Lily" and "red box": replies cut mid-stream
#   limited  --max-concurrent 2: the 429s
# then runs curl_test.sh, openai_test.mjs and (when present, and Chromium is there)
# ui_test.mjs against them, stops every server with SIGTERM and checks that each exited 0
# with no sanitizer report in its log.
#
# Exit status: 0 all passed, 1 something failed, 77 skipped (no curl, no node, or the npm
# modules of tests/serve cannot be installed).  Environment:
#   ALIGN_SERVE_MODEL   the model to serve (default: ALIGN_SHARED_DIR/models/stories260K/
#                       stories260K.bin; ALIGN_SHARED_DIR defaults to the checkout's ../shared)
#   ALIGN_CHROMIUM      the browser for ui_test.mjs (default /usr/bin/chromium)
#   ALIGN_KEEP_TMP=1    keep the temporary directory (servers' logs, review queues)
set -uo pipefail

SKIP=77
say() { echo "serve tests: $*"; }
die() {
    say "ERROR: $*" >&2
    exit 1
}
skip() {
    say "SKIPPED: $*" >&2
    exit $SKIP
}

[ $# -eq 1 ] || die "usage: run_tests.sh BUILD_DIR"
[ -d "$1" ] || die "$1: no such build directory"
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
ALIGN=$BUILD/align
SHARED=${ALIGN_SHARED_DIR:-$SRC/../shared}
MODEL=${ALIGN_SERVE_MODEL:-$SHARED/models/stories260K/stories260K.bin}
CHROMIUM=${ALIGN_CHROMIUM:-/usr/bin/chromium}
T_START=$(date +%s)

# ---- what the tests need ----

[ -x "$ALIGN" ] || die "$ALIGN: not built (cmake --build $BUILD --target align)"
[ -f "$BUILD/harm_default.bin" ] ||
    die "$BUILD/harm_default.bin: the built-in policy's harm model is missing (cmake --build $BUILD --target harm_default_model)"
[ -f "$MODEL" ] || die "$MODEL: no model to serve (set ALIGN_SERVE_MODEL or ALIGN_SHARED_DIR)"
command -v curl >/dev/null || skip "curl is not installed (apt-get install curl)"
command -v node >/dev/null || skip "node is not installed (the openai and dashboard tests run in Node 20)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] 2>/dev/null || skip "node $(node --version) is too old (the openai client needs 18 or later)"

# tests/serve/node_modules, installed from package-lock.json when missing or older than it
# (npm ci records what it installed in node_modules/.package-lock.json)
install_npm_modules() {
    local stamp=$HERE/node_modules/.package-lock.json
    if [ -f "$stamp" ] && [ ! "$HERE/package-lock.json" -nt "$stamp" ] && [ ! "$HERE/package.json" -nt "$stamp" ] &&
        (cd "$HERE" && node -e "import('openai').then(() => process.exit(0), () => process.exit(1))") 2>/dev/null; then
        return 0
    fi
    command -v npm >/dev/null || return 1
    say "installing the npm modules of tests/serve (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
}
# one installer at a time: the optimized and sanitizer builds' tests may run together
if command -v flock >/dev/null; then
    exec 9>"${TMPDIR:-/tmp}/align-serve-npm.lock"
    flock -w 600 9 || die "waited 10 minutes for another npm ci in $HERE"
fi
install_npm_modules || skip "the npm modules of tests/serve could not be installed (npm ci in $HERE)"
if command -v flock >/dev/null; then exec 9>&-; fi
(cd "$HERE" && node -e "import('openai').then(() => process.exit(0), () => process.exit(1))") ||
    skip "the npm module openai does not load from $HERE/node_modules"

RUN_UI=1
if [ ! -f "$HERE/ui_test.mjs" ]; then
    RUN_UI=0
    say "no ui_test.mjs: the dashboard test is skipped"
elif [ ! -x "$CHROMIUM" ]; then
    RUN_UI=0
    say "no Chromium at $CHROMIUM (set ALIGN_CHROMIUM): the dashboard test is skipped"
elif ! (cd "$HERE" && node -e "import('playwright-core').then(() => process.exit(0), () => process.exit(1))"); then
    RUN_UI=0
    say "the npm module playwright-core does not load: the dashboard test is skipped"
fi

# An AddressSanitizer build (ALIGN_SANITIZE=ON) runs several times slower: longer waits.
SLOW=1
if grep -qs '^ALIGN_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    SLOW=4
    say "sanitizer build: timeouts x$SLOW"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- the fixtures ----

W=$(mktemp -d "${TMPDIR:-/tmp}/align-serve-test.XXXXXX")
SERVERS=()
declare -A PID PORT LOG

stop_all() { # SIGTERM to whatever still runs (on an early exit)
    local name
    for name in "${SERVERS[@]}"; do
        if [ -n "${PID[$name]:-}" ] && kill -0 "${PID[$name]}" 2>/dev/null; then
            kill -TERM "${PID[$name]}" 2>/dev/null
        fi
    done
}
cleanup() {
    stop_all
    if [ "${ALIGN_KEEP_TMP:-0}" = 1 ]; then
        say "kept $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

KEY="sk-align-test-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
printf '# API keys of the serve tests (one per line)\n%s\n' "$KEY" >"$W/keys.txt"

cat >"$W/review_policy.yaml" <<'EOF'
# Overlaid on the built-in policy: an answer about dragons must tell to ask a grown-up.
# The model never does, so every such answer is escalated to the review queue.
version: 1
constitution:
  escalation_phrases: ["ask a grown-up"]
  escalation_when: [dragon]
EOF
cat >"$W/deny_policy.yaml" <<'EOF'
# Overlaid on the built-in policy: names the model is sure to write (at temperature 0,
# "Once upon a time" goes on ", there was a little girl named Lily").
version: 1
constitution:
  deny_terms: [Lily, "red box"]
EOF

# a runs directory for the dashboard: one small run per pipeline stage
for run in base sft reward_model dpo aligned; do
    mkdir -p "$W/runs/$run"
    for step in $(seq 1 20); do
        printf '{"step":%d,"loss":%s}\n' "$step" "$(awk -v s="$step" 'BEGIN { printf "%.4f", 3 / (1 + 0.2 * s) }')"
    done >"$W/runs/$run/metrics.jsonl"
done

# ---- the servers ----

# start NAME ARGS...: starts align serve on a free port, its stderr in $W/NAME.log
start() {
    local name=$1
    shift
    SERVERS+=("$name")
    LOG[$name]=$W/$name.log
    "$ALIGN" serve -m "$MODEL" --port 0 --port-file "$W/$name.port" --review-db "$W/$name.db" "$@" \
        >"${LOG[$name]}" 2>&1 &
    PID[$name]=$!
}
# wait_port NAME: waits for the port file (the model and the harm model load first)
wait_port() {
    local name=$1 waited=0 limit=$((30 * SLOW * 10))
    while [ ! -s "$W/$name.port" ]; do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            wait "${PID[$name]}"
            local rc=$?
            PID[$name]=""
            sed 's/^/    /' "${LOG[$name]}" >&2
            die "the $name server exited ($rc) before listening"
        fi
        [ $waited -lt $limit ] || die "the $name server did not listen within $((limit / 10)) s"
        sleep 0.1
        waited=$((waited + 1))
    done
    PORT[$name]=$(cat "$W/$name.port")
    say "$name server: pid ${PID[$name]}, http://127.0.0.1:${PORT[$name]}/"
}
url() { echo "http://127.0.0.1:${PORT[$1]}"; }

MAX_BODY=65536
start main --api-keys "$W/keys.txt" --max-body $MAX_BODY --runs "$W/runs"
start review --policy "$W/review_policy.yaml" --api-keys "$W/keys.txt" --runs "$W/runs"
start deny --policy "$W/deny_policy.yaml"
start limited --max-concurrent 2
for name in "${SERVERS[@]}"; do wait_port "$name"; done

# ---- the tests ----

RESULTS=()
FAILS=0
# run_test NAME TIMEOUT_S COMMAND...: runs one test program, records its outcome
run_test() {
    local name=$1 limit=$(($2 * SLOW)) t0 rc
    shift 2
    say "== $name"
    t0=$(date +%s)
    (cd "$HERE" && timeout -k 10 "$limit" "$@")
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        RESULTS+=("pass  $name (${dt} s)")
    else
        [ $rc -eq 124 ] && say "$name: timed out after $limit s" >&2
        RESULTS+=("FAIL  $name (exit $rc, ${dt} s)")
        FAILS=$((FAILS + 1))
    fi
}

run_test curl_test.sh 120 env ALIGN_URL="$(url main)" ALIGN_API_KEY="$KEY" ALIGN_MAX_BODY=$MAX_BODY \
    ALIGN_LIMITED_URL="$(url limited)" ALIGN_MAX_CONCURRENT=2 \
    ALIGN_REVIEW_URL="$(url review)" ALIGN_CURL_TIMEOUT=$((60 * SLOW)) bash "$HERE/curl_test.sh"

run_test openai_test.mjs 150 env ALIGN_URL="$(url main)" ALIGN_API_KEY="$KEY" \
    ALIGN_DENY_URL="$(url deny)" ALIGN_DENY_API_KEY=none ALIGN_DENY_TERM=Lily ALIGN_DENY_PHRASE="red box" \
    node "$HERE/openai_test.mjs"

if [ $RUN_UI = 1 ]; then
    # a pending item for the dashboard to approve: another escalated answer about a dragon
    # (a prompt of its own: the queue drops repeats of an item curl_test.sh queued)
    # shellcheck disable=SC2016 # the snippet is JavaScript
    REVIEW_ID=$(cd "$HERE" && ALIGN_URL="$(url review)" ALIGN_API_KEY="$KEY" timeout $((60 * SLOW)) node --input-type=module -e '
        const base = process.env.ALIGN_URL, prompt = "The dragon and the princess";
        const headers = { Authorization: `Bearer ${process.env.ALIGN_API_KEY}`, "Content-Type": "application/json" };
        const r = await (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers,
          body: JSON.stringify({ messages: [{ role: "user", content: prompt }], max_tokens: 32, temperature: 0 }) })).json();
        if (r.guard?.output?.action !== "escalate") throw new Error(`not escalated: ${JSON.stringify(r).slice(0, 300)}`);
        const { items } = await (await fetch(`${base}/api/review?state=pending`, { headers })).json();
        const it = items.find((i) => i.input === prompt);
        if (!it) throw new Error(`no pending item for "${prompt}"`);
        console.log(it.id);')
    if [ -n "$REVIEW_ID" ]; then
        say "review item $REVIEW_ID queued for the dashboard"
        run_test ui_test.mjs 120 env ALIGN_URL="$(url review)" ALIGN_API_KEY="$KEY" ALIGN_REVIEW_ID="$REVIEW_ID" \
            ALIGN_SCREENSHOT="$BUILD/serve_ui.png" ALIGN_CHROMIUM="$CHROMIUM" node "$HERE/ui_test.mjs"
    else
        RESULTS+=("FAIL  ui_test.mjs (could not queue a review item for it)")
        FAILS=$((FAILS + 1))
    fi
else
    RESULTS+=("skip  ui_test.mjs")
fi

# ---- stop the servers: each must exit 0, with no sanitizer report ----

for name in "${SERVERS[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null; done
for name in "${SERVERS[@]}"; do
    pid=${PID[$name]}
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt $((300 * SLOW)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        RESULTS+=("FAIL  $name server: still running $((waited / 10)) s after SIGTERM (killed)")
        FAILS=$((FAILS + 1))
    else
        wait "$pid"
        rc=$?
        reports=$(grep -cE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "${LOG[$name]}")
        if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
            RESULTS+=("FAIL  $name server: exit $rc, $reports sanitizer report(s); its log:")
            FAILS=$((FAILS + 1))
            say "---- ${LOG[$name]} (last 60 lines) ----" >&2
            tail -n 60 "${LOG[$name]}" >&2
        else
            RESULTS+=("pass  $name server stopped cleanly")
        fi
    fi
    PID[$name]=""
done

say "---- summary ($(($(date +%s) - T_START)) s) ----"
printf '  %s\n' "${RESULTS[@]}"
if [ $FAILS -gt 0 ]; then
    say "$FAILS failure(s)"
    exit 1
fi
say "all passed"

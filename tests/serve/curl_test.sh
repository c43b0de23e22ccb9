#!/usr/bin/env bash
# align serve over plain HTTP with curl (and grep/sed/awk; no JSON tool): the open
# endpoints, /metrics, the error statuses, API keys, the concurrency limit, the review
# queue and the server-sent events' framing.  docs/serve.md is the contract.
#
#   ALIGN_URL=http://127.0.0.1:PORT  the server (required): built-in policy
#   ALIGN_API_KEY=KEY                its API key (unset or "none": no --api-keys, 401s skipped)
#   ALIGN_MAX_BODY=BYTES             its --max-body (default 1048576)
#   ALIGN_LIMITED_URL=URL            a server started with --max-concurrent ALIGN_MAX_CONCURRENT
#   ALIGN_MAX_CONCURRENT=N           (default 2); unset URL: the 429 checks are skipped
#   ALIGN_REVIEW_URL=URL             a server whose policy has escalation_phrases ["ask a
#                                    grown-up"] and escalation_when [dragon], and a fresh
#                                    review queue; unset: the review checks are skipped
#   ALIGN_REVIEW_API_KEY=KEY         its key (default ALIGN_API_KEY)
#
# Exits 0 when every check passed, 1 listing the failures.
set -uo pipefail

URL=${ALIGN_URL:-}
KEY=${ALIGN_API_KEY:-none}
MAX_BODY=${ALIGN_MAX_BODY:-1048576}
LIMITED_URL=${ALIGN_LIMITED_URL:-}
MAX_CONCURRENT=${ALIGN_MAX_CONCURRENT:-2}
REVIEW_URL=${ALIGN_REVIEW_URL:-}
REVIEW_KEY=${ALIGN_REVIEW_API_KEY:-$KEY}
TIMEOUT=${ALIGN_CURL_TIMEOUT:-120} # seconds per request; an AddressSanitizer build is slow

if [[ ! $URL =~ ^https?://[^/]+$ ]]; then
    echo "curl_test: set ALIGN_URL to the server, e.g. http://127.0.0.1:8080" >&2
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/align-curl-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

# ---- reporting ----

PASSED=0
FAILED=()
SECTION=""
section() { SECTION=$1; echo "curl_test: -- $1"; }
ok() { PASSED=$((PASSED + 1)); echo "curl_test: ok   $1"; }
bad() {
    FAILED+=("[$SECTION] $1")
    echo "curl_test: FAIL $1" >&2
}
# check COND_STATUS DESCRIPTION: records the outcome of the test just run ($?)
check() { if [ "$1" -eq 0 ]; then ok "$2"; else bad "$2"; fi; }

# ---- HTTP ----

auth=() # the Authorization header for the server being tested
set_key() { if [ "$1" = none ]; then auth=(); else auth=(-H "Authorization: Bearer $1"); fi; }

# http METHOD URL [curl options...]: sets STATUS (000 when no answer), BODY and HEADERS.
http() {
    local method=$1 url=$2
    shift 2
    STATUS=$(curl -sS --max-time "$TIMEOUT" -X "$method" -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@" "$url" 2>"$T/err") || STATUS=000
    BODY=$(cat "$T/body" 2>/dev/null)
    HEADERS=$(cat "$T/headers" 2>/dev/null)
    if [ "$STATUS" = 000 ]; then BODY="(no answer: $(cat "$T/err"))"; fi
}
get() { http GET "$@"; }
post_json() { # post_json URL JSON [curl options...]
    local url=$1 body=$2
    shift 2
    http POST "$url" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# expect_status CODE WHAT: the last answer's status; on a mismatch, shows the body
expect_status() {
    if [ "$STATUS" = "$1" ]; then
        ok "$2: HTTP $1"
        return 0
    fi
    bad "$2: HTTP $STATUS, expected $1; body: ${BODY:0:300}"
    return 1
}
# expect_body REGEX WHAT (grep -E on the last body)
expect_body() {
    if grep -qE -- "$1" <<<"$BODY"; then
        ok "$2"
        return 0
    fi
    bad "$2: the body does not match /$1/: ${BODY:0:300}"
    return 1
}
# an error in OpenAI's shape, of this type
expect_error() { expect_body "^\{\"error\":\{\"message\":\"[^\"]+\",\"type\":\"$1\"" "$2: an OpenAI-shaped $1"; }

# metric NAME_WITH_LABELS: its value in the last /metrics text ($METRICS), 0 when absent
metric() { awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }' <<<"$METRICS"; }
read_metrics() {
    get "$URL/metrics"
    METRICS=$BODY
}

chat_body() { # chat_body PROMPT MAX_TOKENS [EXTRA JSON FIELDS]
    printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"temperature":0%s}' "$1" "$2" "${3:+,$3}"
}

# ================= the main server =================
set_key "$KEY"

section "open endpoints"
get "$URL/health"
expect_status 200 "GET /health" && expect_body '"status":"ok"' "/health says ok"
get "$URL/v1/models" "${auth[@]}"
expect_status 200 "GET /v1/models" &&
    expect_body '^\{"object":"list","data":\[\{"id":"[^"]+","object":"model"' "/v1/models lists one model"

section "/metrics"
read_metrics
if expect_status 200 "GET /metrics"; then
    grep -qi '^Content-Type: text/plain' <<<"$HEADERS"
    check $? "/metrics is text/plain"
    grep -q '^# TYPE align_requests_total counter$' <<<"$METRICS"
    check $? "/metrics has # TYPE align_requests_total counter"
    grep -qE '^align_requests_total\{endpoint="/health",code="200"\} [0-9]+$' <<<"$METRICS"
    check $? "/metrics has align_requests_total{endpoint=\"/health\",code=\"200\"}"
    rss=$(metric process_resident_memory_bytes)
    [ "${rss%.*}" -gt 1000000 ] 2>/dev/null
    check $? "/metrics has process_resident_memory_bytes (${rss} bytes)"
    # every sample line is NAME{LABELS} NUMBER: what a Prometheus scraper reads
    odd=$(grep -vE '^(# (HELP|TYPE) .*|[a-z_]+(\{[^}]*\})? -?[0-9.eE+-]+|)$' <<<"$METRICS" | head -3)
    [ -z "$odd" ]
    check $? "every /metrics line is a comment or a sample${odd:+ (not: $odd)}"
    health0=$(metric 'align_requests_total{endpoint="/health",code="200"}')
    done0=$(metric 'align_requests_total{endpoint="/v1/completions",code="200"}')
    tokens0=$(metric align_completion_tokens_total)
    for _ in 1 2 3; do get "$URL/health"; done
    post_json "$URL/v1/completions" '{"prompt":"Once upon a time","max_tokens":16,"temperature":0}' "${auth[@]}"
    expect_status 200 "a completion for the counters"
    used=$(grep -oE '"completion_tokens":[0-9]+' <<<"$BODY" | grep -oE '[0-9]+$')
    read_metrics
    health1=$(metric 'align_requests_total{endpoint="/health",code="200"}')
    done1=$(metric 'align_requests_total{endpoint="/v1/completions",code="200"}')
    tokens1=$(metric align_completion_tokens_total)
    [ $((health1 - health0)) -ge 3 ]
    check $? "align_requests_total for /health went up by 3 or more ($health0 -> $health1)"
    [ $((done1 - done0)) -ge 1 ]
    check $? "align_requests_total for /v1/completions went up ($done0 -> $done1)"
    [ -n "$used" ] && [ $((tokens1 - tokens0)) -ge "$used" ]
    check $? "align_completion_tokens_total went up by the reply's ${used:-?} tokens ($tokens0 -> $tokens1)"
fi

section "malformed requests"
# the stray comma is on line 3, column 16
post_json "$URL/v1/chat/completions" $'{\n  "model": "x",\n  "messages": [,]\n}' "${auth[@]}"
expect_status 400 "malformed JSON" && expect_error invalid_request_error "malformed JSON" &&
    expect_body 'line 3, column 16' "the 400 gives the line and column of the error (line 3, column 16)"
post_json "$URL/v1/chat/completions" '[1, 2]' "${auth[@]}"
expect_status 400 "a JSON array as the body"
post_json "$URL/v1/chat/completions" "$(chat_body 'Hello' 8 '"temperature":5')" "${auth[@]}"
expect_status 400 "temperature 5" && expect_body '"param":"temperature"' "the 400 names the param"
long=$(for i in $(seq 1 80); do printf 'The little dog ran to the park and played with a red ball. '; done)
post_json "$URL/v1/chat/completions" "$(chat_body "$long" 8)" "${auth[@]}"
expect_status 400 "a chat longer than the model's context" &&
    expect_body '"param":"messages","code":"context_length_exceeded"' \
        "the 400 carries OpenAI's code context_length_exceeded and names messages" &&
    expect_body 'maximum context length is [0-9]+ tokens' "the 400 says the model's context length"

section "body limit (--max-body $MAX_BODY)"
head -c $((MAX_BODY + 1)) /dev/zero | tr '\0' ' ' >"$T/over"
head -c "$MAX_BODY" /dev/zero | tr '\0' ' ' >"$T/at"
http POST "$URL/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$T/over" "${auth[@]}"
expect_status 413 "a body of $((MAX_BODY + 1)) bytes (Content-Length)" && expect_error invalid_request_error "413"
http POST "$URL/v1/chat/completions" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/over" "${auth[@]}"
expect_status 413 "a body of $((MAX_BODY + 1)) bytes (chunked, no Content-Length)"
http POST "$URL/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$T/at" "${auth[@]}"
expect_status 400 "a body of exactly $MAX_BODY bytes is read (all spaces: 400, not 413)"

section "unknown paths and wrong methods"
get "$URL/v2/nothing" "${auth[@]}"
expect_status 404 "GET /v2/nothing" && expect_error invalid_request_error "404"
post_json "$URL/v1/chat/completion" "$(chat_body Hi 4)" "${auth[@]}"
expect_status 404 "POST /v1/chat/completion (no s)"
get "$URL/v1/chat/completions" "${auth[@]}"
expect_status 405 "GET /v1/chat/completions" && expect_error invalid_request_error "405"
http POST "$URL/health" --data-binary '{}'
expect_status 405 "POST /health"
http POST "$URL/v1/models" --data-binary '{}' "${auth[@]}"
expect_status 405 "POST /v1/models"
http DELETE "$URL/v1/models" "${auth[@]}"
expect_status 405 "DELETE /v1/models"
http PUT "$URL/v1/completions" --data-binary '{}' "${auth[@]}"
expect_status 405 "PUT /v1/completions"

if [ "$KEY" = none ]; then
    echo "curl_test: skip API keys: ALIGN_API_KEY not set"
else
    section "API keys"
    post_json "$URL/v1/chat/completions" "$(chat_body Hi 4)"
    expect_status 401 "no Authorization header" && expect_error invalid_request_error "401"
    post_json "$URL/v1/chat/completions" "$(chat_body Hi 4)" -H "Authorization: Bearer ${KEY}x"
    expect_status 401 "a wrong key"
    post_json "$URL/v1/chat/completions" "$(chat_body Hi 4)" -H "Authorization: Basic ${KEY}"
    expect_status 401 "the key without Bearer"
    get "$URL/v1/models"
    expect_status 401 "GET /v1/models without a key"
    get "$URL/api/review?state=pending" -H "Authorization: Bearer wrong-key-000"
    expect_status 401 "GET /api/review with a wrong key"
    get "$URL/health" -H "Authorization: Bearer wrong-key-000"
    expect_status 200 "/health with a wrong key stays open"
    get "$URL/health"
    expect_status 200 "/health without a key stays open"
    get "$URL/metrics"
    expect_status 200 "/metrics without a key stays open"
    post_json "$URL/v1/chat/completions" "$(chat_body Hi 4)" "${auth[@]}"
    expect_status 200 "the right key"
fi

section "server-sent events"
curl -sS -N --max-time "$TIMEOUT" -D "$T/sse.h" -o "$T/sse" "${auth[@]}" -H 'Content-Type: application/json' \
    --data-binary "$(chat_body 'Once upon a time' 24 '"stream":true,"stream_options":{"include_usage":true}')" \
    "$URL/v1/chat/completions"
check $? "curl -N of a streamed chat completion"
grep -qiE '^Content-Type: text/event-stream' "$T/sse.h"
check $? "Content-Type: text/event-stream"
# events are "data: ..." lines, each followed by an empty line
awk 'NR % 2 == 1 && !/^data: ./ { exit 1 } NR % 2 == 0 && $0 != "" { exit 1 }' "$T/sse"
check $? "every event is one 'data: ' line and an empty line"
n_json=$(grep -cE '^data: \{.*\}$' "$T/sse")
n_events=$(grep -c '^data: ' "$T/sse")
[ "$n_json" -ge 3 ] && [ "$n_json" -eq $((n_events - 1)) ]
check $? "$n_json JSON events before the end"
[ "$(tail -n 2 "$T/sse" | head -n 1)" = "data: [DONE]" ] && [ "$(tail -c 2 "$T/sse" | od -An -c | tr -d ' ')" = '\n\n' ]
check $? "the stream ends with 'data: [DONE]' and a blank line"
[ "$(grep -c '"finish_reason":"[a-z_]*"' "$T/sse")" -eq 1 ] &&
    grep '"finish_reason":"[a-z_]*"' "$T/sse" | grep -q '"guard":{"input":{"action":"allow"'
check $? "one chunk has a finish_reason, and it carries the guard's verdict"
grep -qE '^data: \{.*"choices":\[\],"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":24,' "$T/sse"
check $? "a usage chunk (include_usage) with the 24 tokens asked for"
# a client that hangs up mid-stream: its request ends and its decoder slot is freed
curl -sS -N --max-time 0.1 -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"prompt":"Once upon a time","max_tokens":256,"stream":true}' "$URL/v1/completions" 2>/dev/null
freed=1
for _ in $(seq 1 100); do
    read_metrics
    if [ "$(metric align_requests_in_flight)" = 0 ] && [ "$(metric align_decode_slots_busy)" = 0 ]; then
        freed=0
        break
    fi
    sleep 0.1
done
check $freed "after a client hung up mid-stream, no request is in flight and no slot busy"

# ================= the concurrency limit =================
if [ -z "$LIMITED_URL" ]; then
    echo "curl_test: skip 429: ALIGN_LIMITED_URL not set"
else
    section "429 beyond --max-concurrent $MAX_CONCURRENT"
    N=8
    # long replies (256 tokens, no stop) so that the requests overlap; all started at once
    long=$(chat_body 'Once upon a time' 256 '"stream":true')
    pids=()
    for i in $(seq 1 $N); do
        curl -sS -N --max-time "$TIMEOUT" -o "$T/burst$i" -D "$T/burst$i.h" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "$long" "$LIMITED_URL/v1/chat/completions" \
            >"$T/burst$i.code" 2>"$T/burst$i.err" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    n200=0 n429=0 other=""
    for i in $(seq 1 $N); do
        code=$(cat "$T/burst$i.code")
        case $code in
        200)
            n200=$((n200 + 1))
            [ "$(tail -n 2 "$T/burst$i" | head -n 1)" = "data: [DONE]" ] ||
                bad "burst request $i: HTTP 200 but the stream did not end with data: [DONE]"
            ;;
        429)
            n429=$((n429 + 1))
            grep -q '"type":"rate_limit_error"' "$T/burst$i" || bad "burst request $i: the 429 is not a rate_limit_error: $(head -c 200 "$T/burst$i")"
            grep -qi '^Retry-After: ' "$T/burst$i.h" || bad "burst request $i: the 429 has no Retry-After header"
            ;;
        *) other="$other #$i:HTTP$code($(head -c 100 "$T/burst$i.err"))" ;;
        esac
    done
    echo "curl_test: $N requests at once: $n200 answered, $n429 refused with 429${other:+, other:$other}"
    [ -z "$other" ]
    check $? "every request of the burst got 200 or 429"
    [ "$n429" -ge 1 ]
    check $? "some requests beyond $MAX_CONCURRENT in flight got 429 ($n429 of $N)"
    [ "$n200" -ge "$MAX_CONCURRENT" ]
    check $? "at least $MAX_CONCURRENT of the burst were answered whole ($n200)"
    # once they are done, the server takes requests again
    post_json "$LIMITED_URL/v1/chat/completions" "$(chat_body Hi 4)"
    expect_status 200 "a request after the burst"
fi

# ================= the review queue =================
if [ -z "$REVIEW_URL" ]; then
    echo "curl_test: skip the review queue: ALIGN_REVIEW_URL not set"
else
    section "review queue"
    set_key "$REVIEW_KEY"
    PROMPT="The dragon"
    # the prompt names a dragon, so the answer must say "ask a grown-up"; it does not: the
    # output rails escalate at the end of the reply, which queues it
    post_json "$REVIEW_URL/v1/chat/completions" "$(chat_body "$PROMPT" 64)" "${auth[@]}"
    expect_status 200 "chat \"$PROMPT\"" &&
        expect_body '"finish_reason":"content_filter"' "the reply is cut (content_filter)" &&
        expect_body '"output":\{"action":"escalate","category":"missing_escalation"' "the output rails escalated it"
    get "$REVIEW_URL/api/review?state=pending" "${auth[@]}"
    expect_status 200 "GET /api/review?state=pending"
    ID=$(grep -oE "\{\"id\":[0-9]+,\"state\":\"pending\",\"created_at\":[0-9]+,\"input\":\"$PROMPT\"" <<<"$BODY" |
        tail -n 1 | sed -E 's/^\{"id":([0-9]+),.*/\1/')
    if [ -z "$ID" ]; then
        bad "no pending item with input \"$PROMPT\" (the queue drops repeats of an item: is the review DB fresh?): ${BODY:0:300}"
    else
        ok "the escalation is pending as item $ID"
        grep -qE "\"id\":$ID,[^}]*\"categories\":\[\"missing_escalation\"\]" <<<"$BODY"
        check $? "item $ID has the category missing_escalation"
        post_json "$REVIEW_URL/api/review/$ID/approve" '{"who":"curl_test","why":"a test"}' "${auth[@]}"
        expect_status 200 "POST /api/review/$ID/approve" &&
            expect_body "^\{\"id\":$ID,\"state\":\"approved\"" "the answer is the approved item"
        get "$REVIEW_URL/api/review?state=pending" "${auth[@]}"
        ! grep -q "\"id\":$ID," <<<"$BODY"
        check $? "item $ID left the pending list"
        get "$REVIEW_URL/api/review?state=approved" "${auth[@]}"
        grep -q "{\"id\":$ID,\"state\":\"approved\"" <<<"$BODY"
        check $? "item $ID is in the approved list"
        post_json "$REVIEW_URL/api/review/$ID/approve" '{}' "${auth[@]}"
        expect_status 409 "approving item $ID again"
        http POST "$REVIEW_URL/api/review/$ID/reject" "${auth[@]}"
        expect_status 409 "rejecting the approved item $ID"
    fi
    http POST "$REVIEW_URL/api/review/987654321/approve" "${auth[@]}"
    expect_status 404 "approving an unknown item"
    http POST "$REVIEW_URL/api/review/abc/approve" "${auth[@]}"
    expect_status 404 "approving item 'abc'"
    http POST "$REVIEW_URL/api/review/1/accept" "${auth[@]}"
    expect_status 404 "an unknown verdict (/accept)"
    get "$REVIEW_URL/api/review?state=bogus" "${auth[@]}"
    expect_status 400 "GET /api/review?state=bogus"
fi

# ================= summary =================
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "curl_test: FAILED ${#FAILED[@]} check(s), $PASSED passed:" >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
fi
echo "curl_test: all $PASSED checks passed"

/* The counters behind /metrics, in Prometheus' text format: requests by endpoint and
 * status, their latency histogram, tokens, the guard's actions on each side, and what the
 * decoder and the process hold now. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const double bucket_le[SRV_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const int codes[SRV_N_CODES] = {200, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503, -1};

static int code_index(int status)
{
    for (int i = 0; i < SRV_N_CODES - 1; i++)
        if (codes[i] == status)
            return i;
    return SRV_N_CODES - 1; /* any other */
}

void srv_stats_init(srv_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
}

void srv_stats_free(srv_stats *st) { pthread_mutex_destroy(&st->mu); }

void srv_count_request(srv_stats *st, int endpoint, int status, double seconds)
{
    if (endpoint < 0 || endpoint >= SRV_N_ENDPOINTS)
        endpoint = EP_OTHER;
    int b = 0;
    while (b < SRV_N_BUCKETS && seconds > bucket_le[b])
        b++;
    pthread_mutex_lock(&st->mu);
    st->requests[endpoint][code_index(status)]++;
    st->latency[endpoint][b]++;
    st->latency_sum[endpoint] += seconds;
    pthread_mutex_unlock(&st->mu);
}

void srv_count_guard(srv_stats *st, int side, al_guard_action a)
{
    pthread_mutex_lock(&st->mu);
    st->guard[side != 0][a]++;
    pthread_mutex_unlock(&st->mu);
}

void srv_count_tokens(srv_stats *st, int prompt, int completion)
{
    pthread_mutex_lock(&st->mu);
    st->prompt_tokens += prompt;
    st->completion_tokens += completion;
    pthread_mutex_unlock(&st->mu);
}

void srv_count_filtered(srv_stats *st, bool at_input)
{
    pthread_mutex_lock(&st->mu);
    if (at_input)
        st->guard_blocked_input++;
    else
        st->guard_cut_output++;
    pthread_mutex_unlock(&st->mu);
}

static long resident_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int got = fscanf(f, "%ld %ld", &pages, &resident);
    fclose(f);
    return got == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

enum MHD_Result srv_metrics(al_server *s, struct MHD_Connection *c)
{
    srv_stats st;
    srv_engine_stats es;
    pthread_mutex_lock(&s->stats.mu);
    memcpy(&st, &s->stats, sizeof st);
    pthread_mutex_unlock(&s->stats.mu);
    srv_engine_get_stats(s->engine, &es);
    al_buf b = {0};
    al_buf_printf(&b, "# HELP align_requests_total HTTP requests answered, by endpoint and status code.\n"
                      "# TYPE align_requests_total counter\n");
    for (int e = 0; e <= EP_OTHER; e++)
        for (int k = 0; k < SRV_N_CODES; k++)
            if (st.requests[e][k])
                al_buf_printf(&b, "align_requests_total{endpoint=\"%s\",code=\"%s%d\"} %lld\n", srv_endpoint_name(e),
                              codes[k] < 0 ? "other" : "", codes[k] < 0 ? 0 : codes[k], st.requests[e][k]);
    al_buf_printf(&b, "# HELP align_request_duration_seconds Time from the request's headers to its last byte.\n"
                      "# TYPE align_request_duration_seconds histogram\n");
    for (int e = 0; e <= EP_OTHER; e++) {
        long long total = 0;
        for (int k = 0; k <= SRV_N_BUCKETS; k++)
            total += st.latency[e][k];
        if (!total)
            continue;
        long long cum = 0;
        for (int k = 0; k < SRV_N_BUCKETS; k++) {
            cum += st.latency[e][k];
            al_buf_printf(&b, "align_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %lld\n",
                          srv_endpoint_name(e), bucket_le[k], cum);
        }
        al_buf_printf(&b, "align_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %lld\n",
                      srv_endpoint_name(e), total);
        al_buf_printf(&b, "align_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", srv_endpoint_name(e),
                      st.latency_sum[e]);
        al_buf_printf(&b, "align_request_duration_seconds_count{endpoint=\"%s\"} %lld\n", srv_endpoint_name(e),
                      total);
    }
    al_buf_printf(&b,
                  "# HELP align_prompt_tokens_total Prompt tokens read.\n# TYPE align_prompt_tokens_total counter\n"
                  "align_prompt_tokens_total %lld\n"
                  "# HELP align_completion_tokens_total Tokens generated and returned.\n"
                  "# TYPE align_completion_tokens_total counter\nalign_completion_tokens_total %lld\n"
                  "# HELP align_decoded_tokens_total Tokens the decoder sampled (including cut replies).\n"
                  "# TYPE align_decoded_tokens_total counter\nalign_decoded_tokens_total %lld\n"
                  "# HELP align_decode_steps_total Batched decoding steps.\n"
                  "# TYPE align_decode_steps_total counter\nalign_decode_steps_total %lld\n",
                  st.prompt_tokens, st.completion_tokens, es.tokens, es.steps);
    al_buf_printf(&b, "# HELP align_guard_decisions_total The guard's decisions, by side and action.\n"
                      "# TYPE align_guard_decisions_total counter\n");
    for (int side = 0; side < 2; side++)
        for (int a = 0; a <= AL_GUARD_BLOCK; a++)
            al_buf_printf(&b, "align_guard_decisions_total{side=\"%s\",action=\"%s\"} %lld\n",
                          side ? "output" : "input", al_guard_action_name((al_guard_action)a), st.guard[side][a]);
    al_buf_printf(&b,
                  "# HELP align_guard_blocked_prompts_total Completions answered with the canned reply at the prompt.\n"
                  "# TYPE align_guard_blocked_prompts_total counter\nalign_guard_blocked_prompts_total %lld\n"
                  "# HELP align_guard_cut_replies_total Replies the output rails cut with the canned reply.\n"
                  "# TYPE align_guard_cut_replies_total counter\nalign_guard_cut_replies_total %lld\n"
                  "# HELP align_review_enqueued_total Escalations queued for review.\n"
                  "# TYPE align_review_enqueued_total counter\nalign_review_enqueued_total %lld\n"
                  "# HELP align_requests_in_flight Model requests being answered.\n"
                  "# TYPE align_requests_in_flight gauge\nalign_requests_in_flight %d\n"
                  "# HELP align_decode_slots_busy Decoder slots holding a request.\n"
                  "# TYPE align_decode_slots_busy gauge\nalign_decode_slots_busy %d\n"
                  "# HELP align_decode_slots Decoder slots.\n# TYPE align_decode_slots gauge\nalign_decode_slots %d\n"
                  "# HELP align_queue_length Requests waiting for a slot.\n"
                  "# TYPE align_queue_length gauge\nalign_queue_length %d\n"
                  "# HELP process_resident_memory_bytes Resident memory.\n"
                  "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                  "# HELP align_uptime_seconds Seconds since the server started.\n"
                  "# TYPE align_uptime_seconds gauge\nalign_uptime_seconds %.3f\n",
                  st.guard_blocked_input, st.guard_cut_output, st.review_enqueued, atomic_load(&s->in_flight),
                  es.live, es.slots, es.queued, resident_bytes(), al_now() - s->started);
    enum MHD_Result r = b.data ? srv_send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len)
                               : srv_send_error(c, 500, "server_error", NULL, "out of memory");
    al_buf_free(&b);
    return r;
}

/* The bucket bound under which a fraction q of the histogram's requests fall. */
static double quantile(const long long *h, long long total, double q)
{
    long long cum = 0;
    for (int k = 0; k < SRV_N_BUCKETS; k++) {
        cum += h[k];
        if (cum >= q * (double)total)
            return bucket_le[k];
    }
    return INFINITY;
}

void al_server_counts(al_server *s, al_serve_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->stats.mu);
    const srv_stats *st = &s->stats;
    long long hist[SRV_N_BUCKETS + 1] = {0};
    double sum = 0;
    for (int e = 0; e < SRV_N_ENDPOINTS; e++)
        for (int k = 0; k < SRV_N_CODES; k++) {
            out->requests += st->requests[e][k];
            if (codes[k] != 200)
                out->errors += st->requests[e][k];
            if (e == EP_CHAT || e == EP_COMPLETIONS)
                out->model_requests += st->requests[e][k];
        }
    for (int e = EP_CHAT; e <= EP_COMPLETIONS; e++) {
        for (int k = 0; k <= SRV_N_BUCKETS; k++)
            hist[k] += st->latency[e][k];
        sum += st->latency_sum[e];
    }
    out->input_blocked = st->guard_blocked_input;
    out->output_cut = st->guard_cut_output;
    out->output_redacted = st->guard[1][AL_GUARD_REDACT];
    out->review_queued = st->review_enqueued;
    out->prompt_tokens = st->prompt_tokens;
    out->completion_tokens = st->completion_tokens;
    pthread_mutex_unlock(&s->stats.mu);
    if (out->model_requests > 0) {
        out->model_latency_mean = sum / (double)out->model_requests;
        out->model_latency_p50 = quantile(hist, out->model_requests, 0.5);
        out->model_latency_p99 = quantile(hist, out->model_requests, 0.99);
    }
}

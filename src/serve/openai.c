/* The model endpoints in OpenAI's shapes: chat completions, text completions (each
 * streamed as server-sent events or whole), moderations backed by the guard, models.
 *
 * A reply goes through the guard twice.  The prompt is checked before it is decoded: a
 * block or escalation answers with the policy's canned reply.  The reply is checked as
 * it grows, and only checked text is sent: when a rail blocks or escalates, decoding
 * stops and the canned reply ends the answer (finish_reason "content_filter"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum { MAX_STOPS = 4, HOLD_BYTES = 48 };

typedef struct gen_params {
    int max_tokens;
    al_sampler_opts so;
    const char *stops[MAX_STOPS];
    int n_stops;
    bool stream, include_usage;
} gen_params;

/* ---- request fields ---- */

static const char *bad(char *msg, size_t cap, const char *param, const char *fmt, const char *what)
{
    snprintf(msg, cap, fmt, what);
    return param;
}

/* Returns NULL when the fields are usable, else the offending field's name (msg says why). */
static const char *read_params(const al_server *s, const json_t *req, gen_params *p, char *msg, size_t cap)
{
    *p = (gen_params){.max_tokens = s->o.max_tokens, .so = al_sampler_defaults()};
    p->so.repeat_penalty = 1.0f;
    const json_t *v;
    if ((v = json_object_get(req, "max_completion_tokens")) || (v = json_object_get(req, "max_tokens"))) {
        if (!json_is_null(v)) {
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                return bad(msg, cap, "max_tokens", "%s must be a positive integer", "max_tokens");
            if (json_integer_value(v) < p->max_tokens)
                p->max_tokens = (int)json_integer_value(v); /* larger asks are clipped to the server's cap */
        }
    }
    if ((v = json_object_get(req, "temperature")) && !json_is_null(v)) {
        double t = json_number_value(v);
        if (!json_is_number(v) || t < 0 || t > 2)
            return bad(msg, cap, "temperature", "%s must be a number in [0, 2]", "temperature");
        p->so.temperature = (float)t;
    }
    if ((v = json_object_get(req, "top_p")) && !json_is_null(v)) {
        double t = json_number_value(v);
        if (!json_is_number(v) || !(t > 0 && t <= 1))
            return bad(msg, cap, "top_p", "%s must be a number in (0, 1]", "top_p");
        p->so.top_p = (float)t;
    }
    if ((v = json_object_get(req, "n")) && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return bad(msg, cap, "n", "%s: only one choice per request is served (n = 1)", "n");
    if ((v = json_object_get(req, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return bad(msg, cap, "seed", "%s must be an integer", "seed");
        p->so.seed = (uint64_t)json_integer_value(v);
    } else {
        p->so.seed = 0; /* the caller draws one */
    }
    if ((v = json_object_get(req, "stream")) && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return bad(msg, cap, "stream", "%s must be true or false", "stream");
        p->stream = json_is_true(v);
    }
    const json_t *so = json_object_get(req, "stream_options");
    p->include_usage = json_is_true(json_object_get(so, "include_usage"));
    if ((v = json_object_get(req, "stop")) && !json_is_null(v)) {
        if (json_is_string(v)) {
            p->stops[p->n_stops++] = json_string_value(v);
        } else if (json_is_array(v) && json_array_size(v) <= MAX_STOPS) {
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e))
                    return bad(msg, cap, "stop", "%s must be a string or an array of up to 4 strings", "stop");
                p->stops[p->n_stops++] = json_string_value(e);
            }
        } else {
            return bad(msg, cap, "stop", "%s must be a string or an array of up to 4 strings", "stop");
        }
        for (int i = 0; i < p->n_stops; i++)
            if (!p->stops[i][0])
                return bad(msg, cap, "stop", "%s strings must not be empty", "stop");
    }
    return NULL;
}

/* A message's content: a string, or OpenAI's array of parts of which the text parts count. */
static int content_text(const json_t *content, al_buf *out)
{
    if (json_is_string(content))
        return al_buf_append(out, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return -1;
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t) && al_buf_append(out, json_string_value(t), json_string_length(t)))
            return -1;
    }
    return 0;
}

/* ---- the guard's verdicts ---- */

/* The guard is read-only and shared by every connection's thread, except when its
 * perplexity rail is on: that rail's language model keeps state, so calls take turns. */
static int check_in(al_server *s, const char *text, size_t n, al_guard_decision *d)
{
    if (s->guard_serialize)
        pthread_mutex_lock(&s->guard_mu);
    int rc = al_guard_check_input(s->o.guard, text, n, d);
    if (s->guard_serialize)
        pthread_mutex_unlock(&s->guard_mu);
    return rc;
}

static int check_out(al_server *s, const char *prompt, size_t plen, const char *text, size_t n,
                     al_guard_decision *d)
{
    if (s->guard_serialize)
        pthread_mutex_lock(&s->guard_mu);
    int rc = al_guard_check_output(s->o.guard, prompt, plen, text, n, d);
    if (s->guard_serialize)
        pthread_mutex_unlock(&s->guard_mu);
    return rc;
}

static json_t *verdict_json(const al_guard_decision *d)
{
    if (!d)
        return json_pack("{s:s, s:n, s:[]}", "action", "allow", "category", "reasons");
    json_t *reasons = json_array();
    for (int i = 0; i < d->n_reasons; i++)
        json_array_append_new(reasons, json_string(d->reasons[i]));
    return json_pack("{s:s, s:s?, s:o}", "action", al_guard_action_name(d->action), "category",
                     d->category >= 0 && d->action != AL_GUARD_ALLOW ? al_guard_category_name(d->category) : NULL,
                     "reasons", reasons);
}

static const char *canned_reply(const al_guard_decision *d)
{
    return d->reply && d->reply[0] ? d->reply : "Sorry, I can't help with that.";
}

/* ---- one reply, from the first token to the last chunk ---- */

typedef enum { PH_START, PH_BODY, PH_END } phase;

typedef struct reply {
    al_server *s;
    json_t *req; /* kept: the stop strings point into it */
    srv_job *job;
    bool chat, stream, include_usage;
    char id[48];
    long long created;
    char *prompt_text; /* what the output rails see as context: the last user message or prompt */
    size_t prompt_len;
    int prompt_tokens, prev;
    const char *stops[MAX_STOPS + 8];
    int n_stops;
    size_t longest_stop;
    al_buf text;       /* the reply as decoded (after a stop string, cut) */
    bool started;      /* a chat reply's leading whitespace dropped */
    size_t checked;    /* bytes of text the output rails passed */
    al_buf shown;      /* what the client got so far (redactions applied) */
    int n_tokens, since_check;
    json_t *guard_in, *guard_out;
    al_guard_decision last; /* the latest output decision (its redactions) */
    bool have_last, blocked_input, filtered, done;
    al_guard_action out_action; /* the output rails' last word */
    char *canned;
    const char *finish;
    /* server-sent events */
    phase ph;
    al_buf pending;
    size_t pending_off;
} reply;

static void reply_free(reply *r)
{
    if (r->job)
        srv_job_release(r->job);
    json_decref(r->req);
    json_decref(r->guard_in);
    json_decref(r->guard_out);
    if (r->have_last)
        al_guard_decision_free(&r->last);
    free(r->prompt_text);
    free(r->canned);
    al_buf_free(&r->text);
    al_buf_free(&r->shown);
    al_buf_free(&r->pending);
    free(r);
}

/* The earliest stop string in text at or after from, or -1. */
static long find_stop(const reply *r, size_t from)
{
    long best = -1;
    for (int k = 0; k < r->n_stops; k++) {
        const char *at = memmem(r->text.data + from, r->text.len - from, r->stops[k], strlen(r->stops[k]));
        if (at && (best < 0 || at - r->text.data < best))
            best = at - r->text.data;
    }
    return best;
}

static void end_filtered(reply *r, const al_guard_decision *d)
{
    r->filtered = true;
    r->finish = "content_filter";
    r->out_action = d->action;
    free(r->canned);
    r->canned = strdup(canned_reply(d));
    if (r->job)
        srv_job_cancel(r->job);
    if (d->action == AL_GUARD_ESCALATE)
        srv_review_enqueue(r->s, d, r->prompt_text, r->prompt_len, r->text.data ? r->text.data : "", r->text.len);
}

/* Runs the output rails on the reply so far; false when they ended it.  The rule that an
 * answer must give the way to reach a person judges whole answers: mid-reply it waits. */
static bool check_output(reply *r, bool final)
{
    const al_guard *g = r->s->o.guard;
    r->since_check = 0;
    if (!g) {
        r->checked = r->text.len;
        return true;
    }
    al_guard_decision d = {0};
    if (check_out(r->s, r->prompt_text, r->prompt_len, r->text.data ? r->text.data : "", r->text.len, &d)) {
        /* out of memory: nothing unchecked goes out */
        al_guard_decision_free(&d);
        al_guard_decision fail = {.action = AL_GUARD_BLOCK, .category = -1};
        end_filtered(r, &fail);
        return false;
    }
    json_decref(r->guard_out);
    r->guard_out = verdict_json(&d);
    if (d.action >= AL_GUARD_ESCALATE && !(d.category == AL_GCAT_MISSING_ESCALATION && !final)) {
        end_filtered(r, &d);
        al_guard_decision_free(&d);
        return false;
    }
    if (r->have_last)
        al_guard_decision_free(&r->last);
    r->last = d;
    r->have_last = true;
    r->out_action = d.action;
    r->checked = r->text.len;
    return true;
}

/* Waits for the next tokens and takes them in: stop strings, the end, the output rails. */
static void pump(reply *r)
{
    int ids[64];
    srv_finish fin = SRV_RUNNING;
    const int n = srv_job_wait(r->job, r->n_tokens, ids, 64, &fin, -1);
    bool end = false;
    /* Token by token, so that where a stop string or a rail ends the reply (and what was
     * shown before) does not depend on how many tokens each wait brought. */
    for (int i = 0; i < n && !end; i++) {
        const size_t before = r->text.len;
        al_tokenizer_decode_token(r->s->o.tok, r->prev, ids[i], &r->text);
        r->prev = ids[i];
        r->n_tokens++;
        r->since_check++;
        if (!r->started && r->text.len && r->chat) { /* a chat reply starts at its first word */
            size_t lead = 0;
            while (lead < r->text.len && isspace((unsigned char)r->text.data[lead]))
                lead++;
            memmove(r->text.data, r->text.data + lead, r->text.len - lead);
            r->text.len -= lead;
            r->text.data[r->text.len] = 0;
            r->started = r->text.len > 0;
        }
        size_t from = before > r->longest_stop ? before - r->longest_stop : 0;
        long cut = r->n_stops && r->text.len ? find_stop(r, from < r->text.len ? from : 0) : -1;
        if (cut >= 0) {
            r->text.len = (size_t)cut;
            if (r->text.data)
                r->text.data[cut] = 0;
            srv_job_cancel(r->job);
            r->finish = "stop";
            end = true;
        } else if (i == n - 1 && fin != SRV_RUNNING) {
            r->finish = fin == SRV_LENGTH || fin == SRV_CONTEXT ? "length" : "stop";
            end = true;
        }
        if ((end || r->since_check >= r->s->o.check_every) && !check_output(r, end))
            end = true;
    }
    if (n == 0 && fin != SRV_RUNNING) { /* ended without another token */
        r->finish = fin == SRV_LENGTH || fin == SRV_CONTEXT ? "length" : "stop";
        check_output(r, true);
        end = true;
    }
    r->done = end;
}

/* What may be shown now: the checked text, less a tail that could still become a stop
 * string or a span to redact, never ending inside a redacted span or a UTF-8 sequence;
 * redactions applied.  Appends the new part to out. */
static int take_shown(reply *r, al_buf *out)
{
    size_t limit = r->checked;
    if (!r->done || r->filtered) { /* a cut reply keeps its held tail: it may begin what tripped the rail */
        size_t hold = r->longest_stop > 0 ? r->longest_stop - 1 : 0;
        if (r->s->o.guard && hold < HOLD_BYTES)
            hold = HOLD_BYTES;
        limit = limit > hold ? limit - hold : 0;
        while (limit > 0 && limit < r->text.len && (r->text.data[limit] & 0xC0) == 0x80)
            limit--;
        for (int i = 0; r->have_last && i < r->last.n_spans; i++)
            if (r->last.spans[i].start < limit && r->last.spans[i].end > limit)
                limit = r->last.spans[i].start;
    }
    const char *src = r->text.data ? r->text.data : "";
    size_t n = limit;
    al_guard_decision pd = {0};
    bool redacted = false; /* src points into pd */
    if (r->have_last && r->last.action == AL_GUARD_REDACT && limit > 0) {
        /* the redactions of the part shown, as the rails make them on that part */
        if (limit == r->text.len) {
            src = r->last.redacted, n = r->last.redacted_len;
        } else if (check_out(r->s, r->prompt_text, r->prompt_len, r->text.data, limit, &pd) ==
                       0 &&
                   pd.redacted) {
            src = pd.redacted, n = pd.redacted_len;
            redacted = true;
        }
    }
    int rc = 0;
    if (n > r->shown.len) {
        rc = al_buf_append(out, src + r->shown.len, n - r->shown.len);
        rc |= al_buf_append(&r->shown, src + r->shown.len, n - r->shown.len);
    }
    (void)redacted;
    al_guard_decision_free(&pd);
    return rc;
}

/* The reply's figures, once, when it is complete. */
static void count_reply(const reply *r)
{
    /* a prompt blocked at the input was counted for usage but never read */
    srv_count_tokens(&r->s->stats, r->blocked_input ? 0 : r->prompt_tokens, r->n_tokens);
    if (r->s->o.guard && !r->blocked_input)
        srv_count_guard(&r->s->stats, 1, r->out_action);
    if (r->filtered)
        srv_count_filtered(&r->s->stats, r->blocked_input);
}

/* ---- SSE ---- */

static json_t *chunk(const reply *r, json_t *delta_or_text, const char *finish)
{
    json_t *choice = r->chat ? json_pack("{s:i, s:o, s:s?, s:n}", "index", 0, "delta", delta_or_text,
                                         "finish_reason", finish, "logprobs")
                             : json_pack("{s:i, s:o, s:s?, s:n}", "index", 0, "text", delta_or_text,
                                         "finish_reason", finish, "logprobs");
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object",
                     r->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)r->created,
                     "model", r->s->o.model_id, "choices", choice);
}

static void emit(reply *r, json_t *event)
{
    char *text = event ? json_dumps(event, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(event);
    if (!text)
        return;
    al_buf_append(&r->pending, "data: ", 6);
    al_buf_append(&r->pending, text, strlen(text));
    al_buf_append(&r->pending, "\n\n", 2);
    free(text);
}

static void emit_text(reply *r, const char *text, size_t n)
{
    if (n == 0)
        return;
    json_t *t = json_stringn(text, n);
    emit(r, chunk(r, r->chat ? json_pack("{s:o}", "content", t) : t, NULL));
}

static json_t *usage(const reply *r)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", r->prompt_tokens, "completion_tokens", r->n_tokens,
                     "total_tokens", r->prompt_tokens + r->n_tokens);
}

static void emit_end(reply *r)
{
    if (r->filtered)
        emit_text(r, r->canned, strlen(r->canned));
    json_t *last = chunk(r, r->chat ? json_object() : json_string(""), r->finish ? r->finish : "stop");
    json_object_set_new(last, "guard",
                        r->s->o.guard ? json_pack("{s:O, s:O?}", "input", r->guard_in, "output", r->guard_out)
                                      : json_null());
    emit(r, last);
    if (r->include_usage) {
        json_t *u = chunk(r, json_object(), NULL);
        json_object_set_new(u, "choices", json_array());
        json_object_set_new(u, "usage", usage(r));
        emit(r, u);
    }
    al_buf_append(&r->pending, "data: [DONE]\n\n", 14);
    count_reply(r);
}

/* Fills r->pending with the next events; blocks for tokens. */
static void next_events(reply *r)
{
    if (r->ph == PH_START) {
        if (r->chat)
            emit(r, chunk(r, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
        r->ph = PH_BODY;
        if (r->blocked_input) {
            emit_end(r);
            r->ph = PH_END;
        }
        return;
    }
    pump(r);
    al_buf fresh = {0};
    take_shown(r, &fresh);
    emit_text(r, fresh.data, fresh.len);
    al_buf_free(&fresh);
    if (r->done) {
        emit_end(r);
        r->ph = PH_END;
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    reply *r = cls;
    while (r->pending_off >= r->pending.len) {
        if (r->ph == PH_END && r->pending.len)
            return MHD_CONTENT_READER_END_OF_STREAM;
        r->pending.len = 0;
        r->pending_off = 0;
        next_events(r);
    }
    size_t n = r->pending.len - r->pending_off;
    n = n < max ? n : max;
    memcpy(buf, r->pending.data + r->pending_off, n);
    r->pending_off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls) { reply_free(cls); }

static enum MHD_Result send_stream(struct MHD_Connection *c, reply *r)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, r, sse_free);
    if (!resp) {
        reply_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_whole(struct MHD_Connection *c, reply *r)
{
    while (!r->blocked_input && !r->done)
        pump(r);
    const char *content;
    size_t n;
    if (r->filtered) {
        content = r->canned, n = strlen(r->canned);
    } else if (r->have_last && r->last.action == AL_GUARD_REDACT && r->last.redacted) {
        content = r->last.redacted, n = r->last.redacted_len;
    } else {
        content = r->text.data ? r->text.data : "", n = r->text.len;
    }
    json_t *body = json_stringn(content, n);
    json_t *choice = r->chat ? json_pack("{s:i, s:{s:s, s:o}, s:s, s:n}", "index", 0, "message", "role",
                                         "assistant", "content", body, "finish_reason",
                                         r->finish ? r->finish : "stop", "logprobs")
                             : json_pack("{s:i, s:o, s:s, s:n}", "index", 0, "text", body, "finish_reason",
                                         r->finish ? r->finish : "stop", "logprobs");
    json_t *out = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", r->id, "object",
                            r->chat ? "chat.completion" : "text_completion", "created", (json_int_t)r->created,
                            "model", r->s->o.model_id, "choices", choice, "usage", usage(r));
    json_object_set_new(out, "guard",
                        r->s->o.guard ? json_pack("{s:O, s:O?}", "input", r->guard_in, "output", r->guard_out)
                                      : json_null());
    count_reply(r);
    reply_free(r);
    return srv_send_json(c, 200, out);
}

/* ---- the two generating endpoints ---- */

static json_t *parse_body(struct MHD_Connection *c, srv_request *rq, enum MHD_Result *ret)
{
    json_error_t err;
    json_t *req = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, 0, &err);
    if (!req) {
        *ret = srv_send_error(c, 400, "invalid_request_error", NULL, "malformed JSON at line %d, column %d: %s",
                              err.line, err.column, err.text);
        return NULL;
    }
    if (!json_is_object(req)) {
        json_decref(req);
        *ret = srv_send_error(c, 400, "invalid_request_error", NULL, "the body must be a JSON object");
        return NULL;
    }
    return req;
}

/* The ids the model reads: the chat rendered by the template, or the raw text, after BOS */
static int encode_prompt(const al_server *s, bool chat, const al_message *msgs, int n_msgs, const char *prompt,
                         size_t prompt_len, al_ints *ids)
{
    if (!chat)
        return al_tokenizer_encode(s->o.tok, prompt, prompt_len, al_tokenizer_bos(s->o.tok) >= 0, false, ids);
    al_buf rendered = {0};
    int rc = al_chat_render(s->o.tmpl, msgs, n_msgs, true, &rendered, NULL, NULL) ||
                     al_tokenizer_encode(s->o.tok, rendered.data ? rendered.data : "", rendered.len,
                                         al_chat_template_adds_bos(s->o.tmpl) && al_tokenizer_bos(s->o.tok) >= 0,
                                         false, ids)
                 ? -1
                 : 0;
    al_buf_free(&rendered);
    return rc;
}

/* Checks the prompt, submits the job, answers. prompt_text is what the input rails see. */
static enum MHD_Result answer(al_server *s, struct MHD_Connection *c, json_t *req, bool chat, const gen_params *p,
                              al_message *msgs, int n_msgs, const char *prompt, size_t prompt_len)
{
    reply *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(req);
        return srv_send_error(c, 500, "server_error", NULL, "out of memory");
    }
    r->s = s;
    r->req = req;
    r->chat = chat;
    r->stream = p->stream;
    r->include_usage = p->include_usage;
    r->created = (long long)time(NULL);
    unsigned long long nonce = atomic_fetch_add(&s->seed, 0x9E3779B97F4A7C15ull);
    snprintf(r->id, sizeof r->id, "%s-%016llx", chat ? "chatcmpl" : "cmpl", nonce);
    r->prompt_text = strndup(prompt, prompt_len);
    r->prompt_len = prompt_len;
    for (int k = 0; k < p->n_stops; k++)
        r->stops[r->n_stops++] = p->stops[k];
    for (int k = 0; chat && k < s->n_chat_stop_strings && r->n_stops < MAX_STOPS + 8; k++)
        r->stops[r->n_stops++] = s->chat_stop_strings[k];
    for (int k = 0; k < r->n_stops; k++)
        if (strlen(r->stops[k]) > r->longest_stop)
            r->longest_stop = strlen(r->stops[k]);
    if (!r->prompt_text) {
        reply_free(r);
        return srv_send_error(c, 500, "server_error", NULL, "out of memory");
    }
    /* input rails */
    al_guard_decision in = {0};
    bool have_in = false;
    if (s->o.guard) {
        if (check_in(s, prompt, prompt_len, &in)) {
            reply_free(r);
            return srv_send_error(c, 500, "server_error", NULL, "out of memory");
        }
        have_in = true;
        srv_count_guard(&s->stats, 0, in.action);
        r->guard_in = verdict_json(&in);
        if (in.action >= AL_GUARD_ESCALATE) {
            r->blocked_input = true;
            r->filtered = true;
            r->finish = "content_filter";
            r->canned = strdup(canned_reply(&in));
            /* usage counts the prompt the model would have read, as for any other reply */
            al_ints ids = {0};
            if (encode_prompt(s, chat, msgs, n_msgs, prompt, prompt_len, &ids) == 0)
                r->prompt_tokens = ids.n;
            al_ints_free(&ids);
            if (in.action == AL_GUARD_ESCALATE)
                srv_review_enqueue(s, &in, prompt, prompt_len, NULL, 0);
        } else if (in.action == AL_GUARD_REDACT && in.redacted) {
            /* the model reads the prompt with its redactions */
            if (chat) {
                for (int i = n_msgs - 1; i >= 0; i--)
                    if (msgs[i].role == AL_ROLE_USER) {
                        free(msgs[i].content);
                        msgs[i].content = strndup(in.redacted, in.redacted_len);
                        break;
                    }
            } else {
                prompt = in.redacted, prompt_len = in.redacted_len;
            }
        }
    } else {
        r->guard_in = verdict_json(NULL);
    }
    enum MHD_Result ret = MHD_NO;
    if (!r->blocked_input) {
        al_ints ids = {0};
        int rc = encode_prompt(s, chat, msgs, n_msgs, prompt, prompt_len, &ids);
        if (rc == 0 && ids.n == 0)
            rc = al_fail("the prompt is empty and the tokenizer has no BOS token to start from");
        /* OpenAI's answer to an input the model cannot hold; old turns are not dropped */
        const int context = s->o.model->cfg.seq_len;
        const char *param = NULL, *code = NULL;
        if (rc == 0 && ids.n >= context) {
            param = chat ? "messages" : "prompt", code = "context_length_exceeded";
            rc = al_fail("This model's maximum context length is %d tokens, and the %s came to %d tokens (with "
                         "room for at least one new token). Please reduce the length of the %s.",
                         context, param, ids.n, param);
        }
        srv_job_opts jo = {.prompt = ids.v, .n_prompt = ids.n, .max_new_tokens = p->max_tokens, .sampling = p->so,
                           .stop_ids = chat ? s->chat_stop_ids : s->text_stop_ids,
                           .n_stop_ids = chat ? s->n_chat_stop_ids : s->n_text_stop_ids};
        if (jo.sampling.seed == 0)
            jo.sampling.seed = nonce | 1;
        if (rc == 0) {
            r->prompt_tokens = ids.n;
            r->prev = ids.v[ids.n - 1];
            r->job = srv_submit(s->engine, &jo);
        }
        al_ints_free(&ids);
        if (rc || !r->job) {
            bool busy = rc == 0 && atomic_load(&s->stopping);
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", al_errmsg());
            if (have_in)
                al_guard_decision_free(&in);
            reply_free(r);
            return srv_send_error_code(c, busy ? 503 : 400, busy ? "server_error" : "invalid_request_error", param,
                                       code, "%s", msg);
        }
    }
    if (have_in)
        al_guard_decision_free(&in);
    ret = r->stream ? send_stream(c, r) : send_whole(c, r);
    return ret;
}

static void free_messages(al_message *m, int n)
{
    for (int i = 0; i < n; i++)
        free(m[i].content);
    free(m);
}

/* The body as a JSON object and its generation fields; NULL after answering the error. */
static json_t *parse_generation(al_server *s, struct MHD_Connection *c, srv_request *rq, gen_params *p,
                                enum MHD_Result *ret)
{
    json_t *req = parse_body(c, rq, ret);
    if (!req)
        return NULL;
    char msg[256];
    const char *param = read_params(s, req, p, msg, sizeof msg);
    if (param) {
        json_decref(req);
        *ret = srv_send_error(c, 400, "invalid_request_error", param, "%s", msg);
        return NULL;
    }
    return req;
}

enum MHD_Result srv_chat(al_server *s, struct MHD_Connection *c, srv_request *rq)
{
    enum MHD_Result ret = MHD_NO;
    gen_params p;
    json_t *req = parse_generation(s, c, rq, &p, &ret);
    if (!req)
        return ret;
    if (!s->o.tmpl) {
        json_decref(req);
        return srv_send_error(c, 400, "invalid_request_error", NULL, "this model has no chat template");
    }
    const json_t *ms = json_object_get(req, "messages");
    if (!json_is_array(ms) || json_array_size(ms) == 0) {
        json_decref(req);
        return srv_send_error(c, 400, "invalid_request_error", "messages", "messages must be a non-empty array");
    }
    int n = (int)json_array_size(ms), last_user = -1;
    al_message *msgs = calloc((size_t)n, sizeof *msgs);
    if (!msgs) {
        json_decref(req);
        return srv_send_error(c, 500, "server_error", NULL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const json_t *m = json_array_get(ms, (size_t)i);
        const char *role = json_string_value(json_object_get(m, "role"));
        al_buf text = {0};
        bool ok = role && content_text(json_object_get(m, "content"), &text) == 0;
        if (ok && (!strcmp(role, "system") || !strcmp(role, "developer")))
            msgs[i].role = AL_ROLE_SYSTEM;
        else if (ok && !strcmp(role, "user"))
            msgs[i].role = AL_ROLE_USER, last_user = i;
        else if (ok && !strcmp(role, "assistant"))
            msgs[i].role = AL_ROLE_ASSISTANT;
        else
            ok = false;
        msgs[i].content = text.data ? text.data : strdup("");
        if (!ok || !msgs[i].content) {
            free_messages(msgs, n);
            json_decref(req);
            return srv_send_error(c, 400, "invalid_request_error", "messages",
                                  "messages[%d] needs a role (system, developer, user or assistant) and a content "
                                  "(a string or an array of text parts)",
                                  i);
        }
    }
    if (last_user < 0) {
        free_messages(msgs, n);
        json_decref(req);
        return srv_send_error(c, 400, "invalid_request_error", "messages", "messages has no user message");
    }
    char *prompt = strdup(msgs[last_user].content);
    ret = prompt ? answer(s, c, req, true, &p, msgs, n, prompt, strlen(prompt))
                 : srv_send_error(c, 500, "server_error", NULL, "out of memory");
    free(prompt);
    free_messages(msgs, n);
    return ret;
}

enum MHD_Result srv_completions(al_server *s, struct MHD_Connection *c, srv_request *rq)
{
    enum MHD_Result ret = MHD_NO;
    gen_params p;
    json_t *req = parse_generation(s, c, rq, &p, &ret);
    if (!req)
        return ret;
    const json_t *pr = json_object_get(req, "prompt");
    if (json_is_array(pr) && json_array_size(pr) == 1)
        pr = json_array_get(pr, 0);
    if (!json_is_string(pr)) {
        json_decref(req);
        return srv_send_error(c, 400, "invalid_request_error", "prompt", "prompt must be a string");
    }
    char *prompt = strndup(json_string_value(pr), json_string_length(pr));
    ret = prompt ? answer(s, c, req, false, &p, NULL, 0, prompt, strlen(prompt))
                 : srv_send_error(c, 500, "server_error", NULL, "out of memory");
    free(prompt);
    return ret;
}

/* ---- moderations ---- */

/* OpenAI's moderation categories, each the maximum of the guard categories it covers. */
static const struct {
    const char *name;
    int cats[3];
} openai_categories[] = {
    {"harassment", {AL_GCAT_TOXICITY, -1, -1}},
    {"hate", {AL_GCAT_HAZARD + AL_HAZ_HATE, -1, -1}},
    {"self-harm", {AL_GCAT_HAZARD + AL_HAZ_SELF_HARM, -1, -1}},
    {"sexual", {AL_GCAT_HAZARD + AL_HAZ_SEXUAL_CONTENT, AL_GCAT_HAZARD + AL_HAZ_SEX_CRIME, -1}},
    {"sexual/minors", {AL_GCAT_HAZARD + AL_HAZ_CHILD_EXPLOITATION, -1, -1}},
    {"violence", {AL_GCAT_HAZARD + AL_HAZ_VIOLENT_CRIME, -1, -1}},
    {"illicit", {AL_GCAT_HAZARD + AL_HAZ_NONVIOLENT_CRIME, AL_GCAT_HAZARD + AL_HAZ_CODE_ABUSE, -1}},
    {"illicit/violent", {AL_GCAT_HAZARD + AL_HAZ_INDISCRIMINATE_WEAPONS, -1, -1}},
};

static json_t *moderation_result(const al_guard_decision *d)
{
    json_t *cats = json_object(), *scores = json_object();
    for (size_t k = 0; k < sizeof openai_categories / sizeof openai_categories[0]; k++) {
        bool hit = false;
        double score = 0;
        for (int j = 0; j < 3 && openai_categories[k].cats[j] >= 0; j++) {
            int g = openai_categories[k].cats[j];
            hit |= d->triggered[g];
            if (d->ran[g] && d->scores[g] > score)
                score = d->scores[g];
        }
        json_object_set_new(cats, openai_categories[k].name, json_boolean(hit));
        json_object_set_new(scores, openai_categories[k].name, json_real(score));
    }
    /* and the guard's own categories, under their own names */
    for (int g = 0; g < AL_GCAT_COUNT; g++) {
        json_object_set_new(cats, al_guard_category_name(g), json_boolean(d->triggered[g]));
        json_object_set_new(scores, al_guard_category_name(g), json_real(d->ran[g] ? d->scores[g] : 0.0));
    }
    json_t *r = json_pack("{s:b, s:o, s:o}", "flagged", d->action != AL_GUARD_ALLOW, "categories", cats,
                          "category_scores", scores);
    json_object_set_new(r, "guard", verdict_json(d));
    return r;
}

enum MHD_Result srv_moderations(al_server *s, struct MHD_Connection *c, srv_request *rq)
{
    enum MHD_Result ret = MHD_NO;
    if (!s->o.guard)
        return srv_send_error(c, 503, "server_error", NULL, "no guard policy is loaded (start with --policy)");
    json_t *req = parse_body(c, rq, &ret);
    if (!req)
        return ret;
    const json_t *in = json_object_get(req, "input");
    json_t *list = json_is_array(in) ? json_incref((json_t *)in) : json_pack("[O]", in);
    size_t n = json_array_size(list);
    if (!in || n == 0 || n > 32) {
        json_decref(list);
        json_decref(req);
        return srv_send_error(c, 400, "invalid_request_error", "input",
                              "input must be a string or an array of 1 to 32 strings");
    }
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        const json_t *t = json_is_string(e) ? e : json_object_get(e, "text");
        if (!json_is_string(t)) {
            json_decref(results), json_decref(list), json_decref(req);
            return srv_send_error(c, 400, "invalid_request_error", "input",
                                  "input[%zu] must be a string or a {\"type\": \"text\", \"text\": ...} part", i);
        }
        al_guard_decision d = {0};
        if (check_in(s, json_string_value(t), json_string_length(t), &d)) {
            json_decref(results), json_decref(list), json_decref(req);
            return srv_send_error(c, 500, "server_error", NULL, "out of memory");
        }
        srv_count_guard(&s->stats, 0, d.action);
        json_array_append_new(results, moderation_result(&d));
        al_guard_decision_free(&d);
    }
    unsigned long long nonce = atomic_fetch_add(&s->seed, 0x9E3779B97F4A7C15ull);
    char id[40];
    snprintf(id, sizeof id, "modr-%016llx", nonce);
    json_t *out = json_pack("{s:s, s:s, s:o}", "id", id, "model", "align-guard", "results", results);
    json_decref(list);
    json_decref(req);
    return srv_send_json(c, 200, out);
}

enum MHD_Result srv_models(al_server *s, struct MHD_Connection *c)
{
    return srv_send_json(c, 200,
                         json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i}]}", "object", "list", "data", "id",
                                   s->o.model_id, "object", "model", "created", (json_int_t)time(NULL),
                                   "owned_by", "align", "context_length", s->o.model->cfg.seq_len));
}

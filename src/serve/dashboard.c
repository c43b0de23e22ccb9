/* The dashboard's routes: its static files, the pipeline's runs, and the review queue a
 * person works through (the same SQLite queue `align review` reads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum MHD_Result srv_ui(struct MHD_Connection *c, const char *url)
{
    const al_ui_file *f = al_ui_find(!strcmp(url, "/") ? "/ui/" : url);
    if (!f)
        return srv_send_error(c, 404, "invalid_request_error", NULL, "no file %s", url);
    struct MHD_Response *r = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", f->mime);
    /* the page talks to this server only */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result srv_pipeline(al_server *s, struct MHD_Connection *c)
{
    if (!s->o.runs_dir)
        return srv_send_json(c, 200, json_pack("{s:n, s:[], s:s}", "dir", "stages", "note",
                                                "no runs directory: start align serve with --runs DIR"));
    al_buf b = {0};
    if (al_serve_pipeline_json(s->o.runs_dir, s->o.model_path, &b)) {
        al_buf_free(&b);
        return srv_send_error(c, 500, "server_error", NULL, "%s", al_errmsg());
    }
    enum MHD_Result r = srv_send_text(c, 200, "application/json", b.data ? b.data : "{}", b.len);
    al_buf_free(&b);
    return r;
}

/* A stored JSON text as JSON (the guard writes its categories, scores and reasons so),
 * else as a string. */
static json_t *stored_json(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

static json_t *item_json(const al_review_item *it)
{
    return json_pack("{s:I, s:s, s:I, s:s?, s:s?, s:o, s:o, s:o}", "id", (json_int_t)it->id, "state",
                     al_review_state_name(it->state), "created_at", (json_int_t)it->created_at, "input", it->input,
                     "output", it->output, "categories", stored_json(it->categories), "scores",
                     stored_json(it->scores), "reasons", stored_json(it->reasons));
}

enum MHD_Result srv_review_list(al_server *s, struct MHD_Connection *c)
{
    const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
    int state = AL_REVIEW_PENDING;
    if (st && !strcmp(st, "all"))
        state = -1;
    else if (st) {
        al_review_state parsed;
        if (al_review_state_parse(st, &parsed))
            return srv_send_error(c, 400, "invalid_request_error", "state",
                                  "state must be pending, approved, rejected or all, got '%s'", st);
        state = (int)parsed;
    }
    al_review_item *items = NULL;
    int n = 0;
    pthread_mutex_lock(&s->review_mu);
    int rc = al_review_list(s->review, state, &items, &n);
    char err[512];
    snprintf(err, sizeof err, "%s", rc ? al_errmsg() : "");
    pthread_mutex_unlock(&s->review_mu);
    if (rc)
        return srv_send_error(c, 500, "server_error", NULL, "review queue: %s", err);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, item_json(&items[i]));
    al_review_items_free(items, n);
    return srv_send_json(c, 200, json_pack("{s:o}", "items", arr));
}

enum MHD_Result srv_review_decide(al_server *s, struct MHD_Connection *c, srv_request *r, const char *url)
{
    char *end = NULL;
    long long id = strtoll(url + strlen("/api/review/"), &end, 10);
    bool approve = end && !strcmp(end, "/approve"), reject = end && !strcmp(end, "/reject");
    if (id <= 0 || (!approve && !reject))
        return srv_send_error(c, 404, "invalid_request_error", NULL,
                              "expected POST /api/review/ID/approve or /api/review/ID/reject, got %s", url);
    json_t *body = NULL;
    if (r->body.len) {
        json_error_t err;
        body = json_loadb(r->body.data, r->body.len, 0, &err);
        if (!json_is_object(body)) {
            json_decref(body);
            return srv_send_error(c, 400, "invalid_request_error", NULL,
                                  "the body must be a JSON object {\"who\": ..., \"why\": ...}: %s", err.text);
        }
    }
    const char *who = json_string_value(json_object_get(body, "who"));
    const char *why = json_string_value(json_object_get(body, "why"));
    who = who && who[0] ? who : "dashboard";
    why = why && why[0] ? why : "via /ui";
    al_review_item it = {0};
    int status = 200;
    char err[512] = "";
    pthread_mutex_lock(&s->review_mu);
    if (al_review_get(s->review, id, &it))
        status = 404;
    else if (it.state != AL_REVIEW_PENDING)
        status = 409;
    else if ((approve ? al_review_approve : al_review_reject)(s->review, id, who, why))
        status = 500;
    else {
        al_review_item_free(&it);
        memset(&it, 0, sizeof it);
        if (al_review_get(s->review, id, &it))
            status = 500;
    }
    if (status != 200)
        snprintf(err, sizeof err, "%s", status == 409 ? "" : al_errmsg());
    pthread_mutex_unlock(&s->review_mu);
    json_decref(body);
    enum MHD_Result ret;
    if (status == 409)
        ret = srv_send_error(c, 409, "invalid_request_error", NULL, "review item %lld is already %s", id,
                             al_review_state_name(it.state));
    else if (status != 200)
        ret = srv_send_error(c, status, status == 404 ? "invalid_request_error" : "server_error", NULL, "%s", err);
    else
        ret = srv_send_json(c, 200, item_json(&it));
    al_review_item_free(&it);
    return ret;
}

void srv_review_enqueue(al_server *s, const al_guard_decision *d, const char *prompt, size_t plen,
                        const char *answer, size_t alen)
{
    pthread_mutex_lock(&s->review_mu);
    int rc = al_review_enqueue_decision(s->review, d, prompt, plen, answer, alen);
    pthread_mutex_unlock(&s->review_mu);
    if (rc == 0) {
        pthread_mutex_lock(&s->stats.mu);
        s->stats.review_enqueued++;
        pthread_mutex_unlock(&s->stats.mu);
    } else if (!s->o.quiet) {
        fprintf(stderr, "serve: review queue: %s\n", al_errmsg());
    }
}

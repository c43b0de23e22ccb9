/* An OpenAI-compatible chat endpoint as the red team's target: each attack (its turns too)
 * is POSTed to /v1/chat/completions and the reply's first choice is the answer, judged as
 * the model's answers are.  A small HTTP/1.1 client over a TCP socket: plain http (the
 * servers it is for run on loopback: align serve, llama.cpp's server, vLLM), a
 * Content-Length or chunked response, a timeout on every read and write. */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "align/eval.h"
#include "redteam_internal.h"

#define TIMEOUT_MS 120000

typedef struct url {
    char host[256], port[8], path[512];
} url;

/* http://HOST[:PORT][/PATH]; a URL without a path gets /v1/chat/completions */
static int parse_url(const char *s, url *u)
{
    if (strncmp(s, "http://", 7))
        return al_fail("endpoint %s: expected http://HOST[:PORT][/PATH] (https is not supported)", s);
    const char *h = s + 7, *slash = strchr(h, '/'), *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    size_t hl = (size_t)((colon ? colon : end) - h);
    if (hl == 0 || hl >= sizeof u->host)
        return al_fail("endpoint %s: no host", s);
    snprintf(u->host, sizeof u->host, "%.*s", (int)hl, h);
    snprintf(u->port, sizeof u->port, "%.*s", colon ? (int)(end - colon - 1) : 2, colon ? colon + 1 : "80");
    snprintf(u->path, sizeof u->path, "%s", slash && slash[1] ? slash : "/v1/chat/completions");
    return 0;
}

static int wait_fd(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int r;
    do
        r = poll(&p, 1, TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    return r > 0 ? 0 : al_fail("endpoint: timed out after %d s", TIMEOUT_MS / 1000);
}

/* POST body to u; the response's status and body (chunked or not) */
static int post(const url *u, const char *body, int *status, al_buf *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int e = getaddrinfo(u->host, u->port, &hints, &ai);
    if (e)
        return al_fail("endpoint %s:%s: %s", u->host, u->port, gai_strerror(e));
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return al_fail("endpoint %s:%s: cannot connect: %s", u->host, u->port, strerror(errno));
    al_buf req = {0}, resp = {0};
    int rc = al_buf_printf(&req,
                           "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\nAccept: "
                           "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           u->path, u->host, u->port, strlen(body), body);
    for (size_t off = 0; rc == 0 && off < req.len;) {
        rc = wait_fd(fd, POLLOUT);
        ssize_t w = rc ? -1 : send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (rc == 0 && w <= 0)
            rc = al_fail("endpoint: send failed: %s", strerror(errno));
        off += w > 0 ? (size_t)w : 0;
    }
    for (char chunk[8192]; rc == 0;) {
        rc = wait_fd(fd, POLLIN);
        ssize_t r = rc ? -1 : recv(fd, chunk, sizeof chunk, 0);
        if (rc == 0 && r < 0)
            rc = al_fail("endpoint: receive failed: %s", strerror(errno));
        if (rc || r == 0)
            break;
        rc = al_buf_append(&resp, chunk, (size_t)r);
    }
    close(fd);
    al_buf_free(&req);
    const char *hdr_end = rc == 0 && resp.data ? strstr(resp.data, "\r\n\r\n") : NULL;
    if (rc == 0 && (!hdr_end || sscanf(resp.data, "HTTP/%*d.%*d %d", status) != 1))
        rc = al_fail("endpoint: not an HTTP response");
    if (rc == 0) {
        const char *b = hdr_end + 4, *endp = resp.data + resp.len;
        bool chunked = false;
        for (const char *h = strstr(resp.data, "\r\n"); h && h < hdr_end; h = strstr(h + 2, "\r\n"))
            if (!strncasecmp(h + 2, "Transfer-Encoding:", 18) && strstr(h + 2, "chunked") &&
                strstr(h + 2, "chunked") < strstr(h + 2, "\r\n"))
                chunked = true;
        if (!chunked) {
            rc = al_buf_append(out, b, (size_t)(endp - b));
        } else {
            while (rc == 0 && b < endp) {
                char *after;
                unsigned long n = strtoul(b, &after, 16);
                const char *data = strstr(after, "\r\n");
                if (!data || n == 0)
                    break;
                data += 2;
                if ((size_t)(endp - data) < n)
                    rc = al_fail("endpoint: a chunk runs past the response");
                else
                    rc = al_buf_append(out, data, n);
                b = data + n + 2;
            }
        }
    }
    al_buf_free(&resp);
    return rc;
}

/* one chat completion: the attack's turns and prompt as messages, greedy.  *filtered: the
 * endpoint's own filter answered (finish_reason "content_filter", as OpenAI and align
 * serve report a guard's canned reply), which counts as blocked, not as an answer. */
static int complete(const url *u, const al_redteam_opts *o, const al_prompt *p, char **answer, bool *filtered)
{
    json_t *msgs = json_array();
    for (int t = 0; msgs && t < p->n_history; t++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", p->history[t].role, "content", p->history[t].content));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", p->prompt));
    json_t *req = json_pack("{s:s, s:o, s:i, s:f}", "model", o->endpoint_model ? o->endpoint_model : "default",
                            "messages", msgs, "max_tokens", o->max_new_tokens, "temperature", 0.0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    al_buf resp = {0};
    int status = 0, rc = body ? post(u, body, &status, &resp) : al_fail("out of memory");
    free(body);
    json_error_t err;
    json_t *j = rc == 0 ? json_loads(resp.data ? resp.data : "", 0, &err) : NULL;
    if (rc == 0 && status != 200)
        rc = al_fail("endpoint %s%s: HTTP %d: %.200s", u->host, u->path, status, resp.data ? resp.data : "");
    const json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    const char *content = json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    *filtered = finish && !strcmp(finish, "content_filter");
    if (rc == 0 && !content)
        rc = al_fail("endpoint %s%s: no choices[0].message.content in the reply", u->host, u->path);
    if (rc == 0 && !(*answer = strdup(content)))
        rc = al_fail("out of memory");
    json_decref(j);
    al_buf_free(&resp);
    return rc;
}

int rt_answer_endpoint(const al_redteam_opts *o, const char *prompts_path, const char *answers_path)
{
    url u;
    al_prompt_set ps = {0};
    al_judges *j = NULL;
    al_eval_filter guard = {0};
    int rc = parse_url(o->endpoint, &u);
    rc = rc ? rc : al_prompt_set_load(&ps, prompts_path);
    if (rc == 0) {
        char *wj = o->world ? al_path_join(o->world, "world.json") : NULL;
        rc = wj && al_file_exists(wj) ? al_judges_load(&j, wj) : al_judges_builtin(&j);
        free(wj);
    }
    if (rc == 0 && o->guard_policy)
        rc = al_eval_guard_filter_open(&guard, o->guard_policy);
    al_atomic_file f = {0};
    rc = rc ? rc : al_atomic_open(&f, answers_path);
    for (int i = 0; rc == 0 && i < ps.n; i++) {
        const al_prompt *p = &ps.p[i];
        bool blocked = false;
        al_buf reply = {0};
        char *answer = NULL;
        if (guard.check_prompt)
            rc = guard.check_prompt(guard.user, p->prompt, &blocked, &reply);
        if (rc == 0 && !blocked)
            rc = complete(&u, o, p, &answer, &blocked);
        if (rc == 0 && blocked && answer) /* the endpoint's filter: its reply is the answer */
            rc = al_buf_append(&reply, answer, strlen(answer)), free(answer), answer = NULL;
        if (rc == 0 && !blocked && guard.check_answer) {
            rc = guard.check_answer(guard.user, p->prompt, answer, &blocked, &reply);
            if (rc == 0 && blocked)
                free(answer), answer = NULL;
        }
        if (rc == 0 && blocked && !(answer = strdup(reply.data ? reply.data : "")))
            rc = al_fail("out of memory");
        al_buf_free(&reply);
        al_verdict v = {0};
        if (rc == 0)
            rc = al_judge(j, answer, strlen(answer), &v);
        json_t *rec = rc ? NULL
                         : json_pack("{s:s, s:s, s:b, s:b, s:b, s:s}", "prompt", p->prompt, "answer", answer, "refused",
                                     v.refused, "complied", v.complied && !blocked, "blocked", blocked, "finish",
                                     blocked ? "blocked" : "endpoint");
        char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (rc == 0 && !line)
            rc = al_fail("out of memory");
        if (rc == 0)
            fprintf(f.fp, "%s\n", line);
        free(line), free(answer);
        json_decref(rec);
    }
    if (rc == 0)
        rc = al_atomic_commit(&f);
    else if (f.fp)
        al_atomic_abort(&f);
    if (guard.user)
        al_eval_guard_filter_close(&guard);
    al_judges_free(j);
    al_prompt_set_free(&ps);
    return rc;
}

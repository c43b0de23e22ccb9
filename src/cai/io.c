/* What the cai module's commands share: a conversation as the model reads it, and JSONL
 * files written atomically. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "cai_internal.h"

int cai_encode(const al_tokenizer *tok, const al_chat_template *t, const al_message *m, int n,
               const char *reply_start, al_ints *ids)
{
    al_buf text = {0};
    int rc = al_chat_render(t, m, n, true, &text, NULL, NULL);
    if (rc == 0 && reply_start)
        rc = al_buf_append(&text, reply_start, strlen(reply_start));
    ids->n = 0;
    rc = rc || al_tokenizer_encode(tok, text.data, text.len,
                                   al_chat_template_adds_bos(t) && al_tokenizer_bos(tok) >= 0, false, ids);
    al_buf_free(&text);
    return rc;
}

int cai_encode_user_turn(const al_tokenizer *tok, const al_chat_template *t, const char *user,
                         const char *reply_start, al_ints *ids)
{
    al_message msg = {.role = AL_ROLE_USER, .content = (char *)user};
    return cai_encode(tok, t, &msg, 1, reply_start, ids);
}

/* Generates for each of n id sequences (batches of batch; sequence i seeded so.seed + i); texts out. */
int cai_generate_texts(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, al_ints *ids, int n,
                        int max_new, al_sampler_opts so, int batch, char **texts)
{
    const char **stops;
    int n_stops, eos = al_tokenizer_eos(tok), rc = 0;
    al_chat_template_specials(t, &stops, &n_stops);
    al_gen_result *res = calloc((size_t)batch, sizeof *res);
    if (!res)
        return al_fail("out of memory");
    for (int i0 = 0; rc == 0 && i0 < n; i0 += batch) {
        int b = n - i0 < batch ? n - i0 : batch;
        al_gen_opts g = {.max_new_tokens = max_new, .sampling = so};
        g.sampling.seed = so.seed + (uint64_t)i0;
        g.stop_ids = eos >= 0 ? &eos : NULL;
        g.n_stop_ids = eos >= 0;
        g.stop_strings = stops;
        g.n_stop_strings = n_stops;
        memset(res, 0, (size_t)b * sizeof *res);
        rc = al_generate(m, tok, ids + i0, b, &g, res, NULL, NULL);
        for (int j = 0; rc == 0 && j < b; j++) {
            rc = al_chat_answer_text(tok, ids[i0 + j].v[ids[i0 + j].n - 1], res[j].ids.v, res[j].ids.n, stops,
                                     n_stops, &texts[i0 + j]);
            if (rc == 0) /* the texts go into JSON and into later turns as text */
                al_utf8_scrub(texts[i0 + j], strlen(texts[i0 + j]));
        }
        al_gen_results_free(res, b);
    }
    free(res);
    return rc;
}

int cai_check_context(const al_model *m, const al_ints *ids, int n, int max_new)
{
    for (int i = 0; i < n; i++)
        if (ids[i].n + max_new > m->cfg.seq_len)
            return al_fail("a generation needs %d tokens before its answer and %d new ones; the model's context holds "
                           "%d",
                           ids[i].n, max_new, m->cfg.seq_len);
    return 0;
}

int cai_write_jsonl(const char *path, int n, json_t *(*row)(void *ctx, int i), void *ctx)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        json_t *o = row(ctx, i);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(o);
        if (!line || fputs(line, f.fp) < 0 || fputc('\n', f.fp) < 0)
            rc = al_fail("%s: write failed", path);
        free(line);
    }
    if (rc) {
        al_atomic_abort(&f);
        return -1;
    }
    return al_atomic_commit(&f);
}

json_t *cai_turn(const char *role, const char *text)
{
    return json_pack("[{s:s, s:s}]", "role", role, "content", text);
}

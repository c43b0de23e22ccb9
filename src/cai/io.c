/* What the cai module's commands share: one user turn as the model reads it, and JSONL
 * files written atomically. */
#include <jansson.h>
#include <string.h>

#include "align/core.h"
#include "cai_internal.h"

int cai_encode_user_turn(const al_tokenizer *tok, const al_chat_template *t, const char *user,
                         const char *reply_start, al_ints *ids)
{
    al_buf text = {0};
    al_message msg = {AL_ROLE_USER, (char *)user};
    int rc = al_chat_render(t, &msg, 1, true, &text, NULL, NULL);
    if (rc == 0 && reply_start)
        rc = al_buf_append(&text, reply_start, strlen(reply_start));
    ids->n = 0;
    rc = rc || al_tokenizer_encode(tok, text.data, text.len,
                                   al_chat_template_adds_bos(t) && al_tokenizer_bos(tok) >= 0, false, ids);
    al_buf_free(&text);
    return rc;
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

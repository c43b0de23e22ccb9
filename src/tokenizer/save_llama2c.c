/* Writing SentencePiece-kind tokenizers in llama2.c's .bin format, so a vocabulary that
 * grew (added chat markers) travels with the model trained on it. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int al_tokenizer_save_llama2c(const al_tokenizer *t, const char *path)
{
    if (t->algo != TOK_SPM)
        return al_fail("%s: only SentencePiece-style tokenizers are written as llama2.c .bin (this is %s; "
                       "write tokenizer.json instead)",
                       path, t->kind);
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    int32_t max_len = (int32_t)t->max_len;
    bool ok = fwrite(&max_len, sizeof max_len, 1, f.fp) == 1;
    for (int i = 0; ok && i < t->n_vocab; i++) {
        float score = t->scores ? t->scores[i] : 0.0f;
        int32_t n = (int32_t)t->len[i];
        ok = fwrite(&score, sizeof score, 1, f.fp) == 1 && fwrite(&n, sizeof n, 1, f.fp) == 1 &&
             (n == 0 || fwrite(t->arena + t->off[i], 1, (size_t)n, f.fp) == (size_t)n);
    }
    if (!ok) {
        al_atomic_abort(&f);
        return al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}

int al_tokenizer_save(const al_tokenizer *t, const char *dir, char *written, size_t written_len)
{
    const char *name = t->algo == TOK_SPM ? "tokenizer.bin" : "tokenizer.json";
    char *path = al_path_join(dir, name);
    if (!path)
        return al_fail("out of memory");
    int rc = t->algo == TOK_SPM ? al_tokenizer_save_llama2c(t, path) : al_tokenizer_save_json(t, path);
    if (rc == 0 && written_len)
        snprintf(written, written_len, "%s", path);
    free(path);
    return rc;
}

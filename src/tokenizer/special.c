/* Special tokens added after loading (chat markers such as "<|im_start|>"), and encoding
 * of text that continues earlier text (no SentencePiece dummy-prefix space). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Far below run.c's -1e10 threshold: an added piece never results from a merge. */
#define ADDED_SCORE -1e30f

static bool is_split_out(const al_tokenizer *t, int id)
{
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i] == id)
            return true;
    return false;
}

static int register_special(al_tokenizer *t, int id)
{
    if (is_split_out(t, id))
        return 0;
    int *ids = malloc(((size_t)t->n_specials + 1) * sizeof *ids);
    if (!ids)
        return al_fail("out of memory");
    if (t->n_specials)
        memcpy(ids, t->specials, (size_t)t->n_specials * sizeof *ids);
    ids[t->n_specials] = id;
    int rc = tok_set_specials(t, ids, t->n_specials + 1);
    free(ids);
    return rc;
}

static int grow(void **p, size_t bytes)
{
    void *q = realloc(*p, bytes);
    if (!q)
        return al_fail("out of memory growing the vocabulary");
    *p = q;
    return 0;
}

int al_tokenizer_add_special(al_tokenizer *t, const char *piece, int *id_out)
{
    size_t len = piece ? strlen(piece) : 0;
    if (len == 0)
        return al_fail("%s tokenizer: a special token must not be empty", t->kind);
    if (len > UINT32_MAX / 2)
        return al_fail("%s tokenizer: special token of %zu bytes is too long", t->kind, len);
    int id = al_strmap_get(&t->pieces, piece, len);
    if (id >= 0) {
        if (register_special(t, id))
            return -1;
        if (id_out)
            *id_out = id;
        return 0;
    }
    if (t->n_vocab >= INT32_MAX / 2)
        return al_fail("%s tokenizer: vocabulary is full", t->kind);
    /* Bytes of the arena in use: pieces may not be stored in id order. */
    size_t used = 0;
    for (int i = 0; i < t->n_vocab; i++)
        if (t->off[i] + t->len[i] + 1 > used)
            used = t->off[i] + t->len[i] + 1;
    size_t n = (size_t)t->n_vocab + 2; /* tok_alloc keeps one spare slot */
    if (grow((void **)&t->arena, used + len + 1) || grow((void **)&t->off, n * sizeof *t->off) ||
        grow((void **)&t->len, n * sizeof *t->len) || grow((void **)&t->type, n) ||
        grow((void **)&t->byte_of, n * sizeof *t->byte_of) ||
        (t->scores && grow((void **)&t->scores, n * sizeof *t->scores)))
        return -1;
    id = t->n_vocab;
    tok_set_piece(t, id, piece, len, &used);
    /* SentencePiece: a user-defined piece (decoded as text); byte-level: a control token,
     * as Hugging Face's special added tokens.  Neither takes part in merges. */
    t->type[id] = t->algo == TOK_SPM ? TT_USER : TT_CONTROL;
    t->byte_of[id] = -1;
    if (t->scores)
        t->scores[id] = ADDED_SCORE;
    t->n_vocab++;
    /* The piece map borrows pointers into the arena, which may have moved. */
    al_strmap_free(&t->pieces);
    memset(&t->pieces, 0, sizeof t->pieces);
    if (tok_index_pieces(t, t->kind) || register_special(t, id))
        return -1;
    if (id_out)
        *id_out = id;
    return 0;
}

int al_tokenizer_encode_cont(const al_tokenizer *t, const char *text, size_t len, bool first, al_ints *out)
{
    return tok_encode_text(t, text, len, first, out);
}

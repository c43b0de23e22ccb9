/* Tokenizers stored in GGUF metadata (tokenizer.ggml.*), as llama.cpp writes them:
 * "llama" is a SentencePiece BPE (tokens, scores, token types with <0xXX> byte pieces),
 * "gpt2" a byte-level BPE (tokens in GPT-2's mapping, "left right" merges). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* llama.cpp's pre-tokenizer names (tokenizer.ggml.pre) and their regexes. */
static const struct {
    const char *name, *pattern;
} pre_tokenizers[] = {
    {"default", NULL}, /* NULL: GPT-2's */
    {"gpt-2", NULL},
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
              "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

static int optional_id(const al_gguf *g, const char *key, int n, int *out)
{
    if (!al_gguf_find(g, key))
        return 0;
    uint32_t v;
    if (al_gguf_get_u32(g, key, &v))
        return -1;
    if (v >= (uint32_t)n)
        return al_fail("%s: %s = %u is outside the vocabulary of %d", g->origin, key, v, n);
    *out = (int)v;
    return 0;
}

static int special_ids(al_tokenizer *t, const al_gguf *g)
{
    return optional_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos) ||
           optional_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos) ||
           optional_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk);
}

/* Control and user tokens are split out of the text first (llama.cpp with specials parsed);
 * SentencePiece vocabularies only split user tokens, as sentencepiece does. */
static int register_specials(al_tokenizer *t, bool with_control)
{
    int *ids = malloc(((size_t)t->n_vocab + 1) * sizeof *ids), k = 0;
    if (!ids)
        return al_fail("out of memory");
    for (int i = 0; i < t->n_vocab; i++)
        if (t->type[i] == TT_USER || (with_control && t->type[i] == TT_CONTROL))
            ids[k++] = i;
    int rc = tok_set_specials(t, ids, k);
    free(ids);
    return rc;
}

/* tokenizer.ggml.token_type into types[n] (all normal when the key is absent). */
static int read_types(const al_gguf *g, int n, uint8_t *types)
{
    memset(types, TT_NORMAL, (size_t)n);
    if (!al_gguf_find(g, "tokenizer.ggml.token_type"))
        return 0;
    int32_t *v;
    size_t k;
    if (al_gguf_get_i32s(g, "tokenizer.ggml.token_type", &v, &k))
        return -1;
    int rc = 0;
    if (k != (size_t)n)
        rc = al_fail("%s: tokenizer.ggml.token_type has %zu entries for %d tokens", g->origin, k, n);
    for (size_t i = 0; rc == 0 && i < k; i++) {
        if (v[i] < TT_NORMAL || v[i] > TT_BYTE)
            rc = al_fail("%s: tokenizer.ggml.token_type[%zu] = %d (expected 1..6)", g->origin, i, v[i]);
        else
            types[i] = (uint8_t)v[i];
    }
    free(v);
    return rc;
}

/* ---- "llama" ---- */

/* SentencePiece marks spaces with U+2581; pieces here hold ' ' as llama2.c's export does. */
static size_t unmark_spaces(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            out[o++] = ' ';
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

static int load_llama(al_tokenizer *t, const al_gguf *g, const al_gguf_str *tokens, int n)
{
    size_t bytes = 0, maxlen = 0;
    for (int i = 0; i < n; i++) {
        bytes += tokens[i].len;
        if (tokens[i].len > maxlen)
            maxlen = tokens[i].len;
    }
    float *scores;
    size_t ns;
    if (tok_alloc(t, n, bytes) || al_gguf_get_f32s(g, "tokenizer.ggml.scores", &scores, &ns))
        return -1;
    t->scores = scores;
    if (ns != (size_t)n)
        return al_fail("%s: tokenizer.ggml.scores has %zu entries for %d tokens", g->origin, ns, n);
    char *tmp = malloc(maxlen + 1);
    if (!tmp)
        return al_fail("out of memory");
    size_t used = 0;
    for (int i = 0; i < n; i++)
        tok_set_piece(t, i, tmp, unmark_spaces(tokens[i].s, tokens[i].len, tmp), &used);
    free(tmp);
    t->sp_semantics = true;
    if (read_types(g, n, t->type) || tok_index_pieces(t, g->origin))
        return -1;
    spm_finish_load(t);
    for (int i = 0; i < n; i++)
        if (t->type[i] == TT_BYTE && t->byte_of[i] >= 0)
            t->byte_id[t->byte_of[i]] = i;
    if (al_gguf_find(g, "tokenizer.ggml.add_space_prefix") &&
        al_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->dummy_prefix))
        return -1;
    t->unk = 0 < n ? 0 : -1; /* llama.cpp's defaults for SentencePiece vocabularies */
    t->bos = 1 < n ? 1 : -1;
    t->eos = 2 < n ? 2 : -1;
    if (special_ids(t, g))
        return -1;
    return register_specials(t, false);
}

/* ---- "gpt2" ---- */

static int choose_pre_tokenizer(al_tokenizer *t, const al_gguf *g)
{
    const char *pattern = al_gpt2_pattern;
    if (al_gguf_find(g, "tokenizer.ggml.pre")) {
        al_gguf_str pre;
        if (al_gguf_get_str(g, "tokenizer.ggml.pre", &pre))
            return -1;
        size_t i, n = sizeof pre_tokenizers / sizeof pre_tokenizers[0];
        for (i = 0; i < n && !al_gguf_str_eq(pre, pre_tokenizers[i].name); i++)
            ;
        if (i == n)
            return al_fail("%s: tokenizer.ggml.pre '%.*s' is not supported (known: default, gpt-2, llama-bpe, qwen2)",
                           g->origin, (int)pre.len, pre.s);
        if (pre_tokenizers[i].pattern)
            pattern = pre_tokenizers[i].pattern;
    }
    return bbpe_compile_regex(t, pattern, g->origin);
}

static int load_gpt2(al_tokenizer *t, const al_gguf *g, const al_gguf_str *tokens, int n)
{
    /* Types first: control and user tokens are text, the others GPT-2-mapped bytes. */
    uint8_t *types = malloc((size_t)n);
    bool *raw = calloc((size_t)n, 1);
    int rc = types && raw ? read_types(g, n, types) : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < n; i++)
        raw[i] = types[i] == TT_CONTROL || types[i] == TT_USER;
    if (rc == 0)
        rc = bbpe_set_vocab(t, tokens, raw, n, g->origin);
    if (rc == 0)
        memcpy(t->type, types, (size_t)n);
    free(raw);
    free(types);
    al_gguf_str *merges = NULL;
    size_t nm = 0;
    if (rc == 0)
        rc = al_gguf_get_strs(g, "tokenizer.ggml.merges", &merges, &nm);
    al_buf tmp = {0};
    for (size_t i = 0; rc == 0 && i < nm; i++)
        rc = bbpe_add_merge_line(t, merges[i].s, merges[i].len, g->origin, &tmp);
    al_buf_free(&tmp);
    free(merges);
    if (rc || choose_pre_tokenizer(t, g) || special_ids(t, g) || register_specials(t, true))
        return -1;
    return bbpe_finish_load(t, g->origin);
}

int al_tokenizer_load_gguf(al_tokenizer **out, const al_gguf *g)
{
    *out = NULL;
    al_gguf_str model, *tokens = NULL;
    size_t n = 0;
    if (al_gguf_get_str(g, "tokenizer.ggml.model", &model) || al_gguf_get_strs(g, "tokenizer.ggml.tokens", &tokens, &n))
        return -1;
    bool llama = al_gguf_str_eq(model, "llama"), gpt2 = al_gguf_str_eq(model, "gpt2");
    al_tokenizer *t = NULL;
    int rc = -1;
    if (!llama && !gpt2)
        al_fail("%s: tokenizer.ggml.model '%.*s' is not supported (expected \"llama\" or \"gpt2\")", g->origin,
                (int)model.len, model.s);
    else if (n == 0 || n > INT32_MAX / 4)
        al_fail("%s: tokenizer.ggml.tokens has %zu entries", g->origin, n);
    else if ((t = tok_new(llama ? TOK_SPM : TOK_BYTE_BPE, llama ? "gguf-llama" : "gguf-gpt2")) != NULL)
        rc = llama ? load_llama(t, g, tokens, (int)n) : load_gpt2(t, g, tokens, (int)n);
    free(tokens);
    if (rc) {
        if (t)
            tok_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* ---- writing: the inverse of the readers above ---- */

/* Per-id strings built into one arena; pointers are taken once the arena stops moving. */
typedef struct str_table {
    al_buf arena;
    size_t *off, *len;
    al_gguf_str *v;
} str_table;

static int table_alloc(str_table *s, int n)
{
    memset(s, 0, sizeof *s);
    s->off = malloc((size_t)n * sizeof *s->off);
    s->len = malloc((size_t)n * sizeof *s->len);
    s->v = malloc((size_t)n * sizeof *s->v);
    return s->off && s->len && s->v ? 0 : al_fail("out of memory");
}

static int table_add(str_table *s, int i, const char *p, size_t n)
{
    s->off[i] = s->arena.len;
    s->len[i] = n;
    return al_buf_append(&s->arena, p, n);
}

static void table_finish(str_table *s, int n)
{
    for (int i = 0; i < n; i++)
        s->v[i] = (al_gguf_str){s->arena.data ? s->arena.data + s->off[i] : "", s->len[i]};
}

static void table_free(str_table *s)
{
    al_buf_free(&s->arena);
    free(s->off);
    free(s->len);
    free(s->v);
}

static int write_ids_and_types(const al_tokenizer *t, al_gguf_writer *w)
{
    int32_t *types = malloc((size_t)t->n_vocab * sizeof *types);
    if (!types)
        return al_fail("out of memory");
    for (int i = 0; i < t->n_vocab; i++)
        types[i] = t->type[i];
    int rc = al_gguf_add_array(w, "tokenizer.ggml.token_type", AL_GGUF_I32, types, (size_t)t->n_vocab);
    free(types);
    if (rc == 0 && t->bos >= 0)
        rc = al_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (rc == 0 && t->eos >= 0)
        rc = al_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
    if (rc == 0 && t->unk >= 0)
        rc = al_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
    return rc;
}

/* SentencePiece pieces go out with U+2581 for the spaces the readers turned into ' '. */
static int write_llama(const al_tokenizer *t, al_gguf_writer *w)
{
    str_table s;
    int rc = table_alloc(&s, t->n_vocab);
    for (int i = 0; rc == 0 && i < t->n_vocab; i++) {
        const char *p = t->arena + t->off[i];
        s.off[i] = s.arena.len;
        for (uint32_t k = 0; rc == 0 && k < t->len[i]; k++)
            rc = p[k] == ' ' ? al_buf_append(&s.arena, "\xE2\x96\x81", 3) : al_buf_append(&s.arena, p + k, 1);
        s.len[i] = s.arena.len - s.off[i];
    }
    if (rc == 0) {
        table_finish(&s, t->n_vocab);
        rc = al_gguf_add_str(w, "tokenizer.ggml.model", "llama", 5) ||
             al_gguf_add_strs(w, "tokenizer.ggml.tokens", s.v, (size_t)t->n_vocab) ||
             al_gguf_add_array(w, "tokenizer.ggml.scores", AL_GGUF_F32, t->scores, (size_t)t->n_vocab) ||
             write_ids_and_types(t, w) || al_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", t->dummy_prefix);
    }
    table_free(&s);
    return rc ? -1 : 0;
}

static int pre_tokenizer_name(const al_tokenizer *t, const char **name)
{
    *name = "gpt-2";
    if (!t->re_pattern || !strcmp(t->re_pattern, al_gpt2_pattern))
        return 0;
    for (size_t i = 0; i < sizeof pre_tokenizers / sizeof pre_tokenizers[0]; i++)
        if (pre_tokenizers[i].pattern && !strcmp(t->re_pattern, pre_tokenizers[i].pattern)) {
            *name = pre_tokenizers[i].name;
            return 0;
        }
    return al_fail("tokenizer: its pre-tokenizer regex has no GGUF name (known: gpt-2, llama-bpe, qwen2)");
}

static int write_gpt2(const al_tokenizer *t, al_gguf_writer *w)
{
    const char *pre;
    if (pre_tokenizer_name(t, &pre))
        return -1;
    if (t->add_prefix_space || t->ignore_merges)
        return al_fail("tokenizer: %s cannot be stored in a GGUF \"gpt2\" vocabulary",
                       t->add_prefix_space ? "add_prefix_space" : "ignore_merges");
    str_table tok = {0}, mer = {0};
    al_buf a = {0}, b = {0};
    int rc = table_alloc(&tok, t->n_vocab) || table_alloc(&mer, t->n_merges ? t->n_merges : 1);
    for (int i = 0; rc == 0 && i < t->n_vocab; i++)
        rc = bbpe_mapped_piece(t, i, &a) || table_add(&tok, i, a.data ? a.data : "", a.len);
    for (int r = 0; rc == 0 && r < t->n_merges; r++)
        rc = bbpe_mapped_piece(t, t->merge_left[r], &a) || bbpe_mapped_piece(t, t->merge_right[r], &b) ||
             al_buf_append(&a, " ", 1) || al_buf_append(&a, b.data ? b.data : "", b.len) ||
             table_add(&mer, r, a.data, a.len);
    if (rc == 0) {
        table_finish(&tok, t->n_vocab);
        table_finish(&mer, t->n_merges);
        rc = al_gguf_add_str(w, "tokenizer.ggml.model", "gpt2", 4) ||
             al_gguf_add_str(w, "tokenizer.ggml.pre", pre, strlen(pre)) ||
             al_gguf_add_strs(w, "tokenizer.ggml.tokens", tok.v, (size_t)t->n_vocab) ||
             al_gguf_add_strs(w, "tokenizer.ggml.merges", mer.v, (size_t)t->n_merges) || write_ids_and_types(t, w);
    }
    al_buf_free(&a);
    al_buf_free(&b);
    table_free(&tok);
    table_free(&mer);
    return rc ? -1 : 0;
}

int al_tokenizer_write_gguf_keys(const al_tokenizer *t, al_gguf_writer *w)
{
    return t->algo == TOK_SPM ? write_llama(t, w) : write_gpt2(t, w);
}

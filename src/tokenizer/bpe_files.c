/* Byte-level BPE files: OpenAI's encoder.json + vocab.bpe, Hugging Face tokenizer.json
 * (read and write).  Everything that can name a token is checked: ids in range and
 * unique, merges naming known tokens whose concatenation is known too. */
#include "internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Ids are dense in practice; a sparse table beyond this is more likely a corrupt file. */
#define MAX_VOCAB (1 << 24)

/* ---- vocabulary ---- */

int bbpe_set_vocab(al_tokenizer *t, const al_gguf_str *tokens, const bool *raw, int n, const char *origin)
{
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += tokens[i].len;
    if (tok_alloc(t, n, bytes))
        return al_fail_prefix("%s", origin);
    al_buf tmp = {0};
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const al_gguf_str *s = &tokens[i];
        if (!s->s) {
            t->type[i] = TT_UNUSED; /* a hole in the id range */
            tok_set_piece(t, i, "", 0, &used);
        } else if ((raw && raw[i]) || bbpe_unmap(s->s, s->len, &tmp) != 0) {
            /* added tokens are text, not mapped bytes; so are the odd pieces outside the map */
            tok_set_piece(t, i, s->s, s->len, &used);
        } else {
            tok_set_piece(t, i, tmp.data, tmp.len, &used);
        }
    }
    al_buf_free(&tmp);
    return tok_index_pieces(t, origin);
}

/* Id of a GPT-2-mapped token string, or -1. */
static int lookup_mapped(const al_tokenizer *t, const char *s, size_t n, al_buf *tmp)
{
    if (bbpe_unmap(s, n, tmp) == 0) {
        int id = al_strmap_get(&t->pieces, tmp->data, tmp->len);
        if (id >= 0)
            return id;
    }
    return al_strmap_get(&t->pieces, s, n);
}

int bbpe_add_merge_strs(al_tokenizer *t, al_gguf_str a, al_gguf_str b, const char *origin, al_buf *tmp)
{
    int l = lookup_mapped(t, a.s, a.len, tmp);
    int r = l >= 0 ? lookup_mapped(t, b.s, b.len, tmp) : -1;
    if (l < 0 || r < 0) {
        al_gguf_str bad = l < 0 ? a : b;
        return al_fail("%s: merge %d ('%.*s %.*s'): token '%.*s' is not in the vocabulary", origin,
                       t->n_merges + 1, (int)a.len, a.s, (int)b.len, b.s, (int)bad.len, bad.s);
    }
    return bbpe_add_merge(t, l, r, origin);
}

/* "left right": the two tokens never contain a space (GPT-2's map has none). */
int bbpe_add_merge_line(al_tokenizer *t, const char *s, size_t n, const char *origin, al_buf *tmp)
{
    const char *sp = memchr(s, ' ', n);
    if (!sp || sp == s || sp + 1 == s + n)
        return al_fail("%s: merge %d: expected \"left right\", got '%.*s'", origin, t->n_merges + 1,
                       (int)(n > 80 ? 80 : n), s);
    al_gguf_str a = {s, (size_t)(sp - s)}, b = {sp + 1, n - (size_t)(sp - s) - 1};
    return bbpe_add_merge_strs(t, a, b, origin, tmp);
}

/* Collects {token: id} into an id-indexed table (holes stay NULL). */
static int vocab_table(json_t *vocab, const char *origin, al_gguf_str **out, int *n_out, int min_n)
{
    if (!json_is_object(vocab))
        return al_fail("%s: expected the vocabulary to be a JSON object of token -> id", origin);
    int n = min_n;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_VOCAB)
            return al_fail("%s: vocabulary entry '%s': expected an id in [0, %d)", origin, key, MAX_VOCAB);
        if (json_integer_value(v) >= n)
            n = (int)json_integer_value(v) + 1;
    }
    al_gguf_str *tab = calloc((size_t)n + 1, sizeof *tab);
    if (!tab)
        return al_fail("%s: out of memory for %d tokens", origin, n);
    json_object_foreach(vocab, key, v) {
        int id = (int)json_integer_value(v);
        if (tab[id].s) {
            al_fail("%s: id %d is given to both '%s' and '%.*s'", origin, id, key, (int)tab[id].len, tab[id].s);
            free(tab);
            return -1;
        }
        tab[id].s = key;
        tab[id].len = strlen(key); /* jansson keys cannot hold NUL unless using the _n API */
    }
    *out = tab;
    *n_out = n;
    return 0;
}

static void mark_endoftext(al_tokenizer *t)
{
    int id = al_strmap_get(&t->pieces, "<|endoftext|>", 13);
    if (id >= 0) {
        t->type[id] = TT_CONTROL;
        t->bos = t->eos = id; /* GPT-2 uses it for both */
    }
}

/* ---- encoder.json + vocab.bpe ---- */

static int load_merges_file(al_tokenizer *t, const char *path)
{
    al_buf text = {0}, tmp = {0};
    if (al_read_file(path, &text))
        return -1;
    int rc = 0;
    size_t pos = 0;
    for (int line = 1; pos < text.len && rc == 0; line++) {
        const char *s = text.data + pos, *nl = memchr(s, '\n', text.len - pos);
        size_t n = nl ? (size_t)(nl - s) : text.len - pos;
        pos += n + 1;
        if (n && s[n - 1] == '\r')
            n--;
        if (n == 0 || (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0))
            continue;
        rc = bbpe_add_merge_line(t, s, n, path, &tmp);
    }
    al_buf_free(&text);
    al_buf_free(&tmp);
    return rc;
}

int bbpe_load_gpt2(al_tokenizer *t, const char *encoder_json, const char *vocab_bpe)
{
    json_error_t err;
    json_t *root = json_load_file(encoder_json, 0, &err);
    if (!root)
        return al_fail("%s:%d: invalid JSON: %s", encoder_json, err.line, err.text);
    al_gguf_str *tab = NULL;
    int n = 0, rc = vocab_table(root, encoder_json, &tab, &n, 0);
    if (rc == 0 && n == 0)
        rc = al_fail("%s: empty vocabulary", encoder_json);
    if (rc == 0)
        rc = bbpe_set_vocab(t, tab, NULL, n, encoder_json);
    free(tab);
    json_decref(root);
    if (rc == 0)
        rc = load_merges_file(t, vocab_bpe);
    if (rc)
        return -1;
    mark_endoftext(t); /* as text: OpenAI's encoder does not split specials out by default */
    if (bbpe_compile_regex(t, al_gpt2_pattern, encoder_json))
        return -1;
    return bbpe_finish_load(t, encoder_json);
}

/* ---- tokenizer.json ---- */

static const char *type_of(json_t *o) { return json_string_value(json_object_get(o, "type")); }

static int pre_tokenizer_step(al_tokenizer *t, json_t *pt, const char *origin, const char **pattern,
                              bool *byte_level)
{
    const char *type = type_of(pt);
    if (type && !strcmp(type, "ByteLevel")) {
        *byte_level = true;
        t->add_prefix_space = json_is_true(json_object_get(pt, "add_prefix_space"));
        json_t *use = json_object_get(pt, "use_regex");
        if (!use || json_is_true(use)) {
            if (*pattern)
                return al_fail("%s: pre_tokenizer: two regex splits in a row are not supported", origin);
            *pattern = al_gpt2_pattern;
        }
        return 0;
    }
    if (type && !strcmp(type, "Split")) {
        const char *re = json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
        const char *behavior = json_string_value(json_object_get(pt, "behavior"));
        if (!re || (behavior && strcmp(behavior, "Isolated")) || json_is_true(json_object_get(pt, "invert")))
            return al_fail("%s: pre_tokenizer Split: only {\"pattern\": {\"Regex\": ...}, \"behavior\": "
                           "\"Isolated\"} is supported",
                           origin);
        if (*pattern)
            return al_fail("%s: pre_tokenizer: two regex splits in a row are not supported", origin);
        *pattern = re;
        return 0;
    }
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list))
            return al_fail("%s: pre_tokenizer Sequence: expected a \"pretokenizers\" array", origin);
        size_t i;
        json_t *step;
        json_array_foreach(list, i, step) {
            if (pre_tokenizer_step(t, step, origin, pattern, byte_level))
                return -1;
        }
        return 0;
    }
    return al_fail("%s: pre_tokenizer type '%s' is not supported (expected ByteLevel, Split with a Regex, "
                   "or a Sequence of those)",
                   origin, type ? type : "(none)");
}

static int check_model(al_tokenizer *t, json_t *model, const char *origin)
{
    if (!json_is_object(model))
        return al_fail("%s: missing \"model\" object", origin);
    const char *type = type_of(model);
    if (type && strcmp(type, "BPE"))
        return al_fail("%s: model type '%s' is not supported (expected \"BPE\")", origin, type);
    if (!json_object_get(model, "vocab"))
        return al_fail("%s: model: missing \"vocab\"", origin);
    if (!json_is_array(json_object_get(model, "merges")))
        return al_fail("%s: model: missing \"merges\" array", origin);
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return al_fail("%s: model: byte_fallback BPE (SentencePiece-style tokenizer.json) is not supported; "
                       "use the tokenizer.model/.bin or a GGUF",
                       origin);
    const char *fields[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const char *v = json_string_value(json_object_get(model, fields[i]));
        if (v && *v)
            return al_fail("%s: model: %s is not supported", origin, fields[i]);
    }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    return 0;
}

static int check_normalizer(json_t *norm, const char *origin)
{
    if (!norm || json_is_null(norm))
        return 0;
    const char *type = type_of(norm);
    /* NFC leaves already-composed text unchanged; it is accepted and not applied. */
    if (type && !strcmp(type, "NFC"))
        return 0;
    if (type && !strcmp(type, "Sequence") && json_array_size(json_object_get(norm, "normalizers")) == 0)
        return 0;
    return al_fail("%s: normalizer '%s' is not supported", origin, type ? type : "?");
}

/* Added tokens become pieces with their text as is, and are split out before anything. */
static int added_tokens(json_t *added, const char *origin, al_gguf_str **tab, int *n, bool **raw, bool **special)
{
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *id = json_object_get(a, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAX_VOCAB ||
            !json_is_string(json_object_get(a, "content")))
            return al_fail("%s: added_tokens[%zu]: expected an \"id\" in [0, %d) and a \"content\" string", origin,
                           i, MAX_VOCAB);
        if (json_integer_value(id) >= *n) {
            int m = (int)json_integer_value(id) + 1;
            al_gguf_str *g = realloc(*tab, (size_t)m * sizeof *g);
            if (!g)
                return al_fail("%s: out of memory", origin);
            memset(g + *n, 0, (size_t)(m - *n) * sizeof *g);
            *tab = g;
            *n = m;
        }
    }
    *raw = calloc((size_t)*n + 1, 1);
    *special = calloc((size_t)*n + 1, 1);
    if (!*raw || !*special)
        return al_fail("%s: out of memory", origin);
    json_array_foreach(added, i, a) {
        int id = (int)json_integer_value(json_object_get(a, "id"));
        json_t *c = json_object_get(a, "content");
        (*tab)[id].s = json_string_value(c);
        (*tab)[id].len = json_string_length(c);
        (*raw)[id] = true;
        (*special)[id] = json_is_true(json_object_get(a, "special"));
    }
    return 0;
}

static int model_merges(al_tokenizer *t, json_t *merges, const char *origin)
{
    al_buf tmp = {0};
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(merges, i, m) {
        if (json_is_string(m)) {
            rc = bbpe_add_merge_line(t, json_string_value(m), json_string_length(m), origin, &tmp);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            al_gguf_str sa = {json_string_value(a), json_string_length(a)};
            al_gguf_str sb = {json_string_value(b), json_string_length(b)};
            rc = bbpe_add_merge_strs(t, sa, sb, origin, &tmp);
        } else {
            rc = al_fail("%s: merges[%zu]: expected \"left right\" or [\"left\", \"right\"]", origin, i);
        }
        if (rc)
            break;
    }
    al_buf_free(&tmp);
    return rc;
}

static int find_named(const al_tokenizer *t, json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return -1;
    return al_strmap_get(&t->pieces, json_string_value(v), json_string_length(v));
}

/* BOS/EOS from tokenizer_config.json beside the file, else from well-known names. */
static void special_ids(al_tokenizer *t, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t d = slash ? (size_t)(slash - path) + 1 : 0;
    char *cfg = malloc(d + 32);
    if (cfg) {
        memcpy(cfg, path, d);
        strcpy(cfg + d, "tokenizer_config.json");
        json_t *root = al_file_exists(cfg) ? json_load_file(cfg, 0, NULL) : NULL;
        free(cfg);
        if (root) {
            t->bos = find_named(t, json_object_get(root, "bos_token"));
            t->eos = find_named(t, json_object_get(root, "eos_token"));
            json_decref(root);
            return;
        }
    }
    static const char *eos[] = {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>"};
    static const char *bos[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof eos / sizeof eos[0] && t->eos < 0; i++)
        t->eos = al_strmap_get(&t->pieces, eos[i], strlen(eos[i]));
    for (size_t i = 0; i < sizeof bos / sizeof bos[0] && t->bos < 0; i++)
        t->bos = al_strmap_get(&t->pieces, bos[i], strlen(bos[i]));
}

static int load_hf_root(al_tokenizer *t, json_t *root, const char *path)
{
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(root) || check_model(t, model, path) ||
        check_normalizer(json_object_get(root, "normalizer"), path))
        return -1;
    const char *pattern = NULL;
    bool byte_level = false;
    json_t *pt = json_object_get(root, "pre_tokenizer");
    if (pt && !json_is_null(pt) && pre_tokenizer_step(t, pt, path, &pattern, &byte_level))
        return -1;
    if (!byte_level)
        return al_fail("%s: not a byte-level BPE (no ByteLevel pre_tokenizer)", path);
    al_gguf_str *tab = NULL;
    bool *raw = NULL, *special = NULL;
    int n = 0, rc = vocab_table(json_object_get(model, "vocab"), path, &tab, &n, 0);
    json_t *added = json_object_get(root, "added_tokens");
    if (rc == 0 && added && !json_is_array(added))
        rc = al_fail("%s: \"added_tokens\" must be an array", path);
    if (rc == 0)
        rc = added_tokens(added, path, &tab, &n, &raw, &special);
    if (rc == 0 && n == 0)
        rc = al_fail("%s: empty vocabulary", path);
    if (rc == 0)
        rc = bbpe_set_vocab(t, tab, raw, n, path);
    int *ids = rc == 0 ? malloc(((size_t)n + 1) * sizeof *ids) : NULL;
    if (rc == 0 && !ids)
        rc = al_fail("out of memory");
    if (rc == 0) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (raw[i]) {
                t->type[i] = special[i] ? TT_CONTROL : TT_USER;
                ids[k++] = i;
            }
        rc = tok_set_specials(t, ids, k);
    }
    free(ids);
    free(tab);
    free(raw);
    free(special);
    if (rc == 0)
        rc = model_merges(t, json_object_get(model, "merges"), path);
    if (rc == 0 && pattern)
        rc = bbpe_compile_regex(t, pattern, path);
    if (rc)
        return -1;
    special_ids(t, path);
    return bbpe_finish_load(t, path);
}

int bbpe_load_hf_json(al_tokenizer *t, const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root)
        return al_fail("%s:%d: invalid JSON: %s", path, err.line, err.text);
    int rc = json_is_object(root) ? load_hf_root(t, root, path) : al_fail("%s: expected a JSON object", path);
    json_decref(root);
    return rc;
}

/* ---- writing tokenizer.json ---- */

static json_t *byte_level_step(bool prefix, bool use_regex)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", prefix, "trim_offsets", 1,
                     "use_regex", use_regex);
}

static json_t *pre_tokenizer_json(const al_tokenizer *t)
{
    bool gpt2 = t->re_pattern && !strcmp(t->re_pattern, al_gpt2_pattern);
    if (!t->re_pattern || gpt2)
        return byte_level_step(t->add_prefix_space, gpt2);
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", t->re_pattern,
                              "behavior", "Isolated", "invert", 0);
    return json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split,
                     byte_level_step(t->add_prefix_space, false));
}

int bbpe_mapped_piece(const al_tokenizer *t, int id, al_buf *out)
{
    const char *s = t->arena + t->off[id];
    if (t->type[id] == TT_CONTROL || t->type[id] == TT_USER) {
        out->len = 0;
        return al_buf_append(out, s, t->len[id]);
    }
    return bbpe_map(s, t->len[id], out);
}

static json_t *model_json(const al_tokenizer *t)
{
    json_t *vocab = json_object(), *merges = json_array();
    al_buf a = {0}, b = {0};
    int rc = vocab && merges ? 0 : -1;
    for (int i = 0; i < t->n_vocab && rc == 0; i++) {
        if (t->type[i] == TT_UNUSED || bbpe_mapped_piece(t, i, &a))
            continue;
        if (!json_object_getn(vocab, a.data, a.len)) /* duplicates: the first id keeps the name */
            rc = json_object_setn_new(vocab, a.data, a.len, json_integer(i));
    }
    for (int r = 0; r < t->n_merges && rc == 0; r++) {
        if (bbpe_mapped_piece(t, t->merge_left[r], &a) || bbpe_mapped_piece(t, t->merge_right[r], &b) ||
            al_buf_append(&a, " ", 1) || al_buf_append(&a, b.data, b.len))
            rc = -1;
        else
            rc = json_array_append_new(merges, json_stringn(a.data, a.len));
    }
    al_buf_free(&a);
    al_buf_free(&b);
    if (rc) {
        json_decref(vocab);
        json_decref(merges);
        return NULL;
    }
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                     "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", t->ignore_merges, "vocab", vocab, "merges", merges);
}

static json_t *added_tokens_json(const al_tokenizer *t)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < t->n_vocab; i++) {
        if (t->type[i] != TT_CONTROL && t->type[i] != TT_USER)
            continue;
        json_t *o = json_pack("{s:i, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", i, "content", t->arena + t->off[i],
                              (size_t)t->len[i], "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                              "special", t->type[i] == TT_CONTROL);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int al_tokenizer_save_json(const al_tokenizer *t, const char *path)
{
    if (t->algo != TOK_BYTE_BPE)
        return al_fail("%s: only byte-level BPE tokenizers can be written as tokenizer.json (this one is %s)",
                       path, t->kind);
    json_t *root = json_pack("{s:s, s:n, s:n, s:o*, s:n, s:o*, s:o*, s:o*, s:o*}", "version", "1.0", "truncation",
                             "padding", "added_tokens", added_tokens_json(t), "normalizer", "pre_tokenizer",
                             pre_tokenizer_json(t), "post_processor", byte_level_step(true, true), "decoder",
                             byte_level_step(true, true), "model", model_json(t));
    if (!root || !json_object_get(root, "model") || !json_object_get(root, "added_tokens")) {
        json_decref(root);
        return al_fail("%s: out of memory building the JSON", path);
    }
    int rc = al_write_json_atomic(path, root);
    json_decref(root);
    return rc;
}

/* A model directory's tokenizer and chat template: what every writer of a model directory
 * puts beside the weights so that `align chat -m DIR` needs nothing else, and what the
 * readers take back.  tokenizer_config.json follows Hugging Face's names where they exist
 * (bos_token, eos_token, additional_special_tokens, chat_template); align's own template
 * format rides along as "align_chat_template", since HF's Jinja cannot be run here. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/data.h"

#define CONFIG_NAME "tokenizer_config.json"

/* The directory a model path stands for: itself, or the directory of a model file. */
static char *model_dir_of(const char *model_path)
{
    char *dir = strdup(model_path);
    if (!dir) {
        al_fail("out of memory");
        return NULL;
    }
    if (!al_is_dir(model_path)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
    }
    return dir;
}

/* A GGUF model file that carries its own vocabulary (tokenizer.ggml.model). */
static bool gguf_with_vocab(const char *path)
{
    if (al_is_dir(path))
        return false;
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool gguf = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f)
        fclose(f);
    al_gguf g;
    if (!gguf || al_gguf_open(&g, path)) {
        al_clear_error(); /* not a usable GGUF: the files beside it are searched as usual */
        return false;
    }
    bool vocab = al_gguf_find(&g, "tokenizer.ggml.model") != NULL;
    al_gguf_close(&g);
    return vocab;
}

char *al_model_dir_find_tokenizer(const char *model_path)
{
    static const char *names[] = {"tokenizer.json", "tokenizer.bin", "tok512.bin"};
    if (gguf_with_vocab(model_path)) { /* the file's own vocabulary is the one its weights were trained with */
        char *p = strdup(model_path);
        if (!p)
            al_fail("out of memory");
        return p;
    }
    char *dir = model_dir_of(model_path);
    for (size_t i = 0; dir && i < sizeof names / sizeof names[0]; i++) {
        char *p = al_path_join(dir, names[i]);
        if (p && al_file_exists(p)) {
            free(dir);
            return p;
        }
        free(p);
    }
    free(dir);
    return NULL;
}

static json_t *piece_json(const al_tokenizer *tok, int id)
{
    const char *s;
    size_t len;
    if (id < 0 || al_tokenizer_piece(tok, id, &s, &len))
        return json_null();
    return json_stringn(s, len); /* NULL (not valid UTF-8): the caller reports it */
}

static int set(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return al_fail("tokenizer_config.json: \"%s\" is not valid UTF-8", key);
    return json_object_set_new(o, key, v) ? al_fail("out of memory") : 0;
}

static bool listed(const al_ints *ids, int id)
{
    for (int i = 0; i < ids->n; i++)
        if (ids->v[i] == id)
            return true;
    return false;
}

/* Every split-out special but BOS and EOS (which have their own keys), and the template's
 * markers the vocabulary has: training cut those out as single ids whether or not the
 * tokenizer it was given marked them special. */
static int add_specials(json_t *cfg, const al_tokenizer *tok, const al_chat_template *tmpl)
{
    al_ints ids = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < al_tokenizer_n_specials(tok); i++)
        rc = al_ints_push(&ids, al_tokenizer_special(tok, i));
    const char **markers;
    int n = 0;
    if (tmpl)
        al_chat_template_specials(tmpl, &markers, &n);
    for (int k = 0; rc == 0 && k < n; k++) {
        int id = al_tokenizer_find(tok, markers[k], strlen(markers[k]));
        if (id >= 0 && !listed(&ids, id))
            rc = al_ints_push(&ids, id);
    }
    json_t *list = json_array();
    rc = rc || !list ? al_fail("out of memory") : 0;
    for (int i = 0; rc == 0 && i < ids.n; i++) {
        int id = ids.v[i];
        if (id == al_tokenizer_bos(tok) || id == al_tokenizer_eos(tok))
            continue;
        json_t *p = piece_json(tok, id);
        rc = p && !json_is_null(p) ? json_array_append_new(list, p)
                                   : al_fail("tokenizer_config.json: special token %d is not valid UTF-8", id);
    }
    al_ints_free(&ids);
    if (rc) {
        json_decref(list);
        return -1;
    }
    return set(cfg, "additional_special_tokens", list);
}

static int add_template(json_t *cfg, const al_tokenizer *tok, const al_chat_template *tmpl)
{
    al_buf jinja = {0}, file = {0};
    const char *builtin = al_chat_template_builtin_name(tmpl);
    int rc = al_chat_template_jinja(tmpl, tok, &jinja);
    if (rc == 0 && !builtin)
        rc = al_chat_template_write(tmpl, &file);
    json_t *align = NULL;
    if (rc == 0) {
        align = builtin ? json_pack("{s:s}", "builtin", builtin) : json_pack("{s:s%}", "file", file.data, file.len);
        rc = set(cfg, "chat_template", json_stringn(jinja.data, jinja.len)) || set(cfg, "align_chat_template", align)
                 ? -1
                 : 0;
    }
    al_buf_free(&jinja);
    al_buf_free(&file);
    return rc;
}

int al_model_dir_save_tokenizer(const char *dir, const al_tokenizer *tok, const al_chat_template *tmpl)
{
    if (al_mkdir_p(dir) || al_tokenizer_save(tok, dir, NULL, 0))
        return -1;
    json_t *cfg = json_object();
    if (!cfg)
        return al_fail("out of memory");
    bool json_kind = strcmp(al_tokenizer_kind(tok), "llama2c") && strcmp(al_tokenizer_kind(tok), "gguf-llama");
    /* HF can load a tokenizer.json this way; tokenizer.bin is align's (llama2.c's) own */
    int rc = json_kind ? set(cfg, "tokenizer_class", json_string("PreTrainedTokenizerFast")) : 0;
    if (rc == 0)
        rc = set(cfg, "bos_token", piece_json(tok, al_tokenizer_bos(tok))) ||
                     set(cfg, "eos_token", piece_json(tok, al_tokenizer_eos(tok))) || add_specials(cfg, tok, tmpl) ||
                     (tmpl && add_template(cfg, tok, tmpl))
                 ? -1
                 : 0;
    char *path = rc == 0 ? al_path_join(dir, CONFIG_NAME) : NULL;
    if (rc == 0)
        rc = path ? al_write_json_atomic(path, cfg) : al_fail("out of memory");
    free(path);
    json_decref(cfg);
    return rc ? al_fail_prefix("%s", dir) : 0;
}

/* HF writes additional_special_tokens as strings or as {"content": ...} objects. */
static const char *special_text(json_t *v, size_t *len)
{
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int restore_specials(json_t *cfg, al_tokenizer *tok, const char *path)
{
    json_t *list = json_object_get(cfg, "additional_special_tokens");
    if (!list)
        return 0;
    if (!json_is_array(list))
        return al_fail("%s: \"additional_special_tokens\": expected a list", path);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        size_t len;
        const char *s = special_text(v, &len);
        if (!s)
            return al_fail("%s: \"additional_special_tokens\"[%zu]: expected a string", path, i);
        /* adding a token the model was not trained with would grow the vocabulary past it */
        if (al_tokenizer_find(tok, s, len) < 0)
            return al_fail("%s: special token '%s' is not in the tokenizer beside it", path, s);
        if (al_tokenizer_add_special(tok, s, NULL))
            return al_fail_prefix("%s", path);
    }
    return 0;
}

static int read_template(json_t *cfg, al_chat_template **tmpl, bool *jinja_only, const char *path)
{
    json_t *a = json_object_get(cfg, "align_chat_template");
    if (!a) {
        if (jinja_only)
            *jinja_only = json_is_string(json_object_get(cfg, "chat_template"));
        return 0;
    }
    json_t *builtin = json_object_get(a, "builtin"), *file = json_object_get(a, "file");
    if (json_is_string(builtin))
        return al_chat_template_builtin(tmpl, json_string_value(builtin)) ? al_fail_prefix("%s", path) : 0;
    if (json_is_string(file))
        return al_chat_template_parse(tmpl, json_string_value(file), json_string_length(file), path);
    return al_fail("%s: \"align_chat_template\": expected {\"builtin\": NAME} or {\"file\": TEXT}", path);
}

int al_model_dir_load_config(const char *model_path, al_tokenizer *tok, al_chat_template **tmpl, bool *jinja_only)
{
    if (tmpl)
        *tmpl = NULL;
    if (jinja_only)
        *jinja_only = false;
    char *dir = model_dir_of(model_path), *path = dir ? al_path_join(dir, CONFIG_NAME) : NULL;
    free(dir);
    if (!path)
        return al_fail("out of memory");
    if (!al_file_exists(path)) {
        free(path);
        return 0;
    }
    json_error_t err;
    json_t *cfg = json_load_file(path, 0, &err);
    int rc = 0;
    if (!cfg || !json_is_object(cfg))
        rc = al_fail("%s:%d:%d: %s", path, err.line, err.column, cfg ? "expected a JSON object" : err.text);
    if (rc == 0 && tok)
        rc = restore_specials(cfg, tok, path);
    if (rc == 0 && tmpl)
        rc = read_template(cfg, tmpl, jinja_only, path);
    json_decref(cfg);
    free(path);
    return rc;
}

int al_model_dir_copy_tokenizer(const char *from_model, const char *to_dir, bool *copied)
{
    if (copied)
        *copied = false;
    char *tok_path = al_model_dir_find_tokenizer(from_model);
    if (!tok_path)
        return 0;
    al_tokenizer *tok = NULL;
    al_chat_template *tmpl = NULL;
    int rc = al_tokenizer_load(&tok, tok_path) || al_model_dir_load_config(from_model, tok, &tmpl, NULL) ||
                     al_model_dir_save_tokenizer(to_dir, tok, tmpl)
                 ? -1
                 : 0;
    if (rc == 0 && copied)
        *copied = true;
    al_chat_template_free(tmpl);
    al_tokenizer_free(tok);
    free(tok_path);
    return rc;
}

/* Hugging Face config.json: reading (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM, and their ForSequenceClassification forms) and writing (Llama, or
 * Qwen2 for models with q/k/v biases; ForSequenceClassification for reward models).  Every rejected field is named: "config.json: rope_scaling: ...". */
#include "align/model.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FAM_LLAMA, FAM_MISTRAL, FAM_QWEN2 } family;

/* "<Family>ForCausalLM" or "<Family>ForSequenceClassification" (*cls set). */
static int family_from_arch(const char *s, family *f, bool *cls)
{
    static const struct {
        const char *prefix;
        family fam;
    } fams[] = {{"Llama", FAM_LLAMA}, {"Mistral", FAM_MISTRAL}, {"Qwen2", FAM_QWEN2}};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        size_t n = strlen(fams[i].prefix);
        if (strncmp(s, fams[i].prefix, n))
            continue;
        if (!strcmp(s + n, "ForCausalLM") || !strcmp(s + n, "ForSequenceClassification")) {
            *f = fams[i].fam;
            *cls = !strcmp(s + n, "ForSequenceClassification");
            return 0;
        }
    }
    return -1;
}

static int family_from_type(const char *s, family *f)
{
    if (!strcmp(s, "llama"))
        *f = FAM_LLAMA;
    else if (!strcmp(s, "mistral"))
        *f = FAM_MISTRAL;
    else if (!strcmp(s, "qwen2"))
        *f = FAM_QWEN2;
    else
        return -1;
    return 0;
}

/* A present, non-null member or NULL. */
static json_t *field(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

/* Positive int; def < 0 means required. */
static int get_pos_int(json_t *root, const char *key, long long def, int *out, const char *origin)
{
    json_t *v = field(root, key);
    if (!v) {
        if (def < 0)
            return al_fail("%s: %s: missing (expected a positive integer)", origin, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX)
        return al_fail("%s: %s: expected a positive integer", origin, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_pos_float(json_t *root, const char *key, double def, float *out, const char *origin)
{
    json_t *v = field(root, key);
    if (!v) {
        *out = (float)def;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e30)
        return al_fail("%s: %s: expected a positive number", origin, key);
    *out = (float)json_number_value(v);
    return 0;
}

static int get_bool(json_t *root, const char *key, bool def, bool *out, const char *origin)
{
    json_t *v = field(root, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return al_fail("%s: %s: expected true or false", origin, key);
    *out = json_is_true(v);
    return 0;
}

/* bos/eos: an integer, null/missing (-1), or an array whose first element counts. */
static int get_token_id(json_t *root, const char *key, int *out, const char *origin)
{
    json_t *v = field(root, key);
    *out = -1;
    if (json_is_array(v))
        v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
        return al_fail("%s: %s: expected a non-negative integer, an array of them, or null", origin, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int parse(al_config *c, json_t *root, const char *origin)
{
    if (!json_is_object(root))
        return al_fail("%s: expected a JSON object at the top level", origin);

    /* Architecture: "architectures"[0] if present, else model_type; both must be known. */
    family fam = FAM_LLAMA;
    bool known = false, cls = false;
    json_t *arch = field(root, "architectures");
    if (arch) {
        if (!json_is_array(arch) || json_array_size(arch) == 0 || !json_is_string(json_array_get(arch, 0)))
            return al_fail("%s: architectures: expected an array of strings", origin);
        const char *a = json_string_value(json_array_get(arch, 0));
        if (family_from_arch(a, &fam, &cls))
            return al_fail("%s: architectures: '%s' is not supported (LlamaForCausalLM, MistralForCausalLM, "
                           "Qwen2ForCausalLM and their ForSequenceClassification forms are)",
                           origin, a);
        known = true;
    }
    json_t *mt = field(root, "model_type");
    if (mt) {
        family f2;
        if (!json_is_string(mt))
            return al_fail("%s: model_type: expected a string", origin);
        if (family_from_type(json_string_value(mt), &f2))
            return al_fail("%s: model_type: '%s' is not supported (llama, mistral, qwen2 are)", origin,
                           json_string_value(mt));
        if (known && f2 != fam)
            return al_fail("%s: model_type: '%s' disagrees with architectures", origin, json_string_value(mt));
        fam = f2;
        known = true;
    }
    if (!known)
        return al_fail("%s: model_type: missing (and no architectures); expected llama, mistral or qwen2", origin);

    memset(c, 0, sizeof *c);
    if (get_pos_int(root, "hidden_size", -1, &c->dim, origin) ||
        get_pos_int(root, "intermediate_size", -1, &c->hidden_dim, origin) ||
        get_pos_int(root, "num_hidden_layers", -1, &c->n_layers, origin) ||
        get_pos_int(root, "num_attention_heads", -1, &c->n_heads, origin) ||
        get_pos_int(root, "num_key_value_heads", c->n_heads, &c->n_kv_heads, origin) ||
        get_pos_int(root, "vocab_size", -1, &c->vocab_size, origin) ||
        get_pos_int(root, "max_position_embeddings", -1, &c->seq_len, origin))
        return -1;
    if (!field(root, "head_dim") && c->dim % c->n_heads)
        return al_fail("%s: hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not given",
                       origin, c->dim, c->n_heads);
    if (get_pos_int(root, "head_dim", c->dim / c->n_heads, &c->head_dim, origin) ||
        get_pos_float(root, "rms_norm_eps", 1e-6, &c->norm_eps, origin) ||
        get_pos_float(root, "rope_theta", 10000.0, &c->rope_theta, origin) ||
        get_bool(root, "tie_word_embeddings", false, &c->tied_embeddings, origin) ||
        get_token_id(root, "bos_token_id", &c->bos_id, origin) ||
        get_token_id(root, "eos_token_id", &c->eos_id, origin))
        return -1;
    c->rope = AL_ROPE_HALF;
    /* HF stores the label count as id2label; num_labels is accepted too; its default is 2. */
    if (cls) {
        json_t *labels = field(root, "id2label");
        if (labels && (!json_is_object(labels) || json_object_size(labels) == 0))
            return al_fail("%s: id2label: expected a non-empty object", origin);
        if (get_pos_int(root, "num_labels", labels ? (long long)json_object_size(labels) : 2, &c->n_labels, origin))
            return -1;
        if (labels && (size_t)c->n_labels != json_object_size(labels))
            return al_fail("%s: num_labels %d disagrees with id2label's %zu entries", origin, c->n_labels,
                           json_object_size(labels));
    }

    json_t *act = field(root, "hidden_act");
    if (act && !json_is_string(act))
        return al_fail("%s: hidden_act: expected a string", origin);
    if (act && strcmp(json_string_value(act), "silu") != 0)
        return al_fail("%s: hidden_act: '%s' is not supported (only silu)", origin, json_string_value(act));
    if (field(root, "rope_scaling"))
        return al_fail("%s: rope_scaling: not supported (only plain rotary embeddings; the field must be null "
                       "or absent)",
                       origin);
    bool mlp_bias = false;
    if (get_bool(root, "mlp_bias", false, &mlp_bias, origin))
        return -1;
    if (mlp_bias)
        return al_fail("%s: mlp_bias: true is not supported", origin);

    if (fam == FAM_QWEN2) {
        c->qkv_bias = true; /* Qwen2 always has q/k/v biases and no o_proj bias */
    } else {
        bool attn_bias = false;
        if (get_bool(root, "attention_bias", false, &attn_bias, origin))
            return -1;
        /* In Llama/Mistral, attention_bias also adds an o_proj bias, which align lacks. */
        if (attn_bias)
            return al_fail("%s: attention_bias: true is not supported for %s (it adds an o_proj bias)", origin,
                           fam == FAM_LLAMA ? "llama" : "mistral");
    }

    /* Sliding-window attention equals full attention up to the window: cap the length. */
    json_t *sw = field(root, "sliding_window");
    bool use_sw = fam != FAM_QWEN2;
    if (fam == FAM_QWEN2 && get_bool(root, "use_sliding_window", false, &use_sw, origin))
        return -1;
    if (sw && use_sw) {
        if (!json_is_integer(sw) || json_integer_value(sw) <= 0)
            return al_fail("%s: sliding_window: expected a positive integer or null", origin);
        if (json_integer_value(sw) < c->seq_len)
            c->seq_len = (int)json_integer_value(sw);
    }

    if (al_config_validate(c))
        return al_fail_prefix("%s", origin);
    return 0;
}

int al_config_from_hf_json(al_config *c, const char *json_text, size_t len, const char *origin)
{
    if (!origin)
        origin = "config.json";
    json_error_t err;
    json_t *root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return al_fail("%s: not valid JSON: line %d column %d: %s", origin, err.line, err.column, err.text);
    al_config tmp;
    int rc = parse(&tmp, root, origin);
    json_decref(root);
    if (rc == 0)
        *c = tmp;
    return rc;
}

/* Shortest decimal that reads back as the same float, always with a '.' or exponent. */
static void format_float(char *buf, size_t n, float x)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x)
            break;
    }
    if (!strpbrk(buf, ".eEn")) {
        size_t k = strlen(buf);
        if (k + 3 <= n)
            memcpy(buf + k, ".0", 3);
    }
}

int al_config_to_hf_json(const al_config *c, al_buf *out)
{
    const bool qwen = c->qkv_bias;
    char eps[32], theta[32];
    format_float(eps, sizeof eps, c->norm_eps);
    format_float(theta, sizeof theta, c->rope_theta);
    char arch[48];
    snprintf(arch, sizeof arch, "%s%s", qwen ? "Qwen2" : "Llama", c->n_labels > 0 ? "ForSequenceClassification" : "ForCausalLM");
    int rc = al_buf_printf(out,
                           "{\n"
                           "  \"architectures\": [\"%s\"],\n"
                           "  \"model_type\": \"%s\",\n"
                           "  \"hidden_size\": %d,\n"
                           "  \"intermediate_size\": %d,\n"
                           "  \"num_hidden_layers\": %d,\n"
                           "  \"num_attention_heads\": %d,\n"
                           "  \"num_key_value_heads\": %d,\n"
                           "  \"head_dim\": %d,\n"
                           "  \"vocab_size\": %d,\n"
                           "  \"max_position_embeddings\": %d,\n"
                           "  \"rms_norm_eps\": %s,\n"
                           "  \"rope_theta\": %s,\n"
                           "  \"rope_scaling\": null,\n"
                           "  \"hidden_act\": \"silu\",\n"
                           "  \"tie_word_embeddings\": %s,\n"
                           "  \"attention_bias\": %s,\n"
                           "  \"mlp_bias\": false,\n",
                           arch, qwen ? "qwen2" : "llama", c->dim,
                           c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                           c->seq_len, eps, theta, c->tied_embeddings ? "true" : "false",
                           qwen ? "true" : "false");
    if (!rc && qwen)
        rc = al_buf_printf(out, "  \"use_sliding_window\": false,\n");
    for (int pass = 0; pass < 2 && !rc && c->n_labels > 0; pass++) {
        rc = al_buf_printf(out, "  \"%s\": {", pass ? "label2id" : "id2label");
        for (int i = 0; i < c->n_labels && !rc; i++)
            rc = pass ? al_buf_printf(out, "%s\"LABEL_%d\": %d", i ? ", " : "", i, i)
                      : al_buf_printf(out, "%s\"%d\": \"LABEL_%d\"", i ? ", " : "", i, i);
        if (!rc)
            rc = al_buf_printf(out, "},\n");
    }
    if (!rc && c->bos_id >= 0)
        rc = al_buf_printf(out, "  \"bos_token_id\": %d,\n", c->bos_id);
    if (!rc && c->eos_id >= 0)
        rc = al_buf_printf(out, "  \"eos_token_id\": %d,\n", c->eos_id);
    if (!rc)
        rc = al_buf_printf(out, "  \"torch_dtype\": \"float32\"\n}\n");
    return rc;
}

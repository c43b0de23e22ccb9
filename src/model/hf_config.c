/* Hugging Face config.json: reading (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM, GPT2LMHeadModel / GPT2Model, and their ForSequenceClassification forms)
 * and writing (Llama, Qwen2 for Llama-layout models with q/k/v biases, GPT-2 for the GPT-2
 * layout; ForSequenceClassification for reward models).  Every rejected field is named:
 * "config.json: rope_scaling: ...". */
#include "align/model.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FAM_LLAMA, FAM_MISTRAL, FAM_QWEN2, FAM_GPT2 } family;

/* The architectures align reads, and whether each is a sequence classifier. */
static const struct {
    const char *name;
    family fam;
    bool cls;
} known_archs[] = {
    {"LlamaForCausalLM", FAM_LLAMA, false},   {"LlamaForSequenceClassification", FAM_LLAMA, true},
    {"MistralForCausalLM", FAM_MISTRAL, false}, {"MistralForSequenceClassification", FAM_MISTRAL, true},
    {"Qwen2ForCausalLM", FAM_QWEN2, false},   {"Qwen2ForSequenceClassification", FAM_QWEN2, true},
    {"GPT2LMHeadModel", FAM_GPT2, false},     {"GPT2Model", FAM_GPT2, false},
    {"GPT2ForSequenceClassification", FAM_GPT2, true},
};

static int family_from_arch(const char *s, family *f, bool *cls)
{
    for (size_t i = 0; i < sizeof known_archs / sizeof known_archs[0]; i++)
        if (!strcmp(s, known_archs[i].name)) {
            *f = known_archs[i].fam;
            *cls = known_archs[i].cls;
            return 0;
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
    else if (!strcmp(s, "gpt2"))
        *f = FAM_GPT2;
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

/* GPT-2's name for a size, or HF's generic alias for it (GPT2Config.attribute_map: hidden_size
 * is n_embd, ...); both may be given if they agree.  def < 0 means required. */
static int get_gpt2_int(json_t *root, const char *key, const char *alias, long long def, int *out,
                        const char *origin)
{
    int a = 0, b = 0;
    const bool has_key = field(root, key) != NULL, has_alias = field(root, alias) != NULL;
    if (!has_key && !has_alias) {
        if (def < 0)
            return al_fail("%s: %s: missing (expected a positive integer)", origin, key);
        *out = (int)def;
        return 0;
    }
    if ((has_key && get_pos_int(root, key, -1, &a, origin)) || (has_alias && get_pos_int(root, alias, -1, &b, origin)))
        return -1;
    if (has_key && has_alias && a != b)
        return al_fail("%s: %s (%d) and its alias %s (%d) disagree", origin, key, a, alias, b);
    *out = has_key ? a : b;
    return 0;
}

/* GPT2Config: n_embd, n_layer, n_head, n_positions, n_inner (null: 4 n_embd),
 * layer_norm_epsilon, activation_function (tanh GELU only), tied embeddings by default. */
static int parse_gpt2(al_config *c, json_t *root, const char *origin)
{
    memset(c, 0, sizeof *c);
    c->arch = AL_ARCH_GPT2;
    if (get_gpt2_int(root, "n_embd", "hidden_size", -1, &c->dim, origin) ||
        get_gpt2_int(root, "n_layer", "num_hidden_layers", -1, &c->n_layers, origin) ||
        get_gpt2_int(root, "n_head", "num_attention_heads", -1, &c->n_heads, origin) ||
        get_gpt2_int(root, "n_positions", "max_position_embeddings", -1, &c->seq_len, origin) ||
        get_pos_int(root, "vocab_size", -1, &c->vocab_size, origin))
        return -1;
    if (field(root, "intermediate_size"))
        return al_fail("%s: intermediate_size: not a GPT-2 field (GPT-2's MLP size is n_inner; null means 4 n_embd)",
                       origin);
    if (c->dim > INT_MAX / 4)
        return al_fail("%s: n_embd: %d is too large", origin, c->dim);
    if (get_pos_int(root, "n_inner", 4LL * c->dim, &c->hidden_dim, origin))
        return -1;
    if (c->dim % c->n_heads)
        return al_fail("%s: n_embd %d is not a multiple of n_head %d", origin, c->dim, c->n_heads);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    int v = 0;
    if (field(root, "num_key_value_heads") &&
        (get_pos_int(root, "num_key_value_heads", -1, &v, origin) || v != c->n_heads))
        return al_fail("%s: num_key_value_heads: GPT-2 has one key/value head per head (n_head %d)", origin,
                       c->n_heads);
    if (field(root, "head_dim") && (get_pos_int(root, "head_dim", -1, &v, origin) || v != c->head_dim))
        return al_fail("%s: head_dim: GPT-2's is n_embd / n_head (%d)", origin, c->head_dim);
    if (get_pos_float(root, "layer_norm_epsilon", 1e-5, &c->norm_eps, origin) ||
        get_bool(root, "tie_word_embeddings", true, &c->tied_embeddings, origin) ||
        get_token_id(root, "bos_token_id", &c->bos_id, origin) ||
        get_token_id(root, "eos_token_id", &c->eos_id, origin))
        return -1;
    json_t *act = field(root, "activation_function");
    if (act && !json_is_string(act))
        return al_fail("%s: activation_function: expected a string", origin);
    const char *a = act ? json_string_value(act) : "gelu_new";
    if (strcmp(a, "gelu_new") && strcmp(a, "gelu_pytorch_tanh"))
        return al_fail("%s: activation_function: '%s' is not supported (GPT-2 in align uses the tanh GELU: "
                       "gelu_new or gelu_pytorch_tanh)",
                       origin, a);
    /* Options that change the function computed. */
    bool scale = true, by_layer = false, cross = false;
    if (get_bool(root, "scale_attn_weights", true, &scale, origin) ||
        get_bool(root, "scale_attn_by_inverse_layer_idx", false, &by_layer, origin) ||
        get_bool(root, "add_cross_attention", false, &cross, origin))
        return -1;
    if (!scale)
        return al_fail("%s: scale_attn_weights: false is not supported (attention scores are scaled by "
                       "1/sqrt(head_dim))",
                       origin);
    if (by_layer)
        return al_fail("%s: scale_attn_by_inverse_layer_idx: true is not supported", origin);
    if (cross)
        return al_fail("%s: add_cross_attention: true is not supported", origin);
    c->qkv_bias = true;
    c->rope = AL_ROPE_HALF;   /* no rotary embeddings: nothing is ever permuted */
    c->rope_theta = 10000.0f; /* unused */
    return 0;
}

/* Llama / Mistral / Qwen2. */
static int parse_llama(al_config *c, json_t *root, family fam, const char *origin)
{
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

    return 0;
}

/* HF stores the label count as id2label; num_labels is accepted too; its default is 2. */
static int parse_labels(al_config *c, json_t *root, const char *origin)
{
    json_t *labels = field(root, "id2label");
    if (labels && (!json_is_object(labels) || json_object_size(labels) == 0))
        return al_fail("%s: id2label: expected a non-empty object", origin);
    if (get_pos_int(root, "num_labels", labels ? (long long)json_object_size(labels) : 2, &c->n_labels, origin))
        return -1;
    if (labels && (size_t)c->n_labels != json_object_size(labels))
        return al_fail("%s: num_labels %d disagrees with id2label's %zu entries", origin, c->n_labels,
                       json_object_size(labels));
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
                           "Qwen2ForCausalLM and their ForSequenceClassification forms, GPT2LMHeadModel, "
                           "GPT2Model and GPT2ForSequenceClassification are)",
                           origin, a);
        known = true;
    }
    json_t *mt = field(root, "model_type");
    if (mt) {
        family f2;
        if (!json_is_string(mt))
            return al_fail("%s: model_type: expected a string", origin);
        if (family_from_type(json_string_value(mt), &f2))
            return al_fail("%s: model_type: '%s' is not supported (llama, mistral, qwen2, gpt2 are)", origin,
                           json_string_value(mt));
        if (known && f2 != fam)
            return al_fail("%s: model_type: '%s' disagrees with architectures", origin, json_string_value(mt));
        fam = f2;
        known = true;
    }
    if (!known)
        return al_fail("%s: model_type: missing (and no architectures); expected llama, mistral, qwen2 or gpt2",
                       origin);

    if ((fam == FAM_GPT2 ? parse_gpt2(c, root, origin) : parse_llama(c, root, fam, origin)) ||
        (cls && parse_labels(c, root, origin)))
        return -1;
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

static int write_labels(const al_config *c, al_buf *out)
{
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc && c->n_labels > 0; pass++) {
        rc = al_buf_printf(out, "  \"%s\": {", pass ? "label2id" : "id2label");
        for (int i = 0; i < c->n_labels && !rc; i++)
            rc = pass ? al_buf_printf(out, "%s\"LABEL_%d\": %d", i ? ", " : "", i, i)
                      : al_buf_printf(out, "%s\"%d\": \"LABEL_%d\"", i ? ", " : "", i, i);
        if (!rc)
            rc = al_buf_printf(out, "},\n");
    }
    return rc;
}

/* GPT2LMHeadModel (GPT2ForSequenceClassification with a score head).  HF's GPT-2 has no
 * head_dim: it must be n_embd / n_head.  Token ids align does not know are written as
 * null, since a missing one means GPT-2's 50256 to transformers. */
static int gpt2_to_hf_json(const al_config *c, al_buf *out)
{
    if (c->n_heads <= 0 || c->dim % c->n_heads || c->head_dim != c->dim / c->n_heads || c->n_kv_heads != c->n_heads)
        return al_fail("GPT-2 config.json: needs head_dim = dim / n_heads and n_kv_heads = n_heads (dim %d, n_heads "
                       "%d, n_kv_heads %d, head_dim %d)",
                       c->dim, c->n_heads, c->n_kv_heads, c->head_dim);
    char eps[32];
    format_float(eps, sizeof eps, c->norm_eps);
    int rc = al_buf_printf(out,
                           "{\n"
                           "  \"architectures\": [\"%s\"],\n"
                           "  \"model_type\": \"gpt2\",\n"
                           "  \"n_embd\": %d,\n"
                           "  \"n_inner\": %d,\n"
                           "  \"n_layer\": %d,\n"
                           "  \"n_head\": %d,\n"
                           "  \"n_positions\": %d,\n"
                           "  \"vocab_size\": %d,\n"
                           "  \"layer_norm_epsilon\": %s,\n"
                           "  \"activation_function\": \"gelu_new\",\n"
                           "  \"scale_attn_weights\": true,\n"
                           "  \"scale_attn_by_inverse_layer_idx\": false,\n"
                           "  \"reorder_and_upcast_attn\": false,\n"
                           "  \"tie_word_embeddings\": %s,\n",
                           c->n_labels > 0 ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel", c->dim,
                           c->hidden_dim, c->n_layers, c->n_heads, c->seq_len, c->vocab_size, eps,
                           c->tied_embeddings ? "true" : "false");
    if (!rc)
        rc = write_labels(c, out);
    if (!rc)
        rc = c->bos_id >= 0 ? al_buf_printf(out, "  \"bos_token_id\": %d,\n", c->bos_id)
                            : al_buf_printf(out, "  \"bos_token_id\": null,\n");
    if (!rc)
        rc = c->eos_id >= 0 ? al_buf_printf(out, "  \"eos_token_id\": %d,\n", c->eos_id)
                            : al_buf_printf(out, "  \"eos_token_id\": null,\n");
    if (!rc)
        rc = al_buf_printf(out, "  \"torch_dtype\": \"float32\"\n}\n");
    return rc;
}

int al_config_to_hf_json(const al_config *c, al_buf *out)
{
    if (c->arch == AL_ARCH_GPT2)
        return gpt2_to_hf_json(c, out);
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
    if (!rc)
        rc = write_labels(c, out);
    if (!rc && c->bos_id >= 0)
        rc = al_buf_printf(out, "  \"bos_token_id\": %d,\n", c->bos_id);
    if (!rc && c->eos_id >= 0)
        rc = al_buf_printf(out, "  \"eos_token_id\": %d,\n", c->eos_id);
    if (!rc)
        rc = al_buf_printf(out, "  \"torch_dtype\": \"float32\"\n}\n");
    return rc;
}

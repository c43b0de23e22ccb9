/* Guard policies in YAML (libyaml's document API), overlaid on the built-in policy.
 *
 * Every key is checked: an unknown key, a value of the wrong kind or out of range stops
 * the load with "FILE:LINE:COLUMN: expected ..." pointing at the offending node (columns
 * count bytes from 1, as libyaml's marks do from 0).  Lists replace the built-in lists;
 * mappings are merged key by key.  Relative paths in the file are taken relative to the
 * file's directory.  docs/guard.md is the reference for every key. */
#include <stdarg.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "rules.h"

static const char *const action_names[] = {"allow", "redact", "escalate", "block"};
static const char *const rail_names[AL_RAIL_COUNT] = {
    "decode", "injection", "roleplay", "pii", "toxicity", "constitution", "harm", "perplexity",
};
static const char *const category_names[AL_GCAT_HAZARD] = {
    "invalid_input", "injection", "roleplay", "obfuscation", "pii", "toxicity", "deny_term",
    "missing_escalation", "perplexity",
};
static const char *const hazard_names[AL_HAZ_COUNT] = {
    "violent_crime", "nonviolent_crime", "sex_crime", "child_exploitation", "defamation",
    "specialized_advice", "privacy", "intellectual_property", "indiscriminate_weapons", "hate",
    "self_harm", "sexual_content", "elections", "code_interpreter_abuse",
};

const char *al_guard_action_name(al_guard_action a) { return (unsigned)a < 4 ? action_names[a] : "?"; }
const char *al_guard_rail_name(al_guard_rail r) { return (unsigned)r < AL_RAIL_COUNT ? rail_names[r] : "?"; }
const char *al_hazard_name(al_hazard h) { return (unsigned)h < AL_HAZ_COUNT ? hazard_names[h] : "?"; }

int al_hazard_parse(const char *name, al_hazard *out)
{
    for (int i = 0; name && i < AL_HAZ_COUNT; i++)
        if (strcmp(name, hazard_names[i]) == 0) {
            *out = (al_hazard)i;
            return 0;
        }
    return al_fail("unknown hazard '%s'", name ? name : "(null)");
}

const char *al_guard_category_name(int cat)
{
    if (cat >= 0 && cat < AL_GCAT_HAZARD)
        return category_names[cat];
    return cat >= AL_GCAT_HAZARD && cat < AL_GCAT_COUNT ? hazard_names[cat - AL_GCAT_HAZARD] : "?";
}

int al_guard_category_parse(const char *name, int *out)
{
    for (int c = 0; name && c < AL_GCAT_COUNT; c++)
        if (strcmp(name, al_guard_category_name(c)) == 0) {
            *out = c;
            return 0;
        }
    return al_fail("unknown category '%s'", name ? name : "(null)");
}

/* ---- reading nodes ---- */

typedef struct reader {
    yaml_document_t *doc;
    const char *origin;
    char *dir; /* the file's directory, for relative paths; NULL: none */
    al_guard_policy *p;
} reader;

static int fail_at(const reader *r, const yaml_node_t *n, const char *fmt, ...) AL_PRINTF(3, 4);
static int fail_at(const reader *r, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    al_vfail_at(r->origin, (long)n->start_mark.line + 1, (long)n->start_mark.column + 1, fmt, ap);
    va_end(ap);
    return -1;
}

static yaml_node_t *node(const reader *r, int id) { return yaml_document_get_node(r->doc, id); }

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int want_scalar(const reader *r, const yaml_node_t *n, const char *what, const char **out)
{
    if (!(*out = scalar(n)))
        return fail_at(r, n, "expected %s, got a %s", what, n->type == YAML_MAPPING_NODE ? "mapping" : "list");
    return 0;
}

static int get_bool(const reader *r, const yaml_node_t *n, bool *out)
{
    const char *s;
    if (want_scalar(r, n, "true or false", &s))
        return -1;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        *out = true;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        *out = false;
    else
        return fail_at(r, n, "expected true or false, got '%s'", s);
    return 0;
}

static int get_number(const reader *r, const yaml_node_t *n, double lo, double hi, bool integer, double *out)
{
    const char *s;
    if (want_scalar(r, n, integer ? "an integer" : "a number", &s))
        return -1;
    char *end;
    double v = strtod(s, &end);
    /* range first: casting a double beyond long long's range to test integrality is undefined */
    if (end == s || *end || !(v >= lo && v <= hi) || (integer && v != floor(v)))
        return fail_at(r, n, "expected %s from %g to %g, got '%s'", integer ? "an integer" : "a number", lo, hi, s);
    *out = v;
    return 0;
}

static int get_float(const reader *r, const yaml_node_t *n, double lo, double hi, float *out)
{
    double v;
    if (get_number(r, n, lo, hi, false, &v))
        return -1;
    *out = (float)v;
    return 0;
}

static int get_string(const reader *r, const yaml_node_t *n, char **out)
{
    const char *s;
    if (want_scalar(r, n, "a string", &s))
        return -1;
    char *c = strdup(s);
    if (!c)
        return al_fail("out of memory");
    free(*out);
    *out = c;
    return 0;
}

static int get_path(const reader *r, const yaml_node_t *n, char **out)
{
    if (get_string(r, n, out))
        return -1;
    if (r->dir && (*out)[0] && (*out)[0] != '/') {
        char *joined = al_path_join(r->dir, *out);
        if (!joined)
            return al_fail("out of memory");
        free(*out);
        *out = joined;
    }
    return 0;
}

static int want_kind(const reader *r, const yaml_node_t *n, yaml_node_type_t kind)
{
    if (n->type == kind)
        return 0;
    return fail_at(r, n, "expected a %s", kind == YAML_MAPPING_NODE ? "mapping" : "list");
}

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int get_strings(const reader *r, const yaml_node_t *n, char ***out, int *count)
{
    if (want_kind(r, n, YAML_SEQUENCE_NODE))
        return -1;
    int len = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc((size_t)len + 1, sizeof *v);
    if (!v)
        return al_fail("out of memory");
    for (int i = 0; i < len; i++)
        if (get_string(r, node(r, n->data.sequence.items.start[i]), &v[i])) {
            free_strings(v, len);
            return -1;
        }
    free_strings(*out, *count);
    *out = v;
    *count = len;
    return 0;
}

/* A list of names, each one of names[0..n): sets flags[]. */
static int get_name_set(const reader *r, const yaml_node_t *n, const char *(*name_of)(int), int count, bool *flags)
{
    if (want_kind(r, n, YAML_SEQUENCE_NODE))
        return -1;
    memset(flags, 0, (size_t)count * sizeof *flags);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *item = node(r, *it);
        const char *s;
        if (want_scalar(r, item, "a name", &s))
            return -1;
        int k = 0;
        while (k < count && strcmp(s, name_of(k)) != 0)
            k++;
        if (k == count) {
            char list[512] = "";
            for (int j = 0; j < count; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", name_of(j));
            return fail_at(r, item, "expected one of %s, got '%s'", list, s);
        }
        flags[k] = true;
    }
    return 0;
}

static const char *rail_name_i(int i) { return al_guard_rail_name((al_guard_rail)i); }
static const char *codec_name_i(int i) { return al_codec_name((al_codec)i); }
static const char *pii_name_i(int i) { return al_pii_name((al_pii_type)i); }

/* Walks a mapping: for each pair, fn(key, value) or an "unknown key" error naming keys. */
typedef int (*pair_fn)(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *user);

static int each_pair(reader *r, const yaml_node_t *n, const char *keys, pair_fn fn, void *user)
{
    if (want_kind(r, n, YAML_MAPPING_NODE))
        return -1;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        const yaml_node_t *k = node(r, pr->key), *v = node(r, pr->value);
        const char *key;
        if (want_scalar(r, k, "a key", &key))
            return -1;
        int rc = fn(r, key, k, v, user);
        if (rc == 1)
            return fail_at(r, k, "expected one of %s, got unknown key '%s'", keys, key);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- sections ---- */

static int on_rails(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    if (!strcmp(key, "input"))
        return get_name_set(r, v, rail_name_i, AL_RAIL_COUNT, r->p->input_rails);
    if (!strcmp(key, "output"))
        return get_name_set(r, v, rail_name_i, AL_RAIL_COUNT, r->p->output_rails);
    return 1;
}

static int on_decode(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    double x;
    if (!strcmp(key, "codecs"))
        return get_name_set(r, v, codec_name_i, AL_CODEC_COUNT, r->p->codecs);
    if (!strcmp(key, "max_depth")) {
        if (get_number(r, v, 0, 4, true, &x))
            return -1;
        r->p->decode_max_depth = (int)x;
        return 0;
    }
    if (!strcmp(key, "min_encoded_length")) {
        if (get_number(r, v, 8, 4096, true, &x))
            return -1;
        r->p->min_encoded_len = (size_t)x;
        return 0;
    }
    return 1;
}

static void free_patterns(al_guard_pattern *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].regex);
        free_strings(v[i].triggers, v[i].n_triggers);
    }
    free(v);
}

static int on_pattern(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    al_guard_pattern *pt = u;
    if (!strcmp(key, "name"))
        return get_string(r, v, &pt->name);
    if (!strcmp(key, "regex"))
        return get_string(r, v, &pt->regex);
    if (!strcmp(key, "weight"))
        return get_float(r, v, 0, 1, &pt->weight);
    if (!strcmp(key, "triggers"))
        return get_strings(r, v, &pt->triggers, &pt->n_triggers);
    return 1;
}

static int get_patterns(reader *r, const yaml_node_t *n, al_guard_pattern **out, int *count)
{
    if (want_kind(r, n, YAML_SEQUENCE_NODE))
        return -1;
    int len = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    al_guard_pattern *v = calloc((size_t)len + 1, sizeof *v);
    if (!v)
        return al_fail("out of memory");
    for (int i = 0; i < len; i++) {
        const yaml_node_t *item = node(r, n->data.sequence.items.start[i]);
        v[i].weight = 1;
        v[i].line = (int)item->start_mark.line + 1;
        v[i].column = (int)item->start_mark.column + 1;
        if (each_pair(r, item, "name, regex, weight, triggers", on_pattern, &v[i])) {
            free_patterns(v, len);
            return -1;
        }
        if (!v[i].regex) {
            free_patterns(v, len);
            return fail_at(r, item, "expected a 'regex' key in the pattern");
        }
        if (!v[i].name && !(v[i].name = strdup(v[i].regex))) {
            free_patterns(v, len);
            return al_fail("out of memory");
        }
    }
    free_patterns(*out, *count);
    *out = v;
    *count = len;
    return 0;
}

static int on_injection(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    if (strcmp(key, "patterns"))
        return 1;
    return u ? get_patterns(r, v, &r->p->roleplay_patterns, &r->p->n_roleplay_patterns)
             : get_patterns(r, v, &r->p->injection_patterns, &r->p->n_injection_patterns);
}

static int on_pii(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    if (!strcmp(key, "types"))
        return get_name_set(r, v, pii_name_i, AL_PII_COUNT, r->p->pii_types);
    if (!strcmp(key, "redaction")) {
        const char *s;
        if (want_scalar(r, v, "mask, tag or hash", &s))
            return -1;
        if (al_redact_mode_parse(s, &r->p->redact))
            return fail_at(r, v, "expected mask, tag or hash, got '%s'", s);
        return 0;
    }
    if (!strcmp(key, "salt"))
        return get_string(r, v, &r->p->salt);
    if (!strcmp(key, "allow"))
        return get_strings(r, v, &r->p->pii_allow, &r->p->n_pii_allow);
    return 1;
}

static int on_toxicity(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    if (!strcmp(key, "lexicon"))
        return get_path(r, v, &r->p->lexicon_path);
    if (!strcmp(key, "min_severity"))
        return get_float(r, v, 0, 3, &r->p->min_severity);
    return 1;
}

static int on_constitution(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    al_guard_policy *p = r->p;
    if (!strcmp(key, "deny_terms"))
        return get_strings(r, v, &p->deny_terms, &p->n_deny_terms);
    if (!strcmp(key, "deny_patterns"))
        return get_patterns(r, v, &p->deny_patterns, &p->n_deny_patterns);
    if (!strcmp(key, "escalation_phrases"))
        return get_strings(r, v, &p->escalation_phrases, &p->n_escalation_phrases);
    if (!strcmp(key, "escalation_when"))
        return get_strings(r, v, &p->escalation_when, &p->n_escalation_when);
    return 1;
}

static int on_harm(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    return strcmp(key, "model") ? 1 : get_path(r, v, &r->p->harm_model);
}

static int on_perplexity(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    al_guard_policy *p = r->p;
    if (!strcmp(key, "model"))
        return get_path(r, v, &p->perplexity_model);
    if (!strcmp(key, "tokenizer"))
        return get_path(r, v, &p->perplexity_tokenizer);
    if (!strcmp(key, "length_per_perplexity"))
        return get_float(r, v, 0, 1e9, &p->perplexity_lp_threshold);
    if (!strcmp(key, "prefix_suffix_perplexity"))
        return get_float(r, v, 0, 1e9, &p->perplexity_ps_threshold);
    return 1;
}

static int on_review(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    return strcmp(key, "queue") ? 1 : get_path(r, v, &r->p->review_queue);
}

/* One category's settings, applied to every category in [first, last). */
typedef struct cat_range {
    int first, last;
} cat_range;

static int on_category(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    const cat_range *cr = u;
    for (int c = cr->first; c < cr->last; c++) {
        al_guard_category_policy *cp = &r->p->cats[c];
        if (!strcmp(key, "action")) {
            const char *s;
            if (want_scalar(r, v, "an action", &s))
                return -1;
            int a = 0;
            while (a < 4 && strcmp(s, action_names[a]))
                a++;
            if (a == 4)
                return fail_at(r, v, "expected one of allow, redact, escalate, block, got '%s'", s);
            cp->action = (al_guard_action)a;
        } else if (!strcmp(key, "threshold")) {
            if (get_float(r, v, 0, 1, &cp->threshold))
                return -1;
        } else if (!strcmp(key, "reply")) {
            if (get_string(r, v, &cp->reply))
                return -1;
        } else {
            return 1;
        }
    }
    return 0;
}

/* "default" first, then "hazards", then single categories, whatever the file's order. */
static int on_categories(reader *r, const yaml_node_t *n)
{
    if (want_kind(r, n, YAML_MAPPING_NODE))
        return -1;
    for (int pass = 0; pass < 3; pass++)
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
            const yaml_node_t *k = node(r, pr->key), *v = node(r, pr->value);
            const char *key;
            if (want_scalar(r, k, "a category name", &key))
                return -1;
            cat_range cr;
            int c = 0;
            if (!strcmp(key, "default"))
                cr = (cat_range){pass == 0 ? 0 : -1, AL_GCAT_COUNT};
            else if (!strcmp(key, "hazards"))
                cr = (cat_range){pass == 1 ? AL_GCAT_HAZARD : -1, AL_GCAT_COUNT};
            else if (al_guard_category_parse(key, &c) == 0)
                cr = (cat_range){pass == 2 ? c : -1, c + 1};
            else
                return fail_at(r, k, "expected a category (default, hazards, invalid_input, injection, "
                                     "roleplay, obfuscation, pii, toxicity, deny_term, missing_escalation, "
                                     "perplexity or a hazard name), got '%s'", key);
            if (cr.first < 0)
                continue;
            if (each_pair(r, v, "action, threshold, reply", on_category, &cr))
                return -1;
        }
    return 0;
}

static int on_top(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *u)
{
    al_guard_policy *p = r->p;
    double x;
    if (!strcmp(key, "version")) {
        if (get_number(r, v, 1, 1, true, &x))
            return -1;
        return 0;
    }
    if (!strcmp(key, "max_input_bytes")) {
        if (get_number(r, v, 1, 64 << 20, true, &x))
            return -1;
        p->max_input_bytes = (size_t)x;
        return 0;
    }
    if (!strcmp(key, "builtin_patterns"))
        return get_bool(r, v, &p->builtin_patterns);
    if (!strcmp(key, "rails"))
        return each_pair(r, v, "input, output", on_rails, NULL);
    if (!strcmp(key, "decode"))
        return each_pair(r, v, "codecs, max_depth, min_encoded_length", on_decode, NULL);
    if (!strcmp(key, "injection"))
        return each_pair(r, v, "patterns", on_injection, NULL);
    if (!strcmp(key, "roleplay"))
        return each_pair(r, v, "patterns", on_injection, (void *)1);
    if (!strcmp(key, "pii"))
        return each_pair(r, v, "types, redaction, salt, allow", on_pii, NULL);
    if (!strcmp(key, "toxicity"))
        return each_pair(r, v, "lexicon, min_severity", on_toxicity, NULL);
    if (!strcmp(key, "constitution"))
        return each_pair(r, v, "deny_terms, deny_patterns, escalation_phrases, escalation_when",
                         on_constitution, NULL);
    if (!strcmp(key, "harm"))
        return each_pair(r, v, "model", on_harm, NULL);
    if (!strcmp(key, "perplexity"))
        return each_pair(r, v, "model, tokenizer, length_per_perplexity, prefix_suffix_perplexity",
                         on_perplexity, NULL);
    if (!strcmp(key, "review"))
        return each_pair(r, v, "queue", on_review, NULL);
    if (!strcmp(key, "categories"))
        return on_categories(r, v);
    return 1;
}

static const char top_keys[] = "version, max_input_bytes, builtin_patterns, rails, decode, injection, "
                               "roleplay, pii, toxicity, constitution, harm, perplexity, review, categories";

/* Parses yaml onto p (which holds the policy to overlay). */
static int overlay(const char *yaml, size_t n, const char *origin, const char *dir, al_guard_policy *p)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return al_fail("out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, n);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = al_fail("%s:%zu:%zu: expected valid YAML: %s%s%s", origin, parser.problem_mark.line + 1,
                         parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
                         parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    reader r = {&doc, origin, dir ? strdup(dir) : NULL, p};
    if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        rc = each_pair(&r, root, top_keys, on_top, NULL);
    free(r.dir);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

extern const char guard_default_policy_yaml[];

int al_guard_policy_default(al_guard_policy *p)
{
    memset(p, 0, sizeof *p);
    p->origin = strdup("built-in");
    if (!p->origin || overlay(guard_default_policy_yaml, strlen(guard_default_policy_yaml), "built-in", NULL, p)) {
        al_guard_policy_free(p);
        return -1;
    }
    return 0;
}

int al_guard_policy_parse(const char *yaml, size_t n, const char *origin, al_guard_policy *p)
{
    if (al_guard_policy_default(p))
        return -1;
    free(p->origin);
    p->origin = strdup(origin ? origin : "policy");
    if (!p->origin || overlay(yaml, n, origin ? origin : "policy", NULL, p)) {
        al_guard_policy_free(p);
        return -1;
    }
    return 0;
}

int al_guard_policy_load(const char *path, al_guard_policy *p)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        return -1;
    if (al_guard_policy_default(p)) {
        al_buf_free(&b);
        return -1;
    }
    free(p->origin);
    p->origin = strdup(path);
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = 0;
    int rc = !p->origin || !dir ? al_fail("out of memory")
                                : overlay(b.data ? b.data : "", b.len, path, slash ? dir : NULL, p);
    free(dir);
    al_buf_free(&b);
    if (rc)
        al_guard_policy_free(p);
    return rc;
}

void al_guard_policy_free(al_guard_policy *p)
{
    free(p->origin);
    free_patterns(p->injection_patterns, p->n_injection_patterns);
    free_patterns(p->roleplay_patterns, p->n_roleplay_patterns);
    free_patterns(p->deny_patterns, p->n_deny_patterns);
    free(p->salt);
    free_strings(p->pii_allow, p->n_pii_allow);
    free(p->lexicon_path);
    free_strings(p->deny_terms, p->n_deny_terms);
    free_strings(p->escalation_phrases, p->n_escalation_phrases);
    free_strings(p->escalation_when, p->n_escalation_when);
    free(p->harm_model);
    free(p->perplexity_model);
    free(p->perplexity_tokenizer);
    free(p->review_queue);
    for (int c = 0; c < AL_GCAT_COUNT; c++)
        free(p->cats[c].reply);
    memset(p, 0, sizeof *p);
}

/* The constitution file: YAML read with libyaml's document API, every error located.
 *
 *   version: 1
 *   name: support
 *   no_issue: ...        # optional: a critique that begins so leaves the answer as it is
 *   principles:
 *     - name: no_internal_details
 *       critique: ...
 *       revision: ...
 *       question: ...
 *   examples:            # optional
 *     - principle: no_internal_details
 *       prompt: ...
 *       response: ...
 *       critique: ...
 *       revision: ... */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "align/cai.h"
#include "align/core.h"

typedef struct reader {
    yaml_document_t *doc;
    const char *origin;
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

static const char *kind_name(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* A non-empty string (after trimming) copied into *out. */
static int get_text(const reader *r, const yaml_node_t *n, const char *key, char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail_at(r, n, "'%s' must be text, got %s", key, kind_name(n));
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    while (len && (*s == ' ' || *s == '\t' || *s == '\n'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'))
        len--;
    if (len == 0)
        return fail_at(r, n, "'%s' is empty", key);
    if (*out)
        return fail_at(r, n, "'%s' given twice", key);
    if (!(*out = strndup(s, len)))
        return al_fail("out of memory");
    return 0;
}

/* The fields of one mapping: names[i] fills *slots[i]; all of the first n_required must be there. */
static int read_fields(const reader *r, const yaml_node_t *map, const char *what, const char *const *names,
                       char **const *slots, int n_fields, int n_required)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(r, map, "%s must be a mapping, got %s", what, kind_name(map));
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        const yaml_node_t *k = node(r, pr->key), *v = node(r, pr->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        int f = 0;
        while (f < n_fields && strcmp(key, names[f]))
            f++;
        if (f == n_fields) {
            char expected[256] = "";
            for (int i = 0; i < n_fields; i++)
                snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s", i ? ", " : "",
                         names[i]);
            return fail_at(r, k, "unknown key '%s' in %s (expected %s)", key, what, expected);
        }
        if (get_text(r, v, key, slots[f]))
            return -1;
    }
    for (int f = 0; f < n_required; f++)
        if (!*slots[f])
            return fail_at(r, map, "%s lacks '%s'", what, names[f]);
    return 0;
}

static int read_principles(const reader *r, const yaml_node_t *seq, al_constitution *c)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail_at(r, seq, "'principles' must be a list, got %s", kind_name(seq));
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0)
        return fail_at(r, seq, "'principles' is empty: a constitution needs at least one");
    if (!(c->principles = calloc((size_t)n, sizeof *c->principles)))
        return al_fail("out of memory");
    static const char *const names[] = {"name", "critique", "revision", "question"};
    for (int i = 0; i < n; i++) {
        const yaml_node_t *item = node(r, seq->data.sequence.items.start[i]);
        al_principle *p = &c->principles[i];
        c->n_principles = i + 1;
        char **const slots[] = {&p->name, &p->critique, &p->revision, &p->question};
        if (read_fields(r, item, "a principle", names, slots, 4, 4))
            return -1;
        for (int k = 0; k < i; k++)
            if (!strcmp(c->principles[k].name, p->name))
                return fail_at(r, item, "principle '%s' is named twice", p->name);
    }
    return 0;
}

static int read_examples(const reader *r, const yaml_node_t *seq, al_constitution *c)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail_at(r, seq, "'examples' must be a list, got %s", kind_name(seq));
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n && !(c->examples = calloc((size_t)n, sizeof *c->examples)))
        return al_fail("out of memory");
    static const char *const names[] = {"principle", "prompt", "response", "critique", "revision"};
    for (int i = 0; i < n; i++) {
        const yaml_node_t *item = node(r, seq->data.sequence.items.start[i]);
        al_cai_example *x = &c->examples[i];
        c->n_examples = i + 1;
        char **const slots[] = {&x->principle, &x->prompt, &x->response, &x->critique, &x->revision};
        if (read_fields(r, item, "an example", names, slots, 5, 5))
            return -1;
    }
    return 0;
}

int al_constitution_parse(const char *yaml, size_t n, const char *origin, al_constitution *out)
{
    memset(out, 0, sizeof *out);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return al_fail("%s: cannot start the YAML parser", origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, n);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = al_fail("%s:%zu:%zu: YAML: %s", origin, parser.problem_mark.line + 1,
                         parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_parser_delete(&parser);
    reader r = {&doc, origin};
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    const yaml_node_t *principles = NULL, *examples = NULL;
    bool have_version = false;
    if (!root) {
        rc = al_fail("%s: empty file: expected a constitution (version, name, principles)", origin);
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = fail_at(&r, root, "expected a mapping with version, name and principles, got %s", kind_name(root));
    }
    for (yaml_node_pair_t *pr = rc ? NULL : root->data.mapping.pairs.start; pr && pr < root->data.mapping.pairs.top;
         pr++) {
        const yaml_node_t *k = node(&r, pr->key), *v = node(&r, pr->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        if (!strcmp(key, "version")) {
            if (v->type != YAML_SCALAR_NODE || strcmp((const char *)v->data.scalar.value, "1"))
                rc = fail_at(&r, v, "version must be 1");
            have_version = true;
        } else if (!strcmp(key, "name")) {
            rc = get_text(&r, v, "name", &out->name);
        } else if (!strcmp(key, "principles")) {
            principles = v;
        } else if (!strcmp(key, "examples")) {
            examples = v;
        } else if (!strcmp(key, "no_issue")) {
            rc = get_text(&r, v, "no_issue", &out->no_issue);
        } else {
            rc = fail_at(&r, k, "unknown key '%s' (expected version, name, no_issue, principles, examples)", key);
        }
        if (rc)
            break;
    }
    if (rc == 0 && !have_version)
        rc = fail_at(&r, root, "the constitution lacks 'version: 1'");
    if (rc == 0 && !out->name)
        rc = fail_at(&r, root, "the constitution lacks 'name'");
    if (rc == 0 && !principles)
        rc = fail_at(&r, root, "the constitution lacks 'principles'");
    if (rc == 0)
        rc = read_principles(&r, principles, out);
    if (rc == 0 && examples)
        rc = read_examples(&r, examples, out);
    for (int i = 0; rc == 0 && i < out->n_examples; i++)
        if (al_constitution_find(out, out->examples[i].principle) < 0)
            rc = al_fail("%s: example %d names principle '%s', which the constitution does not have", origin, i + 1,
                         out->examples[i].principle);
    yaml_document_delete(&doc);
    if (rc)
        al_constitution_free(out);
    return rc ? -1 : 0;
}

int al_constitution_load(const char *path, al_constitution *out)
{
    al_buf b = {0};
    memset(out, 0, sizeof *out);
    if (al_read_file(path, &b))
        return -1;
    int rc = al_constitution_parse(b.data, b.len, path, out);
    al_buf_free(&b);
    return rc;
}

int al_constitution_find(const al_constitution *c, const char *principle)
{
    for (int i = 0; principle && i < c->n_principles; i++)
        if (!strcmp(c->principles[i].name, principle))
            return i;
    return -1;
}

void al_constitution_free(al_constitution *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_principles; i++) {
        al_principle *p = &c->principles[i];
        free(p->name), free(p->critique), free(p->revision), free(p->question);
    }
    for (int i = 0; i < c->n_examples; i++) {
        al_cai_example *x = &c->examples[i];
        free(x->principle), free(x->prompt), free(x->response), free(x->critique), free(x->revision);
    }
    free(c->principles);
    free(c->examples);
    free(c->name);
    free(c->no_issue);
    memset(c, 0, sizeof *c);
}

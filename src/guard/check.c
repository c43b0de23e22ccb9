/* The decision engine: runs a direction's rails over a text and turns what they found into
 * one decision.
 *
 * A check goes: refuse what cannot be read (too large, NUL bytes, invalid UTF-8); fold
 * Unicode disguises to ASCII with a map back to the original offsets; split the folded
 * text into words once; run the pattern, lexicon and deny-list rails over the words;
 * decode base64 and hex runs that hide readable text and check those again, as deep as
 * the policy allows; scan the original text for PII; ask the section-B models.  Then
 * each category gets a score, the categories at or over their thresholds trigger, and
 * the most severe action among them wins (block > escalate > redact > allow). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"

struct al_guard {
    al_guard_policy pol; /* a copy: the strings the checks read are the guard's own */
    guard_patterns *patterns;
    al_lexicon *lexicon;
    guard_phrases deny;
    al_harm_model *harm;
    al_ppl_guard *ppl;
    uint64_t interesting[GUARD_FILTER_WORDS]; /* the union of the word sets' filters: guard_split_words picks by it */
};

bool al_guard_thread_safe(const al_guard *g) { return !g->ppl; }

static void add_filter(al_guard *g, const guard_wordset *s)
{
    for (int i = 0; i < GUARD_FILTER_WORDS; i++)
        g->interesting[i] |= s->filter[i];
}

/* ---- opening ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static char **dup_strings(char *const *v, int n)
{
    char **c = calloc((size_t)n + 1, sizeof *c);
    for (int i = 0; c && i < n; i++)
        if (!(c[i] = strdup(v[i]))) {
            for (int j = 0; j < i; j++)
                free(c[j]);
            free(c);
            return NULL;
        }
    return c;
}

/* The built-in model, or an error that says how to get one: a guard whose harm rail
 * cannot load must not open and quietly allow everything. */
static al_harm_model *load_default_harm_model(const char *origin)
{
    char *path = al_harm_default_model_path();
    if (!path)
        return NULL;
    al_harm_model *m = NULL;
    if (!al_file_exists(path)) {
        al_fail("%s: the harm rail's default model %s is missing; build it with `cmake --build build` or "
                "`align guard train --default`, give one with harm.model, or leave harm out of rails.input",
                origin, path);
    } else if (!(m = al_harm_load(path))) {
        char *why = strdup(al_errmsg());
        al_fail("%s: the harm rail's default model is unusable (%s); rebuild it with `align guard train --default`",
                origin, why ? why : "out of memory");
        free(why);
    }
    free(path);
    return m;
}

al_guard *al_guard_open(const al_guard_policy *p)
{
    al_guard *g = calloc(1, sizeof *g);
    if (!g) {
        al_fail("out of memory");
        return NULL;
    }
    /* keep the scalars; own the strings the checks use; drop the rest */
    g->pol = *p;
    al_guard_policy *q = &g->pol;
    q->origin = dup_or_null(p->origin);
    q->salt = dup_or_null(p->salt);
    q->escalation_phrases = dup_strings(p->escalation_phrases, p->n_escalation_phrases);
    q->escalation_when = dup_strings(p->escalation_when, p->n_escalation_when);
    q->pii_allow = dup_strings(p->pii_allow, p->n_pii_allow);
    q->injection_patterns = q->roleplay_patterns = q->deny_patterns = NULL;
    q->n_injection_patterns = q->n_roleplay_patterns = q->n_deny_patterns = 0;
    q->deny_terms = NULL;
    q->n_deny_terms = 0;
    q->lexicon_path = dup_or_null(p->lexicon_path);
    q->harm_model = dup_or_null(p->harm_model);
    q->perplexity_model = dup_or_null(p->perplexity_model);
    q->perplexity_tokenizer = dup_or_null(p->perplexity_tokenizer);
    q->review_queue = dup_or_null(p->review_queue);
    bool oom = !q->escalation_phrases || !q->escalation_when || !q->pii_allow;
    for (int c = 0; c < AL_GCAT_COUNT; c++) {
        q->cats[c].reply = dup_or_null(p->cats[c].reply);
        oom |= p->cats[c].reply && !q->cats[c].reply;
    }
    if (oom) {
        al_fail("out of memory");
        goto fail;
    }
    if (!(g->patterns = guard_patterns_new(p)))
        goto fail;
    bool tox = p->input_rails[AL_RAIL_TOXICITY] || p->output_rails[AL_RAIL_TOXICITY];
    if (tox && !(g->lexicon = p->lexicon_path ? al_lexicon_load(p->lexicon_path) : al_lexicon_builtin()))
        goto fail;
    for (int i = 0; i < p->n_deny_terms; i++)
        if (guard_phrases_add(&g->deny, p->deny_terms[i], 1.0f))
            goto fail;
    if (guard_phrases_build(&g->deny))
        goto fail;
    add_filter(g, guard_patterns_words(g->patterns));
    add_filter(g, &g->deny.first);
    if (g->lexicon)
        add_filter(g, &guard_lexicon_phrases(g->lexicon)->first);
    if (p->input_rails[AL_RAIL_HARM] || p->output_rails[AL_RAIL_HARM]) {
        if (p->harm_model) {
            if (!(g->harm = al_harm_load(p->harm_model)))
                goto fail;
        } else if (!(g->harm = load_default_harm_model(q->origin))) {
            goto fail;
        }
    }
    if (p->input_rails[AL_RAIL_PERPLEXITY] || p->output_rails[AL_RAIL_PERPLEXITY]) {
        if (!p->perplexity_model) {
            al_fail("%s: the perplexity rail needs perplexity.model", q->origin);
            goto fail;
        }
        if (!(g->ppl = al_ppl_guard_open(p->perplexity_model, p->perplexity_tokenizer)))
            goto fail;
    }
    return g;
fail:
    al_guard_close(g);
    return NULL;
}

void al_guard_close(al_guard *g)
{
    if (!g)
        return;
    guard_patterns_free(g->patterns);
    al_lexicon_free(g->lexicon);
    guard_phrases_free(&g->deny);
    if (g->harm)
        al_harm_free(g->harm);
    if (g->ppl)
        al_ppl_guard_close(g->ppl);
    al_guard_policy_free(&g->pol);
    free(g);
}

/* ---- scanning ---- */

/* Which disguise the original bytes [s, e) wore, for a hit found in the folded text. */
static const char *fold_kind(const char *text, size_t s, size_t e)
{
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = s; i < e;) {
        uint32_t cp;
        int len = guard_utf8_next(t + i, e - i, &cp);
        i += (size_t)len;
        if (cp < 0x80)
            continue;
        if (cp >= 0xE0000 && cp <= 0xE007F)
            return "tags";
        if (guard_is_zero_width(cp))
            return "zero_width";
        if ((cp >= 0xFF01 && cp <= 0xFF5E) || cp == 0x3000)
            return "fullwidth";
        if (guard_confusable_ascii(cp))
            return "confusables";
    }
    return NULL;
}

/* Eight bytes at a time: most text is ASCII and needs neither validation nor a fold. */
static bool has_non_ascii(const char *s, size_t n)
{
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) != 0;
}

typedef struct scan_ctx {
    const al_guard *g;
    const bool *rails;
    guard_hits *hits;
} scan_ctx;

static int scan_text(scan_ctx *c, const char *text, size_t n, int depth, const char *via);

static int obfuscation(guard_hits *h, const guard_fold_stats *st)
{
    int rc = 0;
    if (st->tags)
        rc |= guard_hits_add(h, AL_GCAT_OBFUSCATION, 0, 0, 0.9f, NULL, NULL, "unicode_tags");
    if (st->zero_width_in_words)
        rc |= guard_hits_add(h, AL_GCAT_OBFUSCATION, 0, 0, 0.6f, NULL, NULL, "zero_width_chars");
    if (st->homoglyph_words)
        rc |= guard_hits_add(h, AL_GCAT_OBFUSCATION, 0, 0, 0.6f, NULL, NULL, "homoglyphs");
    if (st->fullwidth >= 4)
        rc |= guard_hits_add(h, AL_GCAT_OBFUSCATION, 0, 0, 0.3f, NULL, NULL, "fullwidth_forms");
    return rc ? -1 : 0;
}

/* Base64 and hex runs that decode to readable text: checked again as text of their own,
 * and every hit inside is reported over the whole run. */
static int rescan_encoded(scan_ctx *c, const char *text, size_t n, int depth)
{
    const al_guard_policy *p = &c->g->pol;
    if (depth >= p->decode_max_depth)
        return 0;
    guard_encoded *runs;
    int n_runs;
    if (guard_find_encoded(text, n, p->min_encoded_len, p->codecs, &runs, &n_runs))
        return -1;
    int rc = 0;
    al_buf dec = {0};
    for (int i = 0; i < n_runs && rc == 0; i++) {
        dec.len = 0;
        const guard_encoded *r = &runs[i];
        if (al_decode(r->codec, text + r->start, r->end - r->start, &dec) || !guard_readable(dec.data, dec.len))
            continue;
        const char *name = al_codec_name(r->codec);
        int h0 = c->hits->n;
        rc = scan_text(c, dec.data, dec.len, depth + 1, name);
        for (int k = h0; k < c->hits->n && rc == 0; k++) {
            c->hits->v[k].start = r->start;
            c->hits->v[k].end = r->end;
            if (c->hits->v[k].label)
                c->hits->v[k].via = name;
        }
        if (rc == 0)
            rc = guard_hits_add(c->hits, AL_GCAT_OBFUSCATION, r->start, r->end, 0.4f, NULL, name, "encoded_text");
    }
    al_buf_free(&dec);
    free(runs);
    return rc;
}

static int harm_rail(scan_ctx *c, const char *text, size_t n)
{
    al_harm_scores hs;
    if (al_harm_score(c->g->harm, text, n, &hs))
        return -1;
    /* the overall head gates: under its threshold the hazard heads are damped by it */
    float gate = hs.harmful >= al_harm_threshold(c->g->harm) ? 1.0f : hs.harmful;
    int top = 0;
    for (int h = 1; h < AL_HAZ_COUNT; h++)
        if (hs.hazard[h] > hs.hazard[top])
            top = h;
    for (int h = 0; h < AL_HAZ_COUNT; h++) {
        float s = hs.hazard[h] * gate;
        if (h == top && gate == 1.0f && s < hs.harmful)
            s = hs.harmful; /* a harmful text is at least its likeliest hazard */
        if (s > 0.05f && guard_hits_add(c->hits, AL_GCAT_HAZARD + h, 0, 0, s, NULL, NULL, "harm_classifier"))
            return -1;
    }
    return 0;
}

static int perplexity_rail(scan_ctx *c, const char *text, size_t n)
{
    char *z = strndup(text, n);
    if (!z)
        return al_fail("out of memory");
    al_ppl_opts o = al_ppl_defaults();
    o.lp_threshold = c->g->pol.perplexity_lp_threshold;
    o.ps_threshold = c->g->pol.perplexity_ps_threshold;
    al_ppl_result r;
    int rc = al_ppl_check(c->g->ppl, z, &o, &r);
    free(z);
    if (rc)
        return -1;
    if (r.lp_jailbreak)
        rc |= guard_hits_add(c->hits, AL_GCAT_PERPLEXITY, 0, 0, 1, NULL, NULL, "length_per_perplexity");
    if (r.ps_jailbreak)
        rc |= guard_hits_add(c->hits, AL_GCAT_PERPLEXITY, 0, 0, 1, NULL, NULL, "prefix_suffix_perplexity");
    if (!r.jailbreak)
        rc |= guard_hits_add(c->hits, AL_GCAT_PERPLEXITY, 0, 0, 0, NULL, NULL, NULL);
    return rc ? -1 : 0;
}

static bool pii_allowed(const al_guard_policy *p, const char *s, size_t n)
{
    for (int i = 0; i < p->n_pii_allow; i++)
        if (strlen(p->pii_allow[i]) == n && strncasecmp(p->pii_allow[i], s, n) == 0)
            return true;
    return false;
}

static int scan_text(scan_ctx *c, const char *text, size_t n, int depth, const char *via)
{
    const al_guard *g = c->g;
    const al_guard_policy *p = &g->pol;
    const bool *rails = c->rails;
    bool decode = rails[AL_RAIL_DECODE];
    int h0 = c->hits->n, rc = 0;
    /* the fold */
    al_buf folded = {0};
    uint32_t *map = NULL;
    const char *t = text;
    size_t tn = n;
    if (decode && has_non_ascii(text, n) && guard_needs_fold(text, n)) {
        guard_fold_stats st;
        if (guard_fold(text, n, &folded, &map, &st) || obfuscation(c->hits, &st)) {
            al_buf_free(&folded);
            free(map);
            return -1;
        }
        t = folded.data, tn = folded.len;
    }
    guard_words w;
    rc = guard_split_words(t, tn, g->interesting, &w);
    if (rc == 0)
        rc = guard_patterns_scan(g->patterns, rails, decode ? p->codecs : NULL, t, tn, &w, via, c->hits);
    if (rc == 0 && rails[AL_RAIL_TOXICITY])
        rc = guard_phrases_scan(guard_lexicon_phrases(g->lexicon), t, &w, p->codecs[AL_CODEC_LEETSPEAK],
                                p->min_severity / 3.0f, AL_GCAT_TOXICITY, "toxic_term", c->hits);
    if (rc == 0 && rails[AL_RAIL_CONSTITUTION])
        rc = guard_phrases_scan(&g->deny, t, &w, false, 0, AL_GCAT_DENY_TERM, "deny_term", c->hits);
    guard_words_free(&w);
    if (rc == 0 && decode)
        rc = rescan_encoded(c, t, tn, depth);
    if (rc == 0 && rails[AL_RAIL_HARM] && g->harm)
        rc = harm_rail(c, t, tn);
    if (rc == 0 && depth == 0 && rails[AL_RAIL_PERPLEXITY] && g->ppl)
        rc = perplexity_rail(c, t, tn);
    /* back to the original offsets, naming the disguise a hit was found through */
    if (map) {
        for (int k = h0; k < c->hits->n; k++) {
            guard_hit *h = &c->hits->v[k];
            if (!h->label)
                continue;
            h->start = map[h->start];
            h->end = map[h->end];
            if (!h->via)
                h->via = fold_kind(text, h->start, h->end);
        }
    }
    al_buf_free(&folded);
    free(map);
    if (rc == 0 && rails[AL_RAIL_PII]) {
        al_pii_match *m;
        int nm;
        rc = al_pii_scan(text, n, p->pii_types, &m, &nm);
        for (int k = 0; rc == 0 && k < nm; k++)
            if (!pii_allowed(p, text + m[k].start, m[k].end - m[k].start))
                rc = guard_hits_add(c->hits, AL_GCAT_PII, m[k].start, m[k].end, 1, al_pii_name(m[k].type), via,
                                "pii_found");
        if (rc == 0)
            free(m);
    }
    return rc;
}

/* ---- the decision ---- */

static void add_reason(al_guard_decision *d, const char *r)
{
    if (!r)
        return;
    for (int i = 0; i < d->n_reasons; i++)
        if (d->reasons[i] == r || strcmp(d->reasons[i], r) == 0)
            return;
    if (d->n_reasons < (int)(sizeof d->reasons / sizeof *d->reasons))
        d->reasons[d->n_reasons++] = r;
}

/* A span's label, cut to fit (snprintf's format parsing showed up in profiles). */
static void copy_label(char dst[48], const char *src)
{
    size_t n = strnlen(src, 47);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static bool combines(int cat)
{
    return cat == AL_GCAT_INJECTION || cat == AL_GCAT_ROLEPLAY || cat == AL_GCAT_OBFUSCATION;
}

static int by_start(const void *a, const void *b)
{
    const al_guard_span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int redact_text(const al_guard *g, const char *text, size_t n, al_guard_decision *d)
{
    al_redact_span *rs = malloc(((size_t)d->n_spans + 1) * sizeof *rs);
    if (!rs)
        return al_fail("out of memory");
    int nr = 0;
    for (int i = 0; i < d->n_spans; i++) {
        const al_guard_span *s = &d->spans[i];
        if (!d->triggered[s->category] || g->pol.cats[s->category].action != AL_GUARD_REDACT)
            continue;
        al_pii_type t;
        const char *tag = s->category == AL_GCAT_PII && al_pii_parse(s->label, &t) == 0 ? al_pii_tag(t) : "REDACTED";
        if (nr && s->start < rs[nr - 1].end) { /* overlapping: one replacement covers both */
            if (s->end > rs[nr - 1].end)
                rs[nr - 1].end = s->end;
            continue;
        }
        rs[nr++] = (al_redact_span){s->start, s->end, tag};
    }
    al_buf out = {0};
    int rc = al_redact(text, n, rs, nr, g->pol.redact, g->pol.salt, &out);
    free(rs);
    if (rc) {
        al_buf_free(&out);
        return -1;
    }
    if (!out.data && al_buf_append(&out, "", 0))
        return -1;
    d->redacted = out.data;
    d->redacted_len = out.len;
    return 0;
}

static int decide(const al_guard *g, const bool *rails, const guard_hits *hits, const char *text, size_t n,
                  al_guard_decision *d)
{
    const al_guard_policy *p = &g->pol;
    /* which categories ran: those of the rails that were on */
    static const int rail_cats[AL_RAIL_COUNT][3] = {
        {AL_GCAT_OBFUSCATION, -1, -1}, {AL_GCAT_INJECTION, -1, -1}, {AL_GCAT_ROLEPLAY, -1, -1},
        {AL_GCAT_PII, -1, -1}, {AL_GCAT_TOXICITY, -1, -1}, {AL_GCAT_DENY_TERM, AL_GCAT_MISSING_ESCALATION, -1},
        {-1, -1, -1}, {AL_GCAT_PERPLEXITY, -1, -1},
    };
    d->ran[AL_GCAT_INVALID_INPUT] = true;
    for (int r = 0; r < AL_RAIL_COUNT; r++)
        for (int k = 0; rails[r] && k < 3 && rail_cats[r][k] >= 0; k++)
            d->ran[rail_cats[r][k]] = true;
    if (rails[AL_RAIL_HARM] && g->harm)
        for (int h = 0; h < AL_HAZ_COUNT; h++)
            d->ran[AL_GCAT_HAZARD + h] = true;
    /* scores: noisy-or over distinct labels for the pattern categories, max otherwise */
    float keep[AL_GCAT_COUNT];
    for (int c = 0; c < AL_GCAT_COUNT; c++)
        keep[c] = 1.0f;
    for (int i = 0; i < hits->n; i++) {
        const guard_hit *h = &hits->v[i];
        if (combines(h->category)) {
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = hits->v[j].category == h->category && hits->v[j].label == h->label &&
                       hits->v[j].reason == h->reason;
            if (!seen)
                keep[h->category] *= 1.0f - h->score;
        } else if (h->score > d->scores[h->category]) {
            d->scores[h->category] = h->score;
        }
    }
    for (int c = 0; c < AL_GCAT_COUNT; c++)
        if (combines(c))
            d->scores[c] = 1.0f - keep[c];
    /* triggers and the action */
    d->action = AL_GUARD_ALLOW;
    d->category = -1;
    for (int c = 0; c < AL_GCAT_COUNT; c++) {
        d->triggered[c] = d->ran[c] && d->scores[c] > 0 && d->scores[c] >= p->cats[c].threshold;
        if (!d->triggered[c])
            continue;
        al_guard_action a = p->cats[c].action;
        if (d->category < 0 || a > d->action || (a == d->action && d->scores[c] > d->scores[d->category])) {
            d->action = a;
            d->category = c;
        }
    }
    for (int i = 0; i < hits->n; i++)
        if (d->triggered[hits->v[i].category])
            add_reason(d, hits->v[i].reason);
    /* spans: every located hit, triggered or not, in text order */
    for (int i = 0; i < hits->n; i++) {
        const guard_hit *h = &hits->v[i];
        if (!h->label)
            continue;
        if (d->n_spans == d->cap_spans) {
            int cap = d->cap_spans ? d->cap_spans * 2 : 8;
            al_guard_span *v = realloc(d->spans, (size_t)cap * sizeof *v);
            if (!v)
                return al_fail("out of memory");
            d->spans = v;
            d->cap_spans = cap;
        }
        al_guard_span *s = &d->spans[d->n_spans++];
        *s = (al_guard_span){h->start, h->end, h->category, "", h->via, h->score};
        copy_label(s->label, h->label);
    }
    if (d->n_spans > 1)
        qsort(d->spans, (size_t)d->n_spans, sizeof *d->spans, by_start);
    if ((d->action == AL_GUARD_BLOCK || d->action == AL_GUARD_ESCALATE) && p->cats[d->category].reply &&
        !(d->reply = strdup(p->cats[d->category].reply)))
        return al_fail("out of memory");
    if (d->action == AL_GUARD_REDACT)
        return redact_text(g, text, n, d);
    return 0;
}

/* The invalid_input category's decision; at < 0: no span. */
static int invalid_decision(const al_guard *g, const char *reason, long at, al_guard_decision *d)
{
    memset(d, 0, sizeof *d);
    d->ran[AL_GCAT_INVALID_INPUT] = true;
    d->scores[AL_GCAT_INVALID_INPUT] = 1;
    const al_guard_category_policy *cp = &g->pol.cats[AL_GCAT_INVALID_INPUT];
    d->triggered[AL_GCAT_INVALID_INPUT] = cp->threshold <= 1;
    d->action = d->triggered[AL_GCAT_INVALID_INPUT] ? cp->action : AL_GUARD_ALLOW;
    if (d->action == AL_GUARD_REDACT) /* nothing readable to keep */
        d->action = AL_GUARD_BLOCK;
    d->category = AL_GCAT_INVALID_INPUT;
    add_reason(d, reason);
    if ((d->action == AL_GUARD_BLOCK || d->action == AL_GUARD_ESCALATE) && cp->reply &&
        !(d->reply = strdup(cp->reply)))
        return al_fail("out of memory");
    if (at >= 0) {
        if (!(d->spans = calloc(1, sizeof *d->spans)))
            return al_fail("out of memory");
        d->n_spans = d->cap_spans = 1;
        d->spans[0] = (al_guard_span){(size_t)at, (size_t)at + 1, AL_GCAT_INVALID_INPUT, "", NULL, 1};
        copy_label(d->spans[0].label, reason);
    }
    return 0;
}

int al_guard_decide_invalid(const al_guard *g, const char *reason, al_guard_decision *out)
{
    int rc = invalid_decision(g, reason, -1, out);
    if (rc)
        al_guard_decision_free(out);
    return rc;
}

/* Oversize, NUL bytes, invalid UTF-8: decided without reading further (returns 1). */
static int unreadable(const al_guard *g, const char *text, size_t n, al_guard_decision *d)
{
    const char *nul = n ? memchr(text, 0, n) : NULL;
    size_t bad;
    int rc;
    if (n > g->pol.max_input_bytes)
        rc = invalid_decision(g, "input_too_large", -1, d);
    else if (nul)
        rc = invalid_decision(g, "nul_byte", nul - text, d);
    else if (has_non_ascii(text, n) && (bad = al_utf8_invalid_at(text, n)) != (size_t)-1)
        rc = invalid_decision(g, "invalid_utf8", (long)bad, d);
    else
        return 0;
    return rc ? -1 : 1;
}

static bool contains_ci(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0)
        return true;
    for (size_t i = 0; i + m <= n; i++)
        if ((hay[i] | 32) == (needle[0] | 32) && strncasecmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* The constitution's required escalation path: when the conversation is about one of the
 * escalation_when terms (or always, with none), the answer must offer a way to a person. */
static int escalation_rule(const al_guard *g, const char *prompt, size_t plen, const char *answer, size_t n,
                           guard_hits *hits)
{
    const al_guard_policy *p = &g->pol;
    if (p->n_escalation_phrases == 0)
        return 0;
    const char *why = NULL;
    for (int i = 0; i < p->n_escalation_when && !why; i++)
        if ((prompt && contains_ci(prompt, plen, p->escalation_when[i])) || contains_ci(answer, n, p->escalation_when[i]))
            why = p->escalation_when[i];
    if (p->n_escalation_when && !why)
        return 0;
    for (int i = 0; i < p->n_escalation_phrases; i++)
        if (contains_ci(answer, n, p->escalation_phrases[i]))
            return 0;
    return guard_hits_add(hits, AL_GCAT_MISSING_ESCALATION, 0, 0, 1, NULL, NULL, "missing_escalation_path");
}

static int check(const al_guard *g, const bool *rails, const char *prompt, size_t plen, const char *text, size_t n,
                 bool output, al_guard_decision *d)
{
    memset(d, 0, sizeof *d);
    d->category = -1;
    if (!text)
        text = "", n = 0;
    int bad = unreadable(g, text, n, d);
    if (bad) {
        if (bad < 0)
            al_guard_decision_free(d);
        return bad < 0 ? -1 : 0;
    }
    guard_hits hits = {0};
    scan_ctx c = {g, rails, &hits};
    int rc = scan_text(&c, text, n, 0, NULL);
    if (rc == 0 && output && rails[AL_RAIL_CONSTITUTION])
        rc = escalation_rule(g, prompt, prompt ? plen : 0, text, n, &hits);
    if (rc == 0)
        rc = decide(g, rails, &hits, text, n, d);
    free(hits.v);
    if (rc)
        al_guard_decision_free(d);
    return rc;
}

int al_guard_check_input(const al_guard *g, const char *text, size_t n, al_guard_decision *out)
{
    return check(g, g->pol.input_rails, NULL, 0, text, n, false, out);
}

int al_guard_check_output(const al_guard *g, const char *prompt, size_t prompt_len, const char *answer, size_t n,
                          al_guard_decision *out)
{
    return check(g, g->pol.output_rails, prompt, prompt_len, answer, n, true, out);
}

void al_guard_decision_free(al_guard_decision *d)
{
    free(d->spans);
    free(d->reply);
    free(d->redacted);
    memset(d, 0, sizeof *d);
    d->category = -1;
}

/* Prompt-injection and role-play patterns: PCRE2 (JIT) behind a word-trigger prefilter.
 *
 * Every pattern names the words (or word pairs) it cannot match without; one walk over
 * the words the splitter picked (those that pass the sets' filters) looks those up in a
 * hash set, and a pattern runs only on a window around a word that can start it.  Most
 * text has no trigger at all.  Triggers are stored in their ROT13 spelling too, so the
 * same lookup finds ROT13 readings; words that look like leetspeak or pig Latin are
 * looked up in their decoded reading: a trigger found through a decoder runs the
 * patterns on the decoded window, and the hit says which decoder it came through.
 *
 * A pattern's weight is how sure a match alone makes us; a category's score combines
 * the distinct patterns that matched as 1 - prod(1 - weight). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

typedef struct builtin_pattern {
    int category;
    const char *name;
    float weight;
    const char *regex;
    const char *triggers; /* words separated by '|'; "a b" is a word pair */
} builtin_pattern;

static const builtin_pattern builtins[] = {
    {AL_GCAT_INJECTION, "ignore_instructions", 0.9f,
     "\\b(?:ignore|disregard|forget|bypass|override|overlook|neglect|abandon)\\b[\\s\\w,'-]{0,40}?"
     "\\b(?:instructions?|rules|guidelines|directives?|prompts?|guardrails|restrictions|programming|"
     "polic(?:y|ies)|constraints|safeguards|commands|orders|training)\\b",
     "ignore|disregard|forget|bypass|override|overlook|neglect|abandon"},
    {AL_GCAT_INJECTION, "reveal_system_prompt", 0.8f,
     "\\b(?:reveal|show|print|repeat|output|display|tell|leak|dump|disclose|give|write|what)\\b"
     "[\\s\\w,'-]{0,40}?\\b(?:(?:system|initial|hidden|original|secret|internal|developer|pre-?)\\s*"
     "(?:prompt|instructions?|message|rules)|your\\s+(?:instructions|prompt|rules|guidelines))\\b",
     "system prompt|system message|initial prompt|initial instructions|hidden prompt|"
     "hidden instructions|original prompt|original instructions|secret prompt|secret instructions|"
     "internal instructions|developer prompt|developer message|preprompt|pre prompt|your instructions|"
     "your prompt|your rules|your guidelines"},
    {AL_GCAT_INJECTION, "new_instructions", 0.6f,
     "\\b(?:new|updated|real|actual|true|revised)\\s+(?:instructions?|rules|directives?|task)\\s*:",
     "new instructions|new instruction|updated instructions|real instructions|actual instructions|"
     "true instructions|revised instructions|new rules|new directive|new directives|new task"},
    {AL_GCAT_INJECTION, "from_now_on", 0.5f, "\\bfrom\\s+now\\s+on\\b[^.\\n]{0,60}\\byou\\b", "now on"},
    {AL_GCAT_INJECTION, "chat_markup", 0.7f,
     "<\\|im_(?:start|end)\\|>|\\[/?INST\\]|<</?SYS>>|<\\|(?:system|user|assistant|endoftext)\\|>",
     "im start|im end|inst|sys|endoftext|system|user|assistant"},
    {AL_GCAT_INJECTION, "role_line", 0.6f, "(?:^|\\n)\\s*(?:system|developer)\\s*:\\s*\\S",
     "system|developer"},
    {AL_GCAT_INJECTION, "special_mode", 0.9f,
     "\\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|dan|sudo|admin|unfiltered|evil)\\s+mode\\b",
     "developer mode|dev mode|god mode|jailbreak mode|jailbroken mode|unrestricted mode|dan mode|"
     "sudo mode|admin mode|unfiltered mode|evil mode"},
    {AL_GCAT_INJECTION, "jailbreak_word", 0.7f, "\\bjail-?br(?:eak|oken|eaking)\\b",
     "jailbreak|jailbroken|jailbreaking|jail break|jail broken"},
    {AL_GCAT_INJECTION, "do_anything_now", 0.9f, "(?-i:\\bDAN\\b)|\\bdo\\s+anything\\s+now\\b",
     "dan|anything now"},
    {AL_GCAT_INJECTION, "no_restrictions", 0.7f,
     "\\b(?:without|no|free\\s+(?:of|from)|ignore|remove|disable|bypass|lift)\\s+(?:any\\s+|all\\s+|your\\s+|the\\s+)?"
     "(?:restrictions|limitations|filters?|filtering|censorship|guardrails|safeguards|"
     "safety\\s+(?:guidelines|filters|measures|rules)|ethical\\s+(?:guidelines|constraints)|morals|ethics)\\b",
     "restrictions|limitations|filter|filters|filtering|censorship|guardrails|safeguards|morals|ethics|"
     "safety guidelines|safety filters|safety measures|safety rules|ethical guidelines|ethical constraints"},
    {AL_GCAT_ROLEPLAY, "you_are_now", 0.5f,
     "\\byou\\s+are\\s+(?:now|no\\s+longer)\\b|\\byou'?re\\s+now\\b|\\bhenceforth\\s+you\\b",
     "are now|no longer|re now|henceforth"},
    {AL_GCAT_ROLEPLAY, "pretend", 0.4f,
     "\\b(?:pretend|imagine|act|behave|play)\\s+(?:to\\s+be|you\\s+are|that\\s+you\\s+are|as\\s+if\\s+you|"
     "as\\s+(?:an?|my)|like\\s+(?:an?|my)|the\\s+role)\\b",
     "pretend|imagine|act as|act like|behave as|behave like|play the|play as"},
    {AL_GCAT_ROLEPLAY, "roleplay", 0.3f, "\\brole-?\\s?play(?:ing)?\\b", "roleplay|roleplaying|role play|role playing"},
    {AL_GCAT_ROLEPLAY, "evil_persona", 0.8f,
     "\\b(?:evil|unfiltered|uncensored|unrestricted|amoral|unethical|immoral|jailbroken|rogue|malicious|"
     "unhinged)\\s+(?:ai|assistant|model|chatbot|bot|version|persona|character|twin|alter\\s+ego|gpt|llm)\\b",
     "evil|unfiltered|uncensored|unrestricted|amoral|unethical|immoral|jailbroken|rogue|malicious|unhinged"},
    {AL_GCAT_ROLEPLAY, "stay_in_character", 0.6f,
     "\\b(?:stay|remain|keep)\\s+in\\s+character\\b|\\bbreak(?:ing)?\\s+character\\b",
     "in character|break character|breaking character"},
    {AL_GCAT_ROLEPLAY, "named_persona", 0.7f,
     "(?-i:\\b(?:AIM|STAN|DUDE|BetterDAN|AntiGPT|BasedGPT|UCAR|OPPO)\\b)|\\bmongo\\s+tom\\b|\\banti-?gpt\\b",
     "aim|stan|dude|betterdan|antigpt|basedgpt|ucar|oppo|mongo tom|anti gpt"},
    {AL_GCAT_ROLEPLAY, "grandma", 0.5f,
     "\\b(?:grandma|grandmother|granny|deceased)\\b[^.\\n]{0,80}\\b(?:used\\s+to|would)\\b[^.\\n]{0,60}"
     "\\b(?:tell|read|recite|say|explain)\\b",
     "grandma|grandmother|granny|deceased"},
    {AL_GCAT_ROLEPLAY, "fiction_frame", 0.3f,
     "\\b(?:hypothetical(?:ly)?|fictional|in\\s+a\\s+(?:story|novel|movie|game))\\b[^.\\n]{0,100}"
     "\\b(?:how\\s+to|step[-\\s]by[-\\s]step|instructions\\s+for|detailed\\s+(?:steps|guide))\\b",
     "hypothetical|hypothetically|fictional|a story|a novel|a movie|a game"},
};
#define N_BUILTIN ((int)(sizeof builtins / sizeof *builtins))
#define MAX_PATTERNS 64 /* trigger masks are 64-bit */
#define WINDOW 200      /* bytes around a trigger a pattern may span */

typedef struct compiled {
    int category;
    char *name;
    float weight;
    pcre2_code *code;
    bool always; /* no triggers: runs over the whole text */
} compiled;

/* What a word or a word pair triggers, read as it is and in ROT13 (the ROT13 spelling of
 * every trigger is stored too, so a word's one hash serves both readings). */
typedef struct trigger {
    uint64_t plain, rot13; /* masks of patterns */
    unsigned first;        /* the word begins a pair trigger */
} trigger;

struct guard_patterns {
    compiled v[MAX_PATTERNS];
    int n;
    guard_wordset words, pairs; /* word hash, pair hash -> index into trig */
    trigger *trig;
    int n_trig, cap_trig;
    uint64_t always_mask;
};

static const trigger *find_trigger(const guard_patterns *gp, const guard_wordset *set, uint64_t key)
{
    uint64_t at;
    return guard_wordset_get(set, key, &at) ? &gp->trig[at] : NULL;
}

/* The entry of key in set, added if new; NULL when out of memory. */
static trigger *trigger_for(guard_patterns *gp, guard_wordset *set, uint64_t key)
{
    uint64_t at;
    if (guard_wordset_get(set, key, &at))
        return &gp->trig[at];
    if (gp->n_trig == gp->cap_trig) {
        int cap = gp->cap_trig ? gp->cap_trig * 2 : 64;
        trigger *v = realloc(gp->trig, (size_t)cap * sizeof *v);
        if (!v) {
            al_fail("out of memory");
            return NULL;
        }
        gp->trig = v;
        gp->cap_trig = cap;
    }
    if (guard_wordset_add(set, key, (uint64_t)gp->n_trig))
        return NULL;
    gp->trig[gp->n_trig] = (trigger){0, 0, 0};
    return &gp->trig[gp->n_trig++];
}

static int add_trigger(guard_patterns *gp, const char *word, size_t len, int k)
{
    al_buf rot = {0};
    if (al_decode(AL_CODEC_ROT13, word, len, &rot))
        return -1;
    int rc = 0;
    for (int view = 0; view < 2 && rc == 0; view++) {
        guard_words words;
        if (guard_split_words(view ? rot.data : word, len, NULL, &words)) {
            rc = -1;
            break;
        }
        guard_word *w = words.v;
        int nw = words.n;
        trigger *t = NULL;
        if (nw == 1) {
            t = trigger_for(gp, &gp->words, w[0].hash);
        } else if (nw == 2) {
            trigger *first = trigger_for(gp, &gp->words, w[0].hash);
            if (first)
                first->first = 1;
            t = first ? trigger_for(gp, &gp->pairs, guard_hash_pair(w[0].hash, w[1].hash)) : NULL;
        } else {
            al_fail("trigger '%.*s' must be one word or two", (int)len, word);
        }
        free(w);
        if (!t)
            rc = -1;
        else if (view)
            t->rot13 |= 1ull << k;
        else
            t->plain |= 1ull << k;
    }
    al_buf_free(&rot);
    return rc;
}

static int compile(guard_patterns *gp, int category, const char *name, float weight, const char *regex,
                   const char *const *triggers, int n_triggers, const char *builtin_triggers)
{
    if (gp->n == MAX_PATTERNS)
        return al_fail("more than %d injection and role-play patterns", MAX_PATTERNS);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS | PCRE2_MULTILINE,
                                     &err, &off, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof msg);
        return al_fail("pattern '%s': %s at offset %zu", name, msg, (size_t)off);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is missing */
    int k = gp->n;
    compiled *c = &gp->v[gp->n++];
    *c = (compiled){category, strdup(name), weight, code, false};
    if (!c->name)
        return al_fail("out of memory");
    if (builtin_triggers) {
        for (const char *p = builtin_triggers; *p;) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (add_trigger(gp, p, len, k))
                return -1;
            p += len + (bar != NULL);
        }
    } else {
        for (int t = 0; t < n_triggers; t++)
            if (add_trigger(gp, triggers[t], strlen(triggers[t]), k))
                return -1;
        c->always = n_triggers == 0;
        if (c->always)
            gp->always_mask |= 1ull << k;
    }
    return 0;
}

guard_patterns *guard_patterns_new(const al_guard_policy *p)
{
    guard_patterns *gp = calloc(1, sizeof *gp);
    if (!gp) {
        al_fail("out of memory");
        return NULL;
    }
    int rc = 0;
    for (int i = 0; p->builtin_patterns && i < N_BUILTIN && rc == 0; i++)
        rc = compile(gp, builtins[i].category, builtins[i].name, builtins[i].weight, builtins[i].regex, NULL, 0,
                     builtins[i].triggers);
    static const int pass_category[3] = {AL_GCAT_INJECTION, AL_GCAT_ROLEPLAY, AL_GCAT_DENY_TERM};
    for (int pass = 0; pass < 3 && rc == 0; pass++) {
        const al_guard_pattern *v = pass == 0 ? p->injection_patterns : pass == 1 ? p->roleplay_patterns : p->deny_patterns;
        int n = pass == 0 ? p->n_injection_patterns : pass == 1 ? p->n_roleplay_patterns : p->n_deny_patterns;
        for (int i = 0; i < n && rc == 0; i++) {
            rc = compile(gp, pass_category[pass], v[i].name, v[i].weight, v[i].regex,
                         (const char *const *)v[i].triggers, v[i].n_triggers, NULL);
            if (rc && v[i].line)
                al_fail_prefix("%s:%d:%d", p->origin ? p->origin : "policy", v[i].line, v[i].column);
        }
    }
    if (rc) {
        guard_patterns_free(gp);
        return NULL;
    }
    return gp;
}

void guard_patterns_free(guard_patterns *gp)
{
    if (!gp)
        return;
    for (int i = 0; i < gp->n; i++) {
        pcre2_code_free(gp->v[i].code);
        free(gp->v[i].name);
    }
    guard_wordset_free(&gp->words);
    guard_wordset_free(&gp->pairs);
    free(gp->trig);
    free(gp);
}

/* The patterns a single word's hash triggers, read as it is. */
static uint64_t lookup(const guard_patterns *gp, uint64_t key)
{
    const trigger *t = find_trigger(gp, &gp->words, key);
    return t ? t->plain : 0;
}

/* A window of text with the patterns to run on it, read through one decoder. */
typedef struct window {
    size_t start, end;
    uint64_t mask;
} window;

typedef struct windows {
    window *v;
    int n, cap;
} windows;

static int add_window(windows *ws, size_t start, size_t end, size_t n, uint64_t mask)
{
    size_t a = start > WINDOW ? start - WINDOW : 0, b = end + WINDOW < n ? end + WINDOW : n;
    if (ws->n && ws->v[ws->n - 1].end >= a) { /* overlaps the last one: widen it */
        ws->v[ws->n - 1].end = b;
        ws->v[ws->n - 1].mask |= mask;
        return 0;
    }
    if (ws->n == ws->cap) {
        int cap = ws->cap ? ws->cap * 2 : 8;
        window *v = realloc(ws->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        ws->v = v;
        ws->cap = cap;
    }
    ws->v[ws->n++] = (window){a, b, mask};
    return 0;
}

static uint64_t rail_mask(const guard_patterns *gp, const bool rails[AL_RAIL_COUNT])
{
    uint64_t m = 0;
    for (int k = 0; k < gp->n; k++)
        if ((gp->v[k].category == AL_GCAT_INJECTION && rails[AL_RAIL_INJECTION]) ||
            (gp->v[k].category == AL_GCAT_ROLEPLAY && rails[AL_RAIL_ROLEPLAY]) ||
            (gp->v[k].category == AL_GCAT_DENY_TERM && rails[AL_RAIL_CONSTITUTION]))
            m |= 1ull << k;
    return m;
}

/* Runs the patterns of mask over subject[0..len); map (may be NULL) takes a subject
 * offset back to the text, and [lo, hi) bounds the spans reported. */
static int run(const guard_patterns *gp, uint64_t mask, const char *subject, size_t from, size_t len,
               const uint32_t *map, size_t base, const char *via, guard_hits *hits)
{
    pcre2_match_data *md = NULL;
    for (int k = 0; k < gp->n; k++) {
        if (!(mask >> k & 1))
            continue;
        if (!md && !(md = pcre2_match_data_create(1, NULL)))
            return al_fail("out of memory");
        int rc = pcre2_match(gp->v[k].code, (PCRE2_SPTR)subject, len, from, 0, md, NULL);
        if (rc <= 0)
            continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        size_t ts = map ? map[s] : base + s, te = map ? map[e] : base + e;
        if (te < ts)
            te = ts;
        if (guard_hits_add(hits, gp->v[k].category, ts, te, gp->v[k].weight, gp->v[k].name, via,
                           gp->v[k].category == AL_GCAT_INJECTION  ? "injection_phrase"
                           : gp->v[k].category == AL_GCAT_ROLEPLAY ? "roleplay_persona"
                                                                   : "deny_term")) {
            pcre2_match_data_free(md);
            return -1;
        }
    }
    pcre2_match_data_free(md);
    return 0;
}

static bool piglatin_char(unsigned c) { return (c | 32) - 'a' < 26 || c == '-'; }

/* Decodes text[a..b) from pig Latin into out, word by word, with map[i] the text offset
 * of the word out byte i came from (decoding never lengthens a word). */
static int decode_piglatin_window(const char *text, size_t a, size_t b, al_buf *out, uint32_t **map)
{
    out->len = 0;
    uint32_t *m = malloc((b - a + 1) * sizeof *m);
    if (!m)
        return al_fail("out of memory");
    for (size_t i = a; i < b;) {
        size_t j = i + 1;
        if (piglatin_char((unsigned char)text[i]))
            while (j < b && piglatin_char((unsigned char)text[j]))
                j++;
        size_t at = out->len;
        if (al_decode(AL_CODEC_PIG_LATIN, text + i, j - i, out) || out->len - at > j - i) {
            free(m);
            return out->len - at > j - i ? al_fail("pig Latin decoding grew a word") : -1;
        }
        for (size_t k = at; k < out->len; k++)
            m[k] = (uint32_t)i;
        i = j;
    }
    m[out->len] = (uint32_t)b;
    *map = m;
    return 0;
}

const guard_wordset *guard_patterns_words(const guard_patterns *gp) { return &gp->words; }

int guard_patterns_scan(const guard_patterns *gp, const bool rails[AL_RAIL_COUNT], const bool *codecs,
                        const char *text, size_t n, const guard_words *words, const char *via, guard_hits *hits)
{
    uint64_t allowed = rail_mask(gp, rails);
    if (!allowed)
        return 0;
    /* views: 0 the text, 1 ROT13, 2 leetspeak, 3 pig Latin */
    windows ws[4] = {{0}};
    bool rot13 = codecs && codecs[AL_CODEC_ROT13], leet = codecs && codecs[AL_CODEC_LEETSPEAK],
         pig = codecs && codecs[AL_CODEC_PIG_LATIN];
    const guard_word *w = words->v;
    int rc = 0;
    for (int k = 0; k < words->n_pick && rc == 0; k++) {
        int i = words->pick[k];
        const guard_word *x = &w[i];
        const trigger *t = find_trigger(gp, &gp->words, x->hash);
        uint64_t m;
        if (t && (m = t->plain & allowed))
            rc = add_window(&ws[0], x->start, x->start + x->len, n, m);
        if (t && rot13 && (m = t->rot13 & allowed) && rc == 0)
            rc = add_window(&ws[1], x->start, x->start + x->len, n, m);
        /* a pair trigger is found at its first word and reported at its second */
        const trigger *pair = t && t->first && i + 1 < words->n
                                  ? find_trigger(gp, &gp->pairs, guard_hash_pair(x->hash, w[i + 1].hash))
                                  : NULL;
        const guard_word *y = &w[i + 1];
        if (pair && (m = pair->plain & allowed) && rc == 0)
            rc = add_window(&ws[0], y->start, y->start + y->len, n, m);
        if (pair && rot13 && (m = pair->rot13 & allowed) && rc == 0)
            rc = add_window(&ws[1], y->start, y->start + y->len, n, m);
        uint64_t lh;
        if (leet && (x->flags & GUARD_WORD_LEET) && guard_leet_hash(text + x->start, x->len, &lh) &&
            (m = lookup(gp, lh) & allowed) && rc == 0)
            rc = add_window(&ws[2], x->start, x->start + x->len, n, m);
        if (pig && (x->flags & GUARD_WORD_AY) && rc == 0) {
            al_buf d = {0};
            if (al_decode(AL_CODEC_PIG_LATIN, text + x->start, x->len, &d) == 0 && d.len &&
                (m = lookup(gp, guard_hash_word(d.data, d.len)) & allowed))
                rc = add_window(&ws[3], x->start, x->start + x->len, n, m);
            al_buf_free(&d);
        }
    }
    if (rc == 0 && (gp->always_mask & allowed))
        rc = add_window(&ws[0], 0, n, n, gp->always_mask & allowed);
    static const al_codec view_codec[4] = {AL_CODEC_COUNT, AL_CODEC_ROT13, AL_CODEC_LEETSPEAK, AL_CODEC_PIG_LATIN};
    al_buf dec = {0};
    for (int v = 0; v < 4 && rc == 0; v++)
        for (int k = 0; k < ws[v].n && rc == 0; k++) {
            window *wd = &ws[v].v[k];
            if (v == 0) {
                rc = run(gp, wd->mask, text, wd->start, wd->end, NULL, 0, via, hits);
            } else if (v < 3) { /* one byte for one byte */
                dec.len = 0;
                rc = al_decode(view_codec[v], text + wd->start, wd->end - wd->start, &dec);
                if (rc == 0)
                    rc = run(gp, wd->mask, dec.data, 0, dec.len, NULL, wd->start, al_codec_name(view_codec[v]), hits);
            } else {
                uint32_t *map = NULL;
                rc = decode_piglatin_window(text, wd->start, wd->end, &dec, &map);
                if (rc == 0)
                    rc = run(gp, wd->mask, dec.data, 0, dec.len, map, 0, "pig_latin", hits);
                free(map);
            }
        }
    al_buf_free(&dec);
    for (int v = 0; v < 4; v++)
        free(ws[v].v);
    return rc;
}

/* The harm classifier's training data: the shared datasets mapped onto our hazard
 * taxonomy (docs/guard_models.md has the table and the reasons).
 *
 *   harmful  data/safety/do_not_answer       by its specific_harms label (table below)
 *            data/safety/advbench            keywords; nonviolent_crime when none match
 *            data/safety/malicious_instruct  keywords; nonviolent_crime when none match
 *            data/safety/toxigen             hateful statements -> hate
 *            our own requests                code_interpreter_abuse, elections
 *   benign   data/safety/toxigen             neutral statements about the same groups
 *            corpora/self-instruct-human     seed_tasks.jsonl instructions
 *            corpora/llamafactory-demo       alpaca_en_demo, identity, dpo_en_demo, kto_en_demo prompts
 *            our own contrast prompts        benign requests that sound dangerous
 *            our own questions               everyday benign questions (harm_questions.c)
 *            corpora/tinystories             sentences of children's stories: ordinary
 *                                            English that is no request at all
 * Identical texts (after case folding) are kept once, the first source winning. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "harm_features.h"

#define BIT(h) (1u << (h))
#define CONTRAST_WEIGHT 4.0f
/* Do-Not-Answer's questions count half: a quarter of them open with "Can you", which
 * otherwise taught that asking "Can you help me?" is itself a sign of harm. */
#define DNA_WEIGHT 0.5f

int al_harm_dataset_add(al_harm_dataset *d, const char *text, bool harmful, uint32_t hazards, const char *source)
{
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 256;
        al_harm_example *v = realloc(d->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("harm dataset: out of memory");
        d->v = v;
        d->cap = cap;
    }
    char *copy = strdup(text);
    if (!copy)
        return al_fail("harm dataset: out of memory");
    d->v[d->n++] = (al_harm_example){copy, harmful, harmful ? hazards : 0, source, 1.0f};
    return 0;
}

void al_harm_dataset_free(al_harm_dataset *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->v[i].text);
    free(d->v);
    memset(d, 0, sizeof *d);
}

static uint64_t text_key(const char *s)
{
    /* Case-folded, whitespace-trimmed: the same prompt from two sources is one example. */
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 0x100000001b3ull;
    }
    return h;
}

int al_harm_dataset_split(const al_harm_dataset *all, int test_percent, al_harm_dataset *train,
                          al_harm_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (test_percent < 0 || test_percent > 100)
        return al_fail("harm dataset split: test percent %d outside 0..100", test_percent);
    for (int i = 0; i < all->n; i++) {
        const al_harm_example *e = &all->v[i];
        /* The split depends on the text alone: adding a source never moves old examples. */
        bool to_test = (int)(text_key(e->text) % 100) < test_percent;
        al_harm_dataset *to = to_test ? test : train;
        if (al_harm_dataset_add(to, e->text, e->harmful, e->hazards, e->source)) {
            al_harm_dataset_free(train);
            al_harm_dataset_free(test);
            return -1;
        }
        to->v[to->n - 1].weight = e->weight;
    }
    return 0;
}

/* ---- loading with de-duplication ---- */

typedef struct loader {
    al_harm_dataset *d;
    uint64_t *seen; /* open addressing set of text keys; 0 = empty */
    size_t seen_cap, seen_n;
    const char *shared;
} loader;

static bool seen_insert(loader *L, uint64_t k)
{
    if (k == 0)
        k = 1;
    if (2 * (L->seen_n + 1) > L->seen_cap) {
        size_t cap = L->seen_cap ? 2 * L->seen_cap : 4096;
        uint64_t *s = calloc(cap, sizeof *s);
        if (!s)
            return false;
        for (size_t i = 0; i < L->seen_cap; i++)
            if (L->seen[i])
                for (size_t j = L->seen[i] & (cap - 1);; j = (j + 1) & (cap - 1))
                    if (!s[j]) {
                        s[j] = L->seen[i];
                        break;
                    }
        free(L->seen);
        L->seen = s;
        L->seen_cap = cap;
    }
    for (size_t j = k & (L->seen_cap - 1);; j = (j + 1) & (L->seen_cap - 1)) {
        if (L->seen[j] == k)
            return false;
        if (!L->seen[j]) {
            L->seen[j] = k;
            L->seen_n++;
            return true;
        }
    }
}

static int add(loader *L, const char *text, bool harmful, uint32_t hazards, const char *source)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p || !seen_insert(L, text_key(text)))
        return 0;
    return al_harm_dataset_add(L->d, text, harmful, hazards, source);
}

static int read_shared(loader *L, const char *rel, al_buf *out)
{
    char *path = al_path_join(L->shared, rel);
    if (!path)
        return al_fail("harm dataset: out of memory");
    int rc = al_read_file(path, out);
    if (rc)
        al_fail_prefix("harm training data missing or unreadable (expected the ../shared checkout)");
    free(path);
    return rc;
}

/* ---- keyword categories ----
 * Matched against the text lower-cased with punctuation folded to single spaces and a
 * space at both ends: a keyword " kill" matches "kill", "killing", "killer" but not
 * "skill"; " sex " only the whole word. */
typedef struct keyword_rule {
    al_hazard hazard;
    const char *words; /* '|'-separated */
} keyword_rule;

static const keyword_rule rules[] = {
    {AL_HAZ_INDISCRIMINATE_WEAPONS,
     " bomb| explosive| nuclear weapon| chemical weapon| biological weapon| bioweapon| nerve agent| sarin|"
     " anthrax| ricin| mass destruction| poison gas| mustard gas| radiological| detonat| weaponiz| pathogen"},
    {AL_HAZ_SELF_HARM,
     " suicid| kill myself| kill yourself| self harm| cut myself| cutting myself| hurt myself| starve myself|"
     " starving myself| anorexi| bulimi| eating disorder| throw up to lose| overdos| end my life| take my own life"},
    {AL_HAZ_ELECTIONS, " election| voter| voting| ballot| polling| vote "},
    {AL_HAZ_SEX_CRIME,
     " rape| sexual assault| sexually assault| sex traffick| human traffick| prostitut| revenge porn| molest|"
     " sextort| non consensual| upskirt"},
    {AL_HAZ_SEXUAL_CONTENT, " porn| erotic| sexual| explicit sex| nude| naked| sex | sexting"},
    {AL_HAZ_HATE,
     " racist| racism| hate speech| hatred| discriminat| inferior| slur| ethnic| minorit| supremac| nazi|"
     " antisemit| islamophob| homophob| transphob| xenophob"},
    {AL_HAZ_PRIVACY,
     " personal information| private information| home address| social security number| dox| stalk| spy on|"
     " track someone| track their| surveil| location of| medical records| someone s email| personal data"},
    {AL_HAZ_INTELLECTUAL_PROPERTY, " copyright| pirat| plagiari| trademark| torrent| drm "},
    {AL_HAZ_DEFAMATION, " defam| libel| slander| smear| false rumor| ruin their reputation| ruin someone s reputation"},
    {AL_HAZ_SPECIALIZED_ADVICE, " diagnos| prescri| dosage| legal advice| medical advice| financial advice"},
    {AL_HAZ_CODE_ABUSE, " fork bomb| sandbox| container escape| reverse shell| privilege escalat| rm rf | etc shadow"},
    {AL_HAZ_VIOLENT_CRIME,
     " kill| murder| assault| attack| violen| weapon| gun| firearm| shoot| stab| terror| kidnap| tortur|"
     " poison| hurt| harm someone| injur| assassin| massacre| genocide| beat up| animal cruelty| dogfight"},
    {AL_HAZ_NONVIOLENT_CRIME,
     " hack| malware| virus| ransomware| exploit| phish| steal| stole| theft| fraud| counterfeit| launder|"
     " tax evasion| evade tax| insider trading| scam| identity theft| credit card| shoplift| drug| cocaine|"
     " meth| heroin| smuggl| cheat| forge| forgery| fake id| brib| embezzl| blackmail| extort| illegal|"
     " keylogger| botnet| ddos| password| break into| burglar| rob | robbery| vandal| manipulat"},
};

/* The text as the keyword rules see it (malloc'd). */
static char *fold(const char *text)
{
    size_t n = strlen(text);
    char *s = malloc(n + 3), *o = s;
    if (!s)
        return NULL;
    *o++ = ' ';
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80)
            *o++ = (char)c;
        else if (o[-1] != ' ')
            *o++ = ' ';
    }
    if (o[-1] != ' ')
        *o++ = ' ';
    *o = 0;
    return s;
}

static bool has_any(const char *folded, const char *words)
{
    while (*words) {
        const char *bar = strchr(words, '|');
        size_t n = bar ? (size_t)(bar - words) : strlen(words);
        char w[64];
        if (n < sizeof w) {
            memcpy(w, words, n);
            w[n] = 0;
            if (strstr(folded, w))
                return true;
        }
        words += n + (bar ? 1 : 0);
    }
    return false;
}

/* Hazards named by keywords; only those in `allowed` are considered. */
static uint32_t keyword_hazards(const char *text, uint32_t allowed)
{
    char *f = fold(text);
    uint32_t bits = 0;
    if (!f)
        return 0;
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if ((allowed & BIT(rules[i].hazard)) && has_any(f, rules[i].words))
            bits |= BIT(rules[i].hazard);
    /* Child exploitation needs both a child and a sexual word: "teach children to use
     * firearms" is a weapons request, not exploitation. */
    if ((allowed & BIT(AL_HAZ_CHILD_EXPLOITATION)) &&
        (has_any(f, " pedophil| paedophil| child porn| child sexual| csam") ||
         (has_any(f, " child| minor| underage| kid| teen| preteen| student") &&
          has_any(f, " sex| porn| nude| naked| groom| molest| erotic| explicit"))))
        bits |= BIT(AL_HAZ_CHILD_EXPLOITATION);
    free(f);
    return bits;
}

#define ALL_HAZARDS ((1u << AL_HAZ_COUNT) - 1)
/* Hazards specific enough to add on top of a source's own label. */
#define REFINING (BIT(AL_HAZ_CHILD_EXPLOITATION) | BIT(AL_HAZ_INDISCRIMINATE_WEAPONS) | BIT(AL_HAZ_SELF_HARM) | \
                  BIT(AL_HAZ_ELECTIONS))

/* Keywords, or nonviolent_crime when none match (a guess: most unlabelled requests in
 * AdvBench and MaliciousInstruct are fraud, hacking, theft or manipulation). */
static uint32_t guess_hazards(const char *text)
{
    uint32_t bits = keyword_hazards(text, ALL_HAZARDS);
    return bits ? bits : BIT(AL_HAZ_NONVIOLENT_CRIME);
}

/* ---- sources ---- */

typedef struct dna_label {
    const char *prefix; /* of specific_harms (or types_of_harm when marked) */
    int hazard;         /* -1: harmful, hazard unknown; -2: leave out of training */
} dna_label;

/* Do-Not-Answer's fine labels onto our taxonomy.  Left out: "Treat Chatbot as a Human"
 * (asking the assistant's birthday is not a harmful request), the questions about news,
 * rumors and propaganda ("is there a festival next week?"), and the requests for
 * financial, legal, medical and mental-health advice ("how can I cope with anxiety?"):
 * a guard should let a person ask for help; the answer's care is the model's job.  With
 * them in, "Can you ..." itself became a sign of harm (7 of 25 everyday requests
 * blocked, against 2 without Do-Not-Answer at all). */
static const dna_label dna_specific[] = {
    {"Explicit Sexual Content", AL_HAZ_SEXUAL_CONTENT},
    {"Graphic Violence", AL_HAZ_VIOLENT_CRIME},
    {"Animal Abuse", AL_HAZ_VIOLENT_CRIME},
    {"Copyright Infringement", AL_HAZ_INTELLECTUAL_PROPERTY},
    {"Financial Crimes", AL_HAZ_NONVIOLENT_CRIME},
    {"Illegal Digital Activities", AL_HAZ_NONVIOLENT_CRIME},
    {"Illegal Drugs and Substances", AL_HAZ_NONVIOLENT_CRIME},
    {"Illegal Trade", AL_HAZ_NONVIOLENT_CRIME},
    {"Illegitimate surveillance", AL_HAZ_PRIVACY},
    {"Sexual Exploitation and Pornography", AL_HAZ_SEX_CRIME},
    {"Substance Abuse", AL_HAZ_SELF_HARM},
    {"Terrorist Activities", AL_HAZ_VIOLENT_CRIME},
    {"Threats and Intimidation", AL_HAZ_VIOLENT_CRIME},
    {"Violence and Physical Harm", AL_HAZ_VIOLENT_CRIME},
    {"Financial Advice", -2},
    {"Legal Advice", -2},
    {"Medical Advice", -2},
    {"Unreliable Experts", -2},
    {"False News", -2},
    {"Misinterpretation", -2},
    {"Propaganda", -2},
    {"Rumors", -2},
    {"Hazardous Activities", -1},
    {"Advice of coping", -2},
    {"Consult advice", -2},
    {"Depression and Anxiety", -2},
    {"Self-Harm", AL_HAZ_SELF_HARM},
    {"Defamatory Content", AL_HAZ_DEFAMATION},
    {"Endorsement of Cyberbullying", -1},
    {"Endorsement of Unsafe Health", AL_HAZ_SELF_HARM},
    {"Guide for Risky Pranks", -1},
    {"Trolling", -1},
    {"Disinformation", -1},
    {"Malinformation", -1},
    {"Spam Content", AL_HAZ_NONVIOLENT_CRIME},
    {"Cybersecurity Vulnerabilities", AL_HAZ_NONVIOLENT_CRIME},
    {"Sensitive Technological Details", AL_HAZ_INTELLECTUAL_PROPERTY},
};

static const dna_label dna_types[] = {
    {"Compromise privacy", AL_HAZ_PRIVACY},
    {"Risks from leaking", AL_HAZ_PRIVACY},
    {"Social stereotypes", AL_HAZ_HATE},
    {"Toxic language", AL_HAZ_HATE},
    {"Treat Chatbot as a Human", -2},
};

static int dna_hazard(const char *types, const char *specific)
{
    for (size_t i = 0; i < sizeof dna_specific / sizeof *dna_specific; i++)
        if (strncmp(specific, dna_specific[i].prefix, strlen(dna_specific[i].prefix)) == 0)
            return dna_specific[i].hazard;
    for (size_t i = 0; i < sizeof dna_types / sizeof *dna_types; i++)
        if (strncmp(types, dna_types[i].prefix, strlen(dna_types[i].prefix)) == 0)
            return dna_types[i].hazard;
    return -1;
}

static int load_do_not_answer(loader *L)
{
    static const char rel[] = "data/safety/do_not_answer/do_not_answer_en.csv";
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    char *p = b.data, *f[16];
    int n = al_csv_record(&p, f, 16);
    int c_types = al_csv_column(f, n, "types_of_harm"), c_spec = al_csv_column(f, n, "specific_harms");
    int c_q = al_csv_column(f, n, "question");
    int rc = 0;
    if (c_types < 0 || c_spec < 0 || c_q < 0) {
        rc = al_fail("%s/%s: header lacks types_of_harm, specific_harms or question", L->shared, rel);
        goto done;
    }
    while ((n = al_csv_record(&p, f, 16)) > 0) {
        if (n <= c_q || n <= c_types || n <= c_spec)
            continue;
        int h = dna_hazard(f[c_types], f[c_spec]);
        if (h == -2)
            continue;
        const char *q = f[c_q];
        uint32_t bits = h >= 0 ? BIT(h) | keyword_hazards(q, REFINING) : keyword_hazards(q, ALL_HAZARDS);
        int before = L->d->n;
        if ((rc = add(L, q, true, bits, "do_not_answer")))
            break;
        if (L->d->n > before)
            L->d->v[L->d->n - 1].weight = DNA_WEIGHT;
    }
done:
    al_buf_free(&b);
    return rc;
}

static int load_advbench(loader *L)
{
    static const char rel[] = "data/safety/advbench/harmful_behaviors.csv";
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    char *p = b.data, *f[4];
    int n = al_csv_record(&p, f, 4), c_goal = al_csv_column(f, n, "goal"), rc = 0;
    if (c_goal < 0)
        rc = al_fail("%s/%s: header lacks the goal column", L->shared, rel);
    while (!rc && (n = al_csv_record(&p, f, 4)) > 0)
        if (n > c_goal)
            rc = add(L, f[c_goal], true, guess_hazards(f[c_goal]), "advbench");
    al_buf_free(&b);
    return rc;
}

/* One example per non-empty line. */
static int load_lines(loader *L, const char *rel, bool harmful, uint32_t hazards, bool guess, const char *source)
{
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    int rc = 0;
    for (char *line = b.data; !rc && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        /* ToxiGen writes statements as "- text"; its prompt files join several on one
         * line with a literal "\n-". */
        for (char *s = line; !rc && s;) {
            char *sep = strstr(s, "\\n");
            if (sep)
                *sep = 0;
            while (*s == '-' || *s == ' ')
                s++;
            size_t n = strlen(s);
            while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
                s[--n] = 0;
            if (n)
                rc = add(L, s, harmful, guess ? guess_hazards(s) : hazards, source);
            s = sep ? sep + 2 : NULL;
        }
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&b);
    return rc;
}

/* Every STORY_STRIDE-th sentence of 20 to 200 bytes from the stories, up to STORY_MAX:
 * without plain text among the benign examples, text that looks like no training request
 * at all ("aaaa", "Can you act as a translator?") scored near the harmful half's prior. */
#define STORY_STRIDE 7
#define STORY_MAX 3000
static int load_story_sentences(loader *L, const char *rel)
{
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    int rc = 0, seen = 0, kept = 0;
    char *s = b.data;
    while (!rc && s && *s && kept < STORY_MAX) {
        while (*s == ' ' || *s == '\n' || *s == '\r')
            s++;
        char *e = s;
        while (*e && *e != '.' && *e != '!' && *e != '?' && *e != '\n')
            e++;
        size_t n = (size_t)(e - s) + (*e && *e != '\n');
        char *next = *e ? e + 1 : NULL;
        if (n >= 20 && n <= 200 && seen++ % STORY_STRIDE == 0) {
            char save = s[n];
            s[n] = 0;
            rc = add(L, s, false, 0, "tinystories");
            s[n] = save;
            kept++;
        }
        s = next;
    }
    al_buf_free(&b);
    return rc;
}

/* Groups with both files; ToxiGen has hateful statements about trans people but no
 * neutral file for them. */
static const char *toxigen_groups[] = {
    "asian", "bisexual", "black", "chinese", "immigrant", "jewish", "latino", "lgbtq", "mental_disability",
    "mexican", "middle_east", "muslim", "native_american", "physical_disability", "women", "trans",
};
#define TOXIGEN_NEUTRAL_GROUPS 15

static int load_toxigen(loader *L)
{
    /* The few-shot prompt files hold every demonstration statement and more; each
     * statement appears in hundreds of prompts, which de-duplication folds to one. */
    for (size_t i = 0; i < sizeof toxigen_groups / sizeof *toxigen_groups; i++) {
        char rel[160];
        snprintf(rel, sizeof rel, "data/safety/toxigen/prompts/hate_%s_1k.txt", toxigen_groups[i]);
        if (load_lines(L, rel, true, BIT(AL_HAZ_HATE), false, "toxigen_hate"))
            return -1;
        snprintf(rel, sizeof rel, "data/safety/toxigen/prompts/neutral_%s_1k.txt", toxigen_groups[i]);
        if (i < TOXIGEN_NEUTRAL_GROUPS && load_lines(L, rel, false, 0, false, "toxigen_neutral"))
            return -1;
    }
    return 0;
}

/* The string at key (or NULL). */
static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An instruction with its input appended, as the model would see it. */
static int add_instruction(loader *L, const char *instruction, const char *input, const char *source)
{
    if (!instruction)
        return 0;
    if (!input || !*input)
        return add(L, instruction, false, 0, source);
    al_buf t = {0};
    int rc = al_buf_printf(&t, "%s\n%s", instruction, input);
    if (!rc)
        rc = add(L, t.data, false, 0, source);
    al_buf_free(&t);
    return rc;
}

static int load_json_benign(loader *L, const char *rel, const char *source)
{
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    json_error_t err;
    json_t *root = json_loadb(b.data, b.len, 0, &err);
    al_buf_free(&b);
    if (!json_is_array(root)) {
        json_decref(root);
        return al_fail("%s/%s:%d: expected a JSON array (%s)", L->shared, rel, err.line, err.text);
    }
    int rc = 0;
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e)
    {
        if (rc)
            break;
        json_t *conv = json_object_get(e, "conversations"), *msgs = json_object_get(e, "messages");
        if (json_is_array(conv)) { /* dpo_en_demo: the first human turn */
            json_t *first = json_array_get(conv, 0);
            const char *v = first ? jstr(first, "value") : NULL;
            if (v)
                rc = add(L, v, false, 0, source);
        } else if (json_is_array(msgs)) { /* kto_en_demo: the first user message */
            json_t *first = json_array_get(msgs, 0);
            const char *v = first ? jstr(first, "content") : NULL;
            if (v)
                rc = add(L, v, false, 0, source);
        } else {
            rc = add_instruction(L, jstr(e, "instruction"), jstr(e, "input"), source);
        }
    }
    json_decref(root);
    return rc;
}

static int load_seed_tasks(loader *L)
{
    static const char rel[] = "corpora/self-instruct-human/seed_tasks.jsonl";
    al_buf b = {0};
    if (read_shared(L, rel, &b))
        return -1;
    int rc = 0, line_no = 0;
    for (char *line = b.data; !rc && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        line_no++;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!json_is_object(o)) {
            rc = al_fail("%s/%s:%d: not a JSON object (%s)", L->shared, rel, line_no, err.text);
        } else {
            json_t *inst = json_array_get(json_object_get(o, "instances"), 0);
            rc = add_instruction(L, jstr(o, "instruction"), inst ? jstr(inst, "input") : NULL, "self_instruct");
        }
        json_decref(o);
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&b);
    return rc;
}

int al_harm_dataset_load_shared(al_harm_dataset *d, const char *shared_dir)
{
    loader L = {.d = d, .shared = shared_dir};
    int rc = load_do_not_answer(&L) || load_advbench(&L) ||
             load_lines(&L, "data/safety/malicious_instruct/malicious_instruct.txt", true, 0, true,
                        "malicious_instruct") ||
             load_toxigen(&L);
    for (int i = 0; !rc && i < harm_n_own_harmful; i++)
        rc = add(&L, harm_own_harmful[i].text, true, BIT(harm_own_harmful[i].hazard), "own_harmful");
    for (int i = 0; !rc && i < al_harm_n_contrast_prompts; i++)
        rc = add(&L, al_harm_contrast_prompts[i], false, 0, "own_contrast");
    for (int i = 0; !rc && i < harm_n_benign_questions; i++)
        rc = add(&L, harm_benign_questions[i], false, 0, "own_questions");
    /* Our contrast prompts and questions are few but carry the lesson the rest of the data
     * lacks (dangerous words, and the question form, in harmless requests): their loss
     * counts CONTRAST_WEIGHT times. */
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->v[i].source, "own_contrast") == 0 || strcmp(d->v[i].source, "own_questions") == 0)
            d->v[i].weight = CONTRAST_WEIGHT;
    if (!rc)
        rc = load_seed_tasks(&L) || load_json_benign(&L, "corpora/llamafactory-demo/alpaca_en_demo.json", "alpaca") ||
             load_json_benign(&L, "corpora/llamafactory-demo/identity.json", "identity") ||
             load_json_benign(&L, "corpora/llamafactory-demo/dpo_en_demo.json", "dpo_demo") ||
             load_json_benign(&L, "corpora/llamafactory-demo/kto_en_demo.json", "kto_demo") ||
             load_story_sentences(&L, "corpora/tinystories/TinyStories-train-first2MiB.txt");
    free(L.seen);
    return rc ? -1 : 0;
}

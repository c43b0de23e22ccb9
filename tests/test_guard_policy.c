/* Guard policies: the built-in policy parses, files overlay it key by key, every kind of
 * mistake is reported at its line and column, and lexicon files load (the shared one
 * read in place). */
#include "align/guard.h"
#include "test.h"

static int parse(const char *yaml, al_guard_policy *p)
{
    return al_guard_policy_parse(yaml, strlen(yaml), "t.yaml", p);
}

/* The policy fails to parse with a message starting with prefix and containing word. */
static void check_error(const char *yaml, const char *prefix, const char *word)
{
    al_guard_policy p;
    int rc = parse(yaml, &p);
    const char *m = al_errmsg();
    CHECKF(rc != 0 && strncmp(m, prefix, strlen(prefix)) == 0 && strstr(m, word), "policy:\n%s\ngave: %s",
           yaml, rc ? m : "(no error)");
    if (rc == 0)
        al_guard_policy_free(&p);
}

static void test_default(void)
{
    al_guard_policy p;
    CHECK_OK(al_guard_policy_default(&p));
    CHECK(p.max_input_bytes == 65536);
    CHECK(p.input_rails[AL_RAIL_INJECTION] && p.input_rails[AL_RAIL_DECODE] && !p.input_rails[AL_RAIL_PII]);
    CHECK(p.output_rails[AL_RAIL_PII] && p.output_rails[AL_RAIL_CONSTITUTION]);
    CHECK(p.cats[AL_GCAT_INJECTION].action == AL_GUARD_BLOCK && p.cats[AL_GCAT_INJECTION].reply);
    CHECK(p.cats[AL_GCAT_PII].action == AL_GUARD_REDACT);
    CHECK(p.cats[AL_GCAT_HAZARD + AL_HAZ_SELF_HARM].action == AL_GUARD_BLOCK);
    CHECK(fabsf(p.cats[AL_GCAT_ROLEPLAY].threshold - 0.7f) < 1e-6f);
    CHECK(p.redact == AL_REDACT_TAG && p.decode_max_depth == 2 && p.min_encoded_len == 16);
    for (int c = 0; c < AL_CODEC_COUNT; c++)
        CHECK(p.codecs[c]);
    al_guard_policy_free(&p);
}

static void test_overlay(void)
{
    al_guard_policy p;
    const char *y = "version: 1\n"
                    "rails:\n"
                    "  input: [injection]\n"
                    "pii:\n"
                    "  redaction: hash\n"
                    "  salt: s3cret\n"
                    "  types: [email, card]\n"
                    "categories:\n"
                    "  self_harm: {action: escalate, reply: 'You are not alone.'}\n"
                    "  hazards: {threshold: 0.8}\n"
                    "  default: {threshold: 0.3}\n"
                    "constitution:\n"
                    "  deny_terms: [Project X, db01.internal]\n"
                    "  escalation_phrases: [call us]\n";
    CHECK_OK(parse(y, &p));
    CHECK(p.input_rails[AL_RAIL_INJECTION] && !p.input_rails[AL_RAIL_DECODE]);
    CHECK(p.output_rails[AL_RAIL_PII]); /* untouched keys keep the built-in value */
    CHECK(p.redact == AL_REDACT_HASH && p.salt && strcmp(p.salt, "s3cret") == 0);
    CHECK(p.pii_types[AL_PII_EMAIL] && p.pii_types[AL_PII_CARD] && !p.pii_types[AL_PII_SSN]);
    /* default, then hazards, then the single category, whatever the order in the file */
    const al_guard_category_policy *sh = &p.cats[AL_GCAT_HAZARD + AL_HAZ_SELF_HARM];
    CHECK(sh->action == AL_GUARD_ESCALATE && fabsf(sh->threshold - 0.8f) < 1e-6f && strcmp(sh->reply, "You are not alone.") == 0);
    CHECK(fabsf(p.cats[AL_GCAT_TOXICITY].threshold - 0.3f) < 1e-6f);
    CHECK(p.n_deny_terms == 2 && strcmp(p.deny_terms[1], "db01.internal") == 0);
    CHECK(p.n_escalation_phrases == 1);
    al_guard_policy_free(&p);

    /* the shipped example */
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/guard/support_policy.yaml", ALIGN_SOURCE_DIR);
    CHECK_OK(al_guard_policy_load(path, &p));
    CHECK(p.n_deny_terms >= 3 && p.n_escalation_phrases >= 1 && p.n_escalation_when >= 1);
    CHECK(p.n_injection_patterns == 2 && p.injection_patterns[0].line > 0);
    CHECK(p.input_rails[AL_RAIL_TOXICITY]);
    al_guard *g = al_guard_open(&p);
    CHECKF(g != NULL, "%s", al_errmsg());
    al_guard_close(g);
    al_guard_policy_free(&p);
}

static void test_errors(void)
{
    check_error("version: 1\nrails:\n  input: [injection]\nrail: {}\n", "t.yaml:4:1: ", "unknown key 'rail'");
    check_error("categories:\n  injection:\n    action: deny\n", "t.yaml:3:13: ",
                "expected one of allow, redact, escalate, block, got 'deny'");
    check_error("categories:\n  pii:\n    threshold: 2\n", "t.yaml:3:16: ", "from 0 to 1");
    check_error("categories:\n  violence: {action: block}\n", "t.yaml:2:3: ", "expected a category");
    check_error("rails:\n  input: [injection, harms]\n", "t.yaml:2:22: ", "got 'harms'");
    check_error("rails: 5\n", "t.yaml:1:8: ", "expected a mapping");
    check_error("max_input_bytes: 1.5\n", "t.yaml:1:18: ", "integer");
    check_error("max_input_bytes: lots\n", "t.yaml:1:18: ", "integer");
    /* far beyond long long: once an undefined cast, found by fuzz_policy */
    check_error("max_input_bytes: 5.55556e+73\n", "t.yaml:1:18: ", "integer");
    check_error("version: -1e300\n", "t.yaml:1:10: ", "from 1 to 1");
    check_error("max_input_bytes: nan\n", "t.yaml:1:18: ", "integer");
    check_error("version: 2\n", "t.yaml:1:10: ", "from 1 to 1");
    check_error("builtin_patterns: maybe\n", "t.yaml:1:19: ", "true or false");
    check_error("pii:\n  redaction: blur\n", "t.yaml:2:14: ", "mask, tag or hash");
    check_error("injection:\n  patterns:\n    - {name: x, weight: 0.5}\n", "t.yaml:3:7: ", "'regex'");
    check_error("constitution:\n  deny_terms: jira\n", "t.yaml:2:15: ", "expected a list");
    check_error("rails: [input\n", "t.yaml:2:", "expected valid YAML");
    check_error("rails:\n  input: [a\n  output: b\n", "t.yaml:", "expected valid YAML");
    check_error("decode:\n  codecs: [base64, rot47]\n", "t.yaml:2:20: ", "got 'rot47'");
    /* a regex that does not compile is reported where the file defines it */
    al_guard_policy p;
    CHECK_OK(parse("version: 1\ninjection:\n  patterns:\n    - name: broken\n      regex: 'ab(c'\n", &p));
    al_guard *g = al_guard_open(&p);
    CHECKF(!g && strncmp(al_errmsg(), "t.yaml:4:7: pattern 'broken'", 28) == 0, "got: %s", al_errmsg());
    al_guard_close(g);
    al_guard_policy_free(&p);
    /* an empty file is the built-in policy */
    CHECK_OK(parse("", &p));
    CHECK(p.max_input_bytes == 65536);
    al_guard_policy_free(&p);
    CHECK(al_guard_policy_load("/nonexistent/policy.yaml", &p) != 0);
}

static void test_lexicons(void)
{
    al_lexicon *lx = al_lexicon_builtin();
    CHECK(lx && al_lexicon_size(lx) > 80);
    al_lexicon_free(lx);
    lx = al_lexicon_load(shared_path("data/safety/toxicity_lexicons/profanity_en.csv"));
    CHECKF(lx != NULL, "%s", al_errmsg());
    CHECK(al_lexicon_size(lx) == 1598);
    al_lexicon_free(lx);
    const char *dir = test_tmpdir("guard-policy");
    char path[1200];
    snprintf(path, sizeof path, "%s/lex.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("term,severity\nbadword,2\n\"two words\",1.5\nworse,nine\n", f);
    fclose(f);
    lx = al_lexicon_load(path);
    CHECKF(!lx && strstr(al_errmsg(), "lex.csv:4: expected"), "got: %s", al_errmsg());
    al_lexicon_free(lx);
    f = fopen(path, "w");
    fputs("term,severity\nbadword,2\n\"two, words\",1.5\n", f);
    fclose(f);
    lx = al_lexicon_load(path);
    CHECK(lx && al_lexicon_size(lx) == 2);
    al_lexicon_free(lx);
}

int main(void)
{
    test_default();
    test_overlay();
    test_errors();
    test_lexicons();
    return test_report();
}

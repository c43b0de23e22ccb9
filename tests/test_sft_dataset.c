/* SFT datasets (docs/datasets.md): the four TRL formats field for field, JSON lines and
 * JSON arrays, mixed formats, every located error, skip_bad_lines, the split, and a
 * generated 2,000-line file. */
#include "test.h"

#include "align/data.h"

static char tmp[1024];

static char *write_fixture(const char *name, const char *data, size_t n)
{
    char *path = al_path_join(tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
    return path;
}

static char *fixture(const char *name, const char *text) { return write_fixture(name, text, strlen(text)); }

static bool str_is(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* Loading `data` fails with exactly "PATH" + want. */
static void expect_error_n(const char *name, const char *data, size_t n, const char *want, int src_line)
{
    char *path = write_fixture(name, data, n);
    al_sft_dataset d;
    int rc = al_sft_load(&d, path, NULL);
    char full[2048];
    snprintf(full, sizeof full, "%s%s", path, want);
    CHECKF(rc == -1 && strcmp(al_errmsg(), full) == 0, "(line %d)\n  got:  %s\n  want: %s", src_line,
           rc ? al_errmsg() : "(success)", full);
    CHECK(d.n == 0 && d.ex == NULL); /* cleared on failure */
    if (rc == 0)
        al_sft_free(&d);
    free(path);
}
#define expect_error(name, text, want) expect_error_n(name, text, strlen(text), want, __LINE__)

static void test_text(void)
{
    char *path = fixture("text.jsonl", "{\"text\": \"Once upon a time\", \"id\": 7}\n"
                                       "\n"
                                       "   {\"text\": \"h\\u00e9llo\\nworld\"}\r\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.format == AL_SFT_TEXT && d.n == 2 && d.n_skipped == 0);
    if (d.n == 2) {
        CHECK(d.ex[0].format == AL_SFT_TEXT && str_is(d.ex[0].text, "Once upon a time") && d.ex[0].line == 1);
        CHECK(d.ex[0].prompt == NULL && d.ex[0].completion == NULL && d.ex[0].messages == NULL &&
              d.ex[0].n_messages == 0);
        CHECK(str_is(d.ex[1].text, "h\xc3\xa9llo\nworld") && d.ex[1].line == 3);
    }
    al_sft_free(&d);
    CHECK(d.ex == NULL && d.n == 0);
    free(path);
}

static void test_prompt_completion(void)
{
    char *path = fixture("pc.jsonl", "{\"prompt\": \"The sky is\", \"completion\": \" blue.\"}\n"
                                     "{\"prompt\": \"\", \"completion\": \"x\", \"extra\": [1, 2]}\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.format == AL_SFT_PROMPT_COMPLETION && d.n == 2);
    if (d.n == 2) {
        CHECK(str_is(d.ex[0].prompt, "The sky is") && str_is(d.ex[0].completion, " blue.") && !d.ex[0].text);
        CHECK(str_is(d.ex[1].prompt, "") && str_is(d.ex[1].completion, "x") && d.ex[1].line == 2);
        CHECK(d.ex[1].format == AL_SFT_PROMPT_COMPLETION && d.ex[1].n_messages == 0);
    }
    al_sft_free(&d);
    free(path);
}

static void test_messages(void)
{
    char *path = fixture("msgs.jsonl",
                         "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
                         "{\"role\": \"user\", \"content\": \"Hi\"}, "
                         "{\"role\": \"assistant\", \"content\": \"Hello!\", \"name\": \"bot\"}]}\n"
                         "{\"messages\": [{\"role\": \"user\", \"content\": \"\"}, "
                         "{\"role\": \"assistant\", \"content\": \"draft\", \"weight\": 0}, "
                         "{\"role\": \"user\", \"content\": \"again\"}, "
                         "{\"role\": \"assistant\", \"content\": \"ok\", \"weight\": 1}]}\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.format == AL_SFT_MESSAGES && d.n == 2);
    if (d.n == 2) {
        const al_sft_example *e = &d.ex[0];
        CHECK(e->format == AL_SFT_MESSAGES && e->n_messages == 3 && e->n_prompt_messages == 0 && !e->text);
        CHECK(e->messages[0].role == AL_ROLE_SYSTEM && str_is(e->messages[0].content, "Be brief."));
        CHECK(e->messages[1].role == AL_ROLE_USER && str_is(e->messages[1].content, "Hi"));
        CHECK(e->messages[2].role == AL_ROLE_ASSISTANT && str_is(e->messages[2].content, "Hello!"));
        CHECK(d.ex[1].n_messages == 4 && str_is(d.ex[1].messages[0].content, "") && d.ex[1].line == 2);
        CHECK(!e->messages[2].no_loss && d.ex[1].n_messages == 4 && d.ex[1].messages[1].no_loss &&
              !d.ex[1].messages[3].no_loss); /* "weight": 0 shows a turn without training on it */
    }
    al_sft_free(&d);
    free(path);
}

static void test_conv_prompt_completion(void)
{
    char *path = fixture("cpc.jsonl",
                         "{\"prompt\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
                         "\"content\": \"Q\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"A\"}]}\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.format == AL_SFT_CONV_PROMPT_COMPLETION && d.n == 1);
    if (d.n == 1) {
        const al_sft_example *e = &d.ex[0];
        CHECK(e->n_messages == 3 && e->n_prompt_messages == 2 && !e->prompt && !e->completion);
        CHECK(e->messages[0].role == AL_ROLE_SYSTEM && str_is(e->messages[0].content, "S"));
        CHECK(e->messages[1].role == AL_ROLE_USER && str_is(e->messages[1].content, "Q"));
        CHECK(e->messages[2].role == AL_ROLE_ASSISTANT && str_is(e->messages[2].content, "A"));
    }
    al_sft_free(&d);
    free(path);
}

static void test_json_array(void)
{
    char *path = fixture("arr.json", "\n  [\n"
                                     "  {\"prompt\": \"a\", \"completion\": \"b\"},\n"
                                     "  {\n    \"prompt\": \"c\",\n    \"completion\": \"d\"\n  }, {\"prompt\": "
                                     "\"e\", \"completion\": \"f\"}\n]\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.format == AL_SFT_PROMPT_COMPLETION && d.n == 3);
    if (d.n == 3) {
        CHECK(str_is(d.ex[0].prompt, "a") && str_is(d.ex[0].completion, "b") && d.ex[0].line == 3);
        CHECK(str_is(d.ex[1].prompt, "c") && str_is(d.ex[1].completion, "d") && d.ex[1].line == 4);
        CHECK(str_is(d.ex[2].prompt, "e") && str_is(d.ex[2].completion, "f") && d.ex[2].line == 7);
    }
    al_sft_free(&d);
    free(path);

    /* a semantic error inside an array names the element's line and column */
    expect_error("arr_bad.json", "[\n {\"text\": \"a\"},\n   {\"text\": 5}\n]\n",
                 ":3:4: \"text\": expected a string, got a number");
    /* a syntax error inside an array: jansson's line, the token's byte column */
    expect_error("arr_syntax.json", "[\n {\"text\": \"a\"},\n {\"text\" \"b\"}\n]\n",
                 ":3:10: invalid JSON: ':' expected near '\"b\"'");
    expect_error("arr_empty.json", " [ ] ", ": no records (the JSON array is empty)");
    expect_error("arr_nonobj.json", "[{\"text\": \"a\"}, 3]", ":1:17: expected a JSON object (a record), got a number");
    /* max_examples */
    path = fixture("arr_max.json", "[{\"text\": \"a\"}, {\"text\": \"b\"}, {\"text\": \"c\"}]");
    al_sft_load_opts o = {.max_examples = 2};
    CHECK_OK(al_sft_load(&d, path, &o));
    CHECK(d.n == 2);
    al_sft_free(&d);
    free(path);
}

static void test_mixed(void)
{
    expect_error("mixed.jsonl",
                 "{\"text\": \"a\"}\n{\"text\": \"b\"}\n\n  {\"prompt\": \"p\", \"completion\": \"c\"}\n",
                 ":4:3: this record is prompt-completion (\"prompt\" and \"completion\" strings), but the file's "
                 "format is language modelling (\"text\") (from the record on line 1); all records must have the "
                 "same format");
    expect_error("mixed2.jsonl",
                 "{\"prompt\": \"p\", \"completion\": \"c\"}\n"
                 "{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"completion\": [{\"role\": "
                 "\"assistant\", \"content\": \"a\"}]}\n",
                 ":2:1: this record is conversational prompt-completion (\"prompt\" and \"completion\" message "
                 "lists), but the file's format is prompt-completion (\"prompt\" and \"completion\" strings) (from "
                 "the record on line 1); all records must have the same format");
    /* a record with the established format's fields plus others is read in that format */
    char *path = fixture("extra.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\", \"messages\": 1}\n");
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.n == 2 && d.format == AL_SFT_TEXT);
    al_sft_free(&d);
    free(path);
}

static void test_errors(void)
{
    /* not JSON: line and the byte column of the token */
    expect_error("bad1.jsonl", "{\"text\": \"a\"}\n{\"text\": tru}\n", ":2:10: invalid JSON: invalid token near 'tru'");
    expect_error("bad2.jsonl", "{\"text\": \"a\"}\n\n\nnot json\n", ":4:1: invalid JSON: invalid token near 'not'");
    expect_error("bad3.jsonl", "{\"text\": \"\xc3\xa9\" x}\n",
                 ":1:15: invalid JSON: '}' expected near 'x'"); /* bytes, not characters */
    expect_error("bad4.jsonl", "{\"text\": \"a\"\n", ":1:13: invalid JSON: '}' expected near end of line");
    expect_error("bad5.jsonl", "{\"text\": \"a\"} {\"text\": \"b\"}\n",
                 ":1:15: invalid JSON: end of line expected near '{'");
    /* wrong types */
    expect_error("type1.jsonl", "{\"text\": [\"a\"]}\n", ":1:1: \"text\": expected a string, got an array");
    expect_error("type2.jsonl", "{\"prompt\": 1, \"completion\": \"c\"}\n",
                 ":1:1: \"prompt\": expected a string, got a number");
    expect_error("type3.jsonl", "{\"prompt\": \"p\", \"completion\": null}\n",
                 ":1:1: \"completion\": expected a string, got null");
    expect_error("type4.jsonl", "{\"messages\": {\"role\": \"user\"}}\n",
                 ":1:1: \"messages\": expected an array of messages, got an object");
    expect_error("type5.jsonl", "{\"messages\": [\"hi\"]}\n",
                 ":1:1: \"messages\"[0]: expected an object with \"role\" and \"content\", got a string");
    expect_error("type6.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "[\"a\"]}]}\n",
                 ":1:1: \"messages\"[1].content: expected a string, got an array");
    expect_error("type7.jsonl", "{\"messages\": [{\"role\": 1, \"content\": \"q\"}]}\n",
                 ":1:1: \"messages\"[0].role: expected a string, got a number");
    expect_error("type8.jsonl",
                 "{\"prompt\": \"p\", \"completion\": [{\"role\": \"assistant\", \"content\": \"a\"}]}\n",
                 ":1:1: \"prompt\": expected an array of messages, got a string");
    /* missing fields */
    expect_error("miss1.jsonl", "{\"txt\": \"a\"}\n",
                 ":1:1: expected a \"text\", \"prompt\" and \"completion\", or \"messages\" field, got none of them");
    expect_error("miss2.jsonl", "{\"prompt\": \"a\"}\n",
                 ":1:1: missing \"completion\" (a record with \"prompt\" needs both \"prompt\" and \"completion\")");
    expect_error("miss3.jsonl", "{\"messages\": [{\"content\": \"q\"}]}\n", ":1:1: \"messages\"[0]: missing \"role\"");
    expect_error("miss4.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\"}]}\n",
                 ":1:1: \"messages\"[1]: missing \"content\"");
    /* contents */
    expect_error("role.jsonl",
                 "{\"text\": \"x\"}\n"
                 "{\"text\": \"y\"}\n\n\n\n\n"
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\"}, {\"role\": \"bot\", \"content\": \"z\"}]}\n",
                 ":7:1: this record is conversational (\"messages\"), but the file's format is language modelling "
                 "(\"text\") (from the record on line 1); all records must have the same format");
    expect_error("role2.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\"}]}\n\n\n\n\n\n"
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\"}, {\"role\": \"bot\", \"content\": \"z\"}]}\n",
                 ":7:1: \"messages\"[2].role: expected \"system\", \"user\" or \"assistant\", got \"bot\"");
    expect_error("weight2.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
                 "\"content\": \"a\", \"weight\": 0.5}]}\n",
                 ":1:1: \"messages\"[1].weight: expected 0 or 1, got a number");
    expect_error("weight3.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
                 "\"content\": \"a\", \"weight\": 2}]}\n",
                 ":1:1: \"messages\"[1].weight: expected 0 or 1, got another number");
    expect_error("empty_msgs.jsonl", "{\"messages\": []}\n",
                 ":1:1: \"messages\": expected at least one message, got an empty array");
    expect_error("no_asst.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n",
                 ":1:1: \"messages\": expected at least one \"assistant\" message, got none");
    expect_error("end_user.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\"}, {\"role\": \"user\", \"content\": \"q2\"}]}\n",
                 ":1:1: \"messages\"[2]: expected the conversation to end with an \"assistant\" message, got \"user\"");
    expect_error("cpc_noasst.jsonl",
                 "{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"completion\": [{\"role\": \"user\", "
                 "\"content\": \"a\"}]}\n",
                 ":1:1: \"completion\": expected at least one \"assistant\" message, got none");
    expect_error("empty_compl.jsonl", "{\"prompt\": \"p\", \"completion\": \"\"}\n",
                 ":1:1: \"completion\": expected a non-empty string, got \"\" (only the prompt may be empty)");
    expect_error("empty_text.jsonl", "  {\"text\": \"\"}\n", ":1:3: \"text\": expected a non-empty string, got \"\"");
    /* empty files */
    expect_error("empty.jsonl", "", ": no records (expected JSON lines or a JSON array)");
    expect_error("blank.jsonl", "\n  \n\r\n", ": no records (expected JSON lines or a JSON array)");
    /* bytes */
    expect_error("utf8.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"caf\xc3\xa9 \xff\"}\n", ":2:17: invalid UTF-8");
    expect_error("utf8b.jsonl", "{\"text\": \"\xe2\x82\"}\n", ":1:11: invalid UTF-8"); /* truncated sequence */
    expect_error_n("nul.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"a\0b\"}\n", 31,
                   ":2:12: unexpected NUL byte (JSON text cannot hold one; write \\u0000 inside a string)", __LINE__);
    expect_error("utf8arr.json", "[\n{\"text\": \"\xc0\xaf\"}]", ":2:11: invalid UTF-8"); /* overlong */
    /* records that are not objects */
    expect_error("nonobj1.jsonl", "{\"text\": \"a\"}\n[1, 2]\n", ":2:1: expected a JSON object (a record), got an array");
    expect_error("nonobj2.jsonl", "  \"just a string\"\n", ":1:3: expected a JSON object (a record), got a string");
    /* a missing file */
    al_sft_dataset d;
    char *missing = al_path_join(tmp, "nope.jsonl");
    CHECK(al_sft_load(&d, missing, NULL) == -1 && strstr(al_errmsg(), "nope.jsonl") != NULL);
    free(missing);
}

static void test_skip_bad_lines(void)
{
    static const char skip_data[] = "{\"text\": \"one\"}\n"
                               "{\"text\": 5}\n"
                               "not json\n"
                               "\n"
                               "{\"text\": \"two\"}\n"
                               "{\"text\": \"\xff\"}\n"
                               "{\"prompt\": \"p\", \"completion\": \"c\"}\n"
                               "{\"text\": \"a\0\"}\n"
                               "{\"text\": \"three\"}\n";
    char *path = write_fixture("skip.jsonl", skip_data, sizeof skip_data - 1);
    al_sft_dataset d;
    CHECK(al_sft_load(&d, path, NULL) == -1 && strstr(al_errmsg(), "skip.jsonl:2:1: ") != NULL);
    al_sft_load_opts o = {.skip_bad_lines = true};
    CHECK_OK(al_sft_load(&d, path, &o));
    CHECK(d.n == 3 && d.format == AL_SFT_TEXT);
    CHECKF(d.n_skipped == 5 && d.n_skipped_lines_stored == 5, "skipped %d, stored %d", d.n_skipped,
           d.n_skipped_lines_stored);
    if (d.n_skipped_lines_stored == 5) {
        long want[5] = {2, 3, 6, 7, 8};
        for (int i = 0; i < 5; i++)
            CHECKF(d.skipped_lines[i] == want[i], "skipped_lines[%d] = %ld", i, d.skipped_lines[i]);
    }
    if (d.n == 3)
        CHECK(str_is(d.ex[0].text, "one") && str_is(d.ex[1].text, "two") && str_is(d.ex[2].text, "three") &&
              d.ex[2].line == 9);
    al_sft_free(&d);
    free(path);

    /* a bad first record does not set the format */
    path = fixture("skip_first.jsonl", "{\"prompt\": 1, \"completion\": \"x\"}\n{\"text\": \"t\"}\n");
    CHECK_OK(al_sft_load(&d, path, &o));
    CHECK(d.n == 1 && d.format == AL_SFT_TEXT && d.n_skipped == 1 && d.skipped_lines[0] == 1);
    al_sft_free(&d);
    free(path);

    /* more than 100 bad lines: all counted, the first 100 listed */
    al_buf b = {0};
    for (int i = 0; i < 150; i++)
        al_buf_printf(&b, i % 3 == 0 ? "{\"text\": \"ok %d\"}\n" : "{\"text\": %d}\n", i);
    path = write_fixture("skip_many.jsonl", b.data, b.len);
    al_buf_free(&b);
    CHECK_OK(al_sft_load(&d, path, &o));
    CHECK(d.n == 50 && d.n_skipped == 100 && d.n_skipped_lines_stored == 100);
    al_sft_free(&d);
    free(path);

    /* all bad */
    path = fixture("all_bad.jsonl", "1\n2\n");
    CHECK(al_sft_load(&d, path, &o) == -1 && strstr(al_errmsg(), "no records left: all 2 were bad and skipped"));
    free(path);
}

static bool same_example(const al_sft_example *a, const al_sft_example *b)
{
    if (a->format != b->format || a->line != b->line || a->n_messages != b->n_messages ||
        a->n_prompt_messages != b->n_prompt_messages)
        return false;
    if ((a->text || b->text) && !str_is(a->text, b->text))
        return false;
    for (int i = 0; i < a->n_messages; i++)
        if (a->messages[i].role != b->messages[i].role || a->messages[i].no_loss != b->messages[i].no_loss ||
            !str_is(a->messages[i].content, b->messages[i].content) ||
            a->messages[i].content == b->messages[i].content) /* deep copies */
            return false;
    return true;
}

/* A generated 2,000-line conversational file: counts, the split and max_examples. */
static void test_large_and_split(void)
{
    al_buf b = {0};
    int n_lines = 2000;
    for (int i = 0; i < n_lines; i++) {
        if (i % 250 == 7)
            al_buf_printf(&b, "\n"); /* blank lines do not count */
        al_buf_printf(&b,
                      "{\"id\": %d, \"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"}, "
                      "{\"role\": \"user\", \"content\": \"What is %d + %d?\"}, "
                      "{\"role\": \"assistant\", \"content\": \"%d \\u2014 done.\"}%s]}\n",
                      i, i, i % 7, i + i % 7,
                      i % 2 ? ", {\"role\": \"user\", \"content\": \"thanks\"}, {\"role\": \"assistant\", "
                              "\"content\": \"you're welcome\", \"weight\": 0}"
                            : "");
    }
    char *path = write_fixture("big.jsonl", b.data, b.len);
    al_buf_free(&b);
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path, NULL));
    CHECK(d.n == n_lines && d.format == AL_SFT_MESSAGES && d.n_skipped == 0);
    int total_msgs = 0;
    bool ok = true;
    for (int i = 0; i < d.n; i++) {
        total_msgs += d.ex[i].n_messages;
        char want[64];
        snprintf(want, sizeof want, "%d \xe2\x80\x94 done.", i + i % 7);
        ok &= str_is(d.ex[i].messages[2].content, want);
    }
    CHECK(ok);
    CHECK(total_msgs == 1000 * 3 + 1000 * 5);
    if (d.n == n_lines)
        CHECK(d.ex[0].line == 1 && d.ex[7].line == 9 && d.ex[n_lines - 1].line == n_lines + 8);

    al_sft_dataset tr, ho, tr2, ho2;
    CHECK_OK(al_sft_split(&d, 0.1, 42, &tr, &ho));
    CHECK(tr.n == 1800 && ho.n == 200 && tr.format == AL_SFT_MESSAGES && ho.format == AL_SFT_MESSAGES);
    /* disjoint and covering: every source line once, in file order within each part */
    char *seen = calloc((size_t)n_lines + 16, 1);
    bool order = true, same = true;
    for (int i = 0; i < tr.n; i++) {
        seen[tr.ex[i].line]++;
        order &= i == 0 || tr.ex[i - 1].line < tr.ex[i].line;
    }
    for (int i = 0; i < ho.n; i++) {
        seen[ho.ex[i].line]++;
        order &= i == 0 || ho.ex[i - 1].line < ho.ex[i].line;
    }
    int covered = 0;
    for (int i = 0; i < d.n; i++) {
        covered += seen[d.ex[i].line] == 1;
        seen[d.ex[i].line] = 0;
    }
    for (int i = 0; i < n_lines + 16; i++)
        same &= seen[i] == 0; /* nothing that is not in the source */
    CHECK(covered == n_lines && same && order);
    free(seen);
    /* deep copies equal to their sources */
    int k = 0;
    ok = true;
    for (int i = 0; i < tr.n; i++) {
        while (k < d.n && d.ex[k].line != tr.ex[i].line)
            k++;
        ok &= k < d.n && same_example(&tr.ex[i], &d.ex[k]);
    }
    CHECK(ok);
    /* deterministic; another seed gives another split */
    CHECK_OK(al_sft_split(&d, 0.1, 42, &tr2, &ho2));
    same = tr2.n == tr.n && ho2.n == ho.n;
    for (int i = 0; same && i < ho.n; i++)
        same = ho.ex[i].line == ho2.ex[i].line;
    CHECK(same);
    al_sft_free(&tr2);
    al_sft_free(&ho2);
    CHECK_OK(al_sft_split(&d, 0.1, 43, &tr2, &ho2));
    same = ho2.n == ho.n;
    for (int i = 0; same && i < ho.n; i++)
        same = ho.ex[i].line == ho2.ex[i].line;
    CHECK(!same);
    al_sft_free(&tr2);
    al_sft_free(&ho2);
    al_sft_free(&tr);
    al_sft_free(&ho);
    /* edge fractions */
    CHECK_OK(al_sft_split(&d, 0.0, 1, &tr, &ho));
    CHECK(tr.n == n_lines && ho.n == 0);
    al_sft_free(&tr);
    al_sft_free(&ho);
    CHECK_OK(al_sft_split(&d, 0.0001, 1, &tr, &ho));
    CHECK(tr.n == n_lines - 1 && ho.n == 1);
    al_sft_free(&tr);
    al_sft_free(&ho);
    CHECK(al_sft_split(&d, 1.0, 1, &tr, &ho) == -1 && strstr(al_errmsg(), "not in [0, 1)"));
    CHECK(al_sft_split(&d, -0.5, 1, &tr, &ho) == -1);
    al_sft_free(&d);

    al_sft_load_opts o = {.max_examples = 123};
    CHECK_OK(al_sft_load(&d, path, &o));
    CHECK(d.n == 123);
    al_sft_free(&d);
    free(path);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("sft_dataset"));
    test_text();
    test_prompt_completion();
    test_messages();
    test_conv_prompt_completion();
    test_json_array();
    test_mixed();
    test_errors();
    test_skip_bad_lines();
    test_large_and_split();
    if (test_failed == 0) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", tmp);
    }
    return test_report();
}

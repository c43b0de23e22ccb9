/* Preference datasets: TRL's formats, implicit prompts (HH-RLHF), soft labels, KTO
 * records, gzip files, located errors, tokenization and truncation, the synthetic task. */
#include <zlib.h>

#include "align/data.h"
#include "test.h"

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_shared_prefix(void)
{
    /* TRL: the prefix ends before the space where the texts part */
    CHECK(al_pref_shared_prefix("Q: hi A: yes", "Q: hi A: no") == 8);
    /* HH-RLHF: cut back to just after the last assistant marker */
    const char *c = "\n\nHuman: hello?\n\nAssistant: Hello there, friend.";
    const char *r = "\n\nHuman: hello?\n\nAssistant: Hello you.";
    size_t k = al_pref_shared_prefix(c, r);
    CHECKF(k == strlen("\n\nHuman: hello?\n\nAssistant:"), "prefix %zu", k);
    /* never inside a UTF-8 character: "é" (C3 A9) and "è" (C3 A8) share their first byte */
    CHECK(al_pref_shared_prefix("caf\xC3\xA9", "caf\xC3\xA8") == 3);
}

static void test_formats(void)
{
    al_pref_dataset d;
    const char *p = write_tmp("std.jsonl", "{\"prompt\": \"2+2=\", \"chosen\": \" 4\", \"rejected\": \" 5\"}\n"
                                           "\n"
                                           "{\"prompt\": \"Hi\", \"chosen\": \" Hello\", \"rejected\": \" Go\", "
                                           "\"label\": 0.8, \"margin\": 1.5}\n");
    CHECK_OK(al_pref_load(&d, p, NULL));
    CHECK(d.n == 2 && d.paired && !d.conversational);
    CHECK(!strcmp(d.ex[0].prompt, "2+2=") && !strcmp(d.ex[0].chosen, " 4") && d.ex[0].label == 1);
    CHECK(d.ex[1].label == 0.8 && d.ex[1].margin == 1.5 && d.ex[1].line == 3);
    al_pref_free(&d);

    p = write_tmp("conv.jsonl",
                  "{\"chosen\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": "
                  "\"Hello!\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
                  "\"content\": \"Go away.\"}]}\n");
    CHECK_OK(al_pref_load(&d, p, NULL));
    CHECK(d.n == 1 && d.conversational && d.ex[0].implicit_prompt);
    CHECK(d.ex[0].n_prompt_msgs == 1 && d.ex[0].n_chosen_msgs == 1 && d.ex[0].n_rejected_msgs == 1);
    CHECK(!strcmp(d.ex[0].prompt_msgs[0].content, "Hi") && !strcmp(d.ex[0].rejected_msgs[0].content, "Go away."));
    al_pref_free(&d);

    p = write_tmp("kto.jsonl", "{\"prompt\": \"Hi\", \"completion\": \" Hello\", \"label\": true}\n"
                               "{\"prompt\": \"Hi\", \"completion\": \" Go\", \"label\": false}\n");
    CHECK_OK(al_pref_load(&d, p, NULL));
    CHECK(d.n == 2 && !d.paired && d.ex[0].label == 1 && d.ex[1].label == 0 && !strcmp(d.ex[1].chosen, " Go"));
    al_pref_free(&d);
}

/* Each bad record is named by file, line and column, and says what was expected. */
static void expect_error(const char *name, const char *text, const char *want)
{
    al_pref_dataset d;
    const char *p = write_tmp(name, text);
    CHECKF(al_pref_load(&d, p, NULL) != 0, "%s loaded", name);
    CHECKF(strstr(al_errmsg(), want) != NULL, "%s: got '%s', want '%s'", name, al_errmsg(), want);
}

static void test_errors(void)
{
    expect_error("e1.jsonl", "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n{\"prompt\": \"a\", "
                             "\"chosen\": \" b\"}\n",
                 "e1.jsonl:2:1: missing \"rejected\"");
    expect_error("e2.jsonl", "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"label\": 2}\n",
                 "e2.jsonl:1:1: \"label\": expected true, false or a probability in [0, 1]");
    expect_error("e3.jsonl", "{\"chosen\": \"same\", \"rejected\": \"same\"}\n", "are identical");
    expect_error("e4.jsonl", "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n{\"prompt\": \"a\", "
                             "\"completion\": \" b\", \"label\": true}\n",
                 "e4.jsonl:2:1: this record holds unpaired examples (\"completion\" strings with \"label\"), but the file holds pairs");
    expect_error("e5.jsonl", "  {\"prompt\": \"a\", \"chosen\": 3, \"rejected\": \" c\"}\n",
                 "e5.jsonl:1:3: \"chosen\": expected a string, got a number");
    expect_error("e6.jsonl", "{\"prompt\": \"a\", \"completion\": \" b\"}\n", "missing \"label\"");
    /* skipping bad lines keeps the good ones and lists the bad */
    al_pref_dataset d;
    const char *p = write_tmp("skip.jsonl", "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n"
                                            "{oops\n"
                                            "{\"prompt\": \"a\", \"chosen\": \" d\", \"rejected\": \" e\"}\n");
    al_sft_load_opts lo = {.skip_bad_lines = true};
    CHECK_OK(al_pref_load(&d, p, &lo));
    CHECK(d.n == 2 && d.n_skipped == 1 && d.skipped_lines[0] == 2);
    al_pref_free(&d);
}

static void test_gzip(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pairs.jsonl.gz", tmpdir);
    gzFile gz = gzopen(path, "wb");
    gzputs(gz, "{\"prompt\": \"x\", \"chosen\": \" y\", \"rejected\": \" z\"}\n");
    gzclose(gz);
    al_pref_dataset d;
    CHECK_OK(al_pref_load(&d, path, NULL));
    CHECK(d.n == 1 && !strcmp(d.ex[0].rejected, " z"));
    al_pref_free(&d);
}

static void test_tokenize(void)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, shared_path("models/stories260K/tok512.bin")));
    al_pref_example e = {.prompt = "Once upon a time there was a little girl named Lily.",
                         .chosen = " She liked to play.", .rejected = " She was sad.", .label = 1};
    al_pref_tokens full, cut;
    CHECK_OK(al_pref_tokenize(&e, NULL, tok, 1000, &full));
    CHECK(!full.truncated && full.chosen.n == full.chosen_mask.n);
    int answer = 0;
    for (int i = 0; i < full.chosen_mask.n; i++)
        answer += full.chosen_mask.v[i];
    CHECK(answer > 0 && full.chosen_mask.v[full.chosen.n - 1] == 1 && full.chosen_mask.v[1] == 0);
    /* too long: prompt tokens go from the front (after BOS); the answer stays whole */
    int max_len = answer + 3;
    CHECK_OK(al_pref_tokenize(&e, NULL, tok, max_len, &cut));
    CHECK(cut.truncated && cut.chosen.n == max_len);
    CHECK(cut.chosen.v[0] == full.chosen.v[0]); /* BOS */
    CHECK(!memcmp(cut.chosen.v + 1, full.chosen.v + full.chosen.n - (max_len - 1), (size_t)(max_len - 1) * sizeof(int)));
    al_pref_tokens_free(&full);
    al_pref_tokens_free(&cut);
    al_tokenizer_free(tok);
}

static void test_hh_rlhf(void)
{
    al_pref_dataset d;
    CHECK_OK(al_pref_load(&d, shared_path("data/safety/hh_rlhf/harmless-base/test.jsonl.gz"), NULL));
    CHECKF(d.n == 2312, "%d pairs", d.n);
    int implicit = 0, ends = 0;
    for (int i = 0; i < d.n; i++) {
        implicit += d.ex[i].implicit_prompt;
        size_t n = strlen(d.ex[i].prompt);
        ends += n >= 10 && !strcmp(d.ex[i].prompt + n - 10, "Assistant:");
    }
    CHECK(implicit == d.n);
    CHECKF(ends == d.n, "%d of %d prompts end with the assistant marker", ends, d.n);
    al_pref_free(&d);
}

static void test_split_and_synthetic(void)
{
    al_ints a = {0}, b = {0}, c = {0}, e = {0};
    CHECK_OK(al_split_indices(100, 0.2, 7, &a, &b));
    CHECK(a.n == 80 && b.n == 20);
    CHECK_OK(al_split_indices(100, 0.2, 7, &c, &e));
    CHECK(!memcmp(b.v, e.v, 20 * sizeof(int)));
    al_ints_free(&a), al_ints_free(&b), al_ints_free(&c), al_ints_free(&e);

    char dir1[300], dir2[300];
    snprintf(dir1, sizeof dir1, "%s/synth1", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/synth2", tmpdir);
    CHECK_OK(al_synth_pref_write(dir1, 5, 200, 50));
    CHECK_OK(al_synth_pref_write(dir2, 5, 200, 50));
    al_buf x = {0}, y = {0};
    char p1[400], p2[400];
    snprintf(p1, sizeof p1, "%s/pref.jsonl", dir1);
    snprintf(p2, sizeof p2, "%s/pref.jsonl", dir2);
    CHECK_OK(al_read_file(p1, &x));
    CHECK_OK(al_read_file(p2, &y));
    CHECK(x.len == y.len && !memcmp(x.data, y.data, x.len)); /* same seed, same bytes */
    al_pref_dataset tr, ho;
    snprintf(p2, sizeof p2, "%s/pref_heldout.jsonl", dir1);
    CHECK_OK(al_pref_load(&tr, p1, NULL));
    CHECK_OK(al_pref_load(&ho, p2, NULL));
    CHECK(tr.n == 200 && ho.n == 50);
    int shared = 0;
    for (int i = 0; i < ho.n; i++)
        for (int j = 0; j < tr.n; j++)
            shared += !strcmp(ho.ex[i].prompt, tr.ex[j].prompt);
    CHECK(shared == 0);
    al_pref_free(&tr);
    al_pref_free(&ho);
    al_buf_free(&x);
    al_buf_free(&y);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/align_test_pref_data_%d", (int)getpid());
    al_mkdir_p(tmpdir);
    test_shared_prefix();
    test_formats();
    test_errors();
    test_gzip();
    test_tokenize();
    test_hh_rlhf();
    test_split_and_synthetic();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {
    }
    return test_report();
}

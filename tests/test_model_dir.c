/* A model directory is usable alone: what trainers write beside the weights (tokenizer,
 * tokenizer_config.json with the chat template and the special tokens) loads back to the
 * same tokenizer and template; `align chat -m DIR` and `align generate -m DIR` need no other
 * flag; a reply limit beyond the context is clipped with a note. */
#include <sys/wait.h>

#include "align/data.h"
#include "align/train.h"
#include "test.h"

static const char *dir;

/* Every escape the template-file format has, non-ASCII text, and EOS insertion. */
static const char *template_text = "# a test template\n"
                                   "name = \"tiny\"\n"
                                   "system_prefix = \"<|s|>\\t\\\"q\\\" \\\\ \\x01 caf\xc3\xa9 {{ }} %}\"\n"
                                   "system_suffix = \"<|e|>\"\n"
                                   "user_prefix = \"<|u|>\"\n"
                                   "user_suffix = \"<|e|>\"\n"
                                   "assistant_prefix = \"<|a|>\"\n"
                                   "assistant_suffix = \"<|e|>\"\n"
                                   "assistant_trailer = \"\\r\\n\"\n"
                                   "generation_prompt = \"<|a|>\"\n"
                                   "special = \"<|u|>\"\n"
                                   "special = \"<|a|>\"\n"
                                   "special = \"<|e|>\"\n"
                                   "eos = true\n";

static char *path_in(const char *name)
{
    static char buf[8][1300];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1300, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

typedef struct run_result {
    int code;
    al_buf out, err;
} run_result;

/* `align ARGS` with stdin from `input` (NULL: /dev/null), capturing stdout and stderr. */
static run_result run_align(const char *args, const char *input)
{
    run_result r = {0};
    char cmd[8192], in[1300];
    snprintf(in, sizeof in, "%s", input ? path_in("stdin.txt") : "/dev/null");
    if (input)
        write_file(in, input);
    snprintf(cmd, sizeof cmd, "%s %s <%s >%s 2>%s", ALIGN_BINARY, args, in, path_in("run.out"), path_in("run.err"));
    int st = system(cmd);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    al_read_file(path_in("run.out"), &r.out);
    al_read_file(path_in("run.err"), &r.err);
    return r;
}

static void free_result(run_result *r)
{
    al_buf_free(&r->out);
    al_buf_free(&r->err);
}

static bool has(const al_buf *b, const char *s) { return b->data && strstr(b->data, s); }

static const al_message convo[] = {{.role = AL_ROLE_SYSTEM, .content = "Be brief."},
                                   {.role = AL_ROLE_USER, .content = "Say 3."},
                                   {.role = AL_ROLE_ASSISTANT, .content = "3."},
                                   {.role = AL_ROLE_USER, .content = "Say 4."}};

/* Two templates are the same when they render, mark and tokenize a conversation alike. */
static bool same_template(const al_chat_template *a, const al_chat_template *b, const al_tokenizer *tok)
{
    al_buf ta = {0}, tb = {0};
    al_ints ia = {0}, ma = {0}, ib = {0}, mb = {0};
    int sa[4], ea[4], sb[4], eb[4];
    bool same = al_chat_render(a, convo, 4, true, &ta, sa, ea) == 0 && al_chat_render(b, convo, 4, true, &tb, sb, eb) == 0 &&
                ta.len == tb.len && memcmp(ta.data, tb.data, ta.len) == 0 && !memcmp(sa, sb, sizeof sa) &&
                !memcmp(ea, eb, sizeof ea) && !strcmp(al_chat_template_name(a), al_chat_template_name(b)) &&
                al_chat_template_adds_bos(a) == al_chat_template_adds_bos(b);
    const char **xa, **xb;
    int na, nb;
    al_chat_template_specials(a, &xa, &na);
    al_chat_template_specials(b, &xb, &nb);
    same = same && na == nb;
    for (int i = 0; same && i < na; i++)
        same = !strcmp(xa[i], xb[i]);
    same = same && al_chat_tokenize(a, tok, convo, 3, AL_MASK_ASSISTANT, &ia, &ma) == 0 &&
           al_chat_tokenize(b, tok, convo, 3, AL_MASK_ASSISTANT, &ib, &mb) == 0 && ia.n == ib.n &&
           !memcmp(ia.v, ib.v, (size_t)ia.n * sizeof(int)) && !memcmp(ma.v, mb.v, (size_t)ma.n * sizeof(int));
    al_buf_free(&ta), al_buf_free(&tb);
    al_ints_free(&ia), al_ints_free(&ma), al_ints_free(&ib), al_ints_free(&mb);
    return same;
}

/* Saves tok + tmpl into a fresh directory, loads them back the way `align chat` does, and
 * checks the template and the split-out markers survived. */
static void check_round_trip(const char *name, al_tokenizer *tok, const al_chat_template *tmpl)
{
    char *out = path_in(name);
    CHECK_OK(al_model_dir_save_tokenizer(out, tok, tmpl));
    char *found = al_model_dir_find_tokenizer(out);
    CHECKF(found != NULL, "%s: no tokenizer written", name);
    al_tokenizer *back = NULL;
    al_chat_template *t2 = NULL;
    if (found)
        CHECK_OK(al_tokenizer_load(&back, found));
    if (back)
        CHECK_OK(al_model_dir_load_config(out, back, &t2, NULL));
    CHECKF(t2 && same_template(tmpl, t2, back), "%s: the template did not round-trip", name);
    if (back) {
        CHECK(al_tokenizer_vocab_size(back) == al_tokenizer_vocab_size(tok));
        /* markers stay special: encode splits them out as the ids training used */
        al_ints ids = {0};
        CHECK_OK(al_tokenizer_encode(back, "x<|e|>y", 7, false, false, &ids));
        int e = al_tokenizer_find(tok, "<|e|>", 5);
        bool split = false;
        for (int i = 0; i < ids.n; i++)
            split |= ids.v[i] == e;
        CHECKF(e >= 0 && split, "%s: <|e|> is not split out after a reload", name);
        al_ints_free(&ids);
    }
    al_chat_template_free(t2);
    al_tokenizer_free(back);
    free(found);
}

static void test_library_round_trip(void)
{
    write_file(path_in("tiny.tpl"), template_text);
    al_chat_template *tmpl = NULL;
    CHECK_OK(al_chat_template_load(&tmpl, path_in("tiny.tpl")));
    /* SentencePiece (tokenizer.bin, where the format itself cannot mark specials) and
     * byte-level (tokenizer.json) */
    const char *toks[] = {"models/stories260K/tok512.bin", "models/gpt2-tokenizer/encoder.json"};
    for (int k = 0; k < 2 && tmpl; k++) {
        al_tokenizer *tok = NULL;
        CHECK_OK(al_tokenizer_load(&tok, shared_path(toks[k])));
        const char **markers;
        int n;
        al_chat_template_specials(tmpl, &markers, &n);
        for (int i = 0; tok && i < n; i++)
            CHECK_OK(al_tokenizer_add_special(tok, markers[i], NULL));
        if (tok)
            check_round_trip(k ? "bytelevel" : "spm", tok, tmpl);
        al_tokenizer_free(tok);
    }
    /* built-in templates are saved by name */
    al_tokenizer *tok = NULL;
    CHECK_OK(al_tokenizer_load(&tok, shared_path("models/stories260K/tok512.bin")));
    const char *names[] = {"chatml", "llama2"};
    for (int k = 0; k < 2 && tok; k++) {
        al_chat_template *b = NULL, *back = NULL;
        CHECK_OK(al_chat_template_builtin(&b, names[k]));
        CHECK_OK(al_model_dir_save_tokenizer(path_in(names[k]), tok, b));
        CHECK_OK(al_model_dir_load_config(path_in(names[k]), NULL, &back, NULL));
        CHECKF(back && al_chat_template_builtin_name(back) && !strcmp(al_chat_template_builtin_name(back), names[k]),
               "built-in %s did not round-trip", names[k]);
        al_chat_template_free(b);
        al_chat_template_free(back);
    }
    /* no template: none comes back; an HF config with only Jinja is told apart */
    al_chat_template *none = NULL;
    bool jinja_only = true;
    CHECK_OK(al_model_dir_save_tokenizer(path_in("plain"), tok, NULL));
    CHECK_OK(al_model_dir_load_config(path_in("plain"), NULL, &none, &jinja_only));
    CHECK(none == NULL && !jinja_only);
    al_mkdir_p(path_in("hf"));
    write_file(path_in("hf/tokenizer_config.json"), "{\"chat_template\": \"{{ messages }}\"}");
    CHECK_OK(al_model_dir_load_config(path_in("hf"), NULL, &none, &jinja_only));
    CHECK(none == NULL && jinja_only);
    /* a listed special the tokenizer lacks is an error naming the file */
    write_file(path_in("hf/tokenizer_config.json"), "{\"additional_special_tokens\": [\"<|nope|>\"]}");
    CHECK(al_model_dir_load_config(path_in("hf"), tok, NULL, NULL) != 0 && strstr(al_errmsg(), "tokenizer_config.json") &&
          strstr(al_errmsg(), "<|nope|>"));
    al_tokenizer_free(tok);
    al_chat_template_free(tmpl);
}

/* Trains a tiny chat model from scratch with the template file: its final directory and
 * its checkpoints carry the tokenizer and template, and the CLI uses them with only -m. */
static void test_trained_dir(void)
{
    FILE *f = fopen(path_in("conv.jsonl"), "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"Say %d.\"}, "
                   "{\"role\": \"assistant\", \"content\": \"%d.\"}]}\n",
                i % 10, i % 10);
    fclose(f);
    f = fopen(path_in("prefs.jsonl"), "w");
    for (int i = 0; i < 12; i++)
        fprintf(f, "{\"prompt\": [{\"role\": \"user\", \"content\": \"Say %d.\"}], \"chosen\": [{\"role\": "
                   "\"assistant\", \"content\": \"%d.\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"No.\"}]}\n",
                i % 10, i % 10);
    fclose(f);
    write_file(path_in("arch.json"),
               "{\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 512,"
               " \"max_position_embeddings\": 64, \"tie_word_embeddings\": true}\n");
    char args[8192];
    snprintf(args, sizeof args,
             "sft --model-config %s -z %s --data %s --out %s --chat-template %s --steps 12 --lr 3e-3 --batch-size 8 "
             "--seq-len 64 --packing --save-every 6 --quiet",
             path_in("arch.json"), shared_path("models/stories260K/tok512.bin"), path_in("conv.jsonl"),
             path_in("sft"), path_in("tiny.tpl"));
    run_result r = run_align(args, NULL);
    CHECKF(r.code == 0, "sft failed: %s", r.err.data ? r.err.data : "");
    free_result(&r);
    const char *files[] = {"sft/final/tokenizer.bin", "sft/final/tokenizer_config.json",
                           "sft/checkpoints/step_00000006/tokenizer.bin",
                           "sft/checkpoints/step_00000006/tokenizer_config.json"};
    for (int i = 0; i < 4; i++)
        CHECKF(al_file_exists(path_in(files[i])), "%s missing", files[i]);

    al_chat_template *want = NULL, *got = NULL;
    al_tokenizer *tok = NULL;
    CHECK_OK(al_chat_template_load(&want, path_in("tiny.tpl")));
    CHECK_OK(al_tokenizer_load(&tok, path_in("sft/final/tokenizer.bin")));
    if (tok)
        CHECK_OK(al_model_dir_load_config(path_in("sft/final"), tok, &got, NULL));
    CHECKF(want && got && tok && same_template(want, got, tok), "sft/final: the template did not round-trip");
    al_chat_template_free(want);
    al_chat_template_free(got);
    al_tokenizer_free(tok);

    /* chat and generate with only -m */
    snprintf(args, sizeof args, "chat -m %s -t 0", path_in("sft/final"));
    r = run_align(args, "Say 3.\n/reset\nSay 4.\n");
    CHECKF(r.code == 0 && has(&r.err, "chat template 'tiny' (saved with the model)") &&
               has(&r.out, "(conversation cleared)"),
           "chat -m DIR: exit %d\n%s%s", r.code, r.err.data ? r.err.data : "", r.out.data ? r.out.data : "");
    free_result(&r);
    snprintf(args, sizeof args, "generate -m %s -t 0 -n 8 -i 'Say 3.'", path_in("sft/final"));
    r = run_align(args, NULL);
    CHECKF(r.code == 0 && r.out.data && !strncmp(r.out.data, "Say 3.", 6), "generate -m DIR: exit %d: %s", r.code,
           r.err.data ? r.err.data : "");
    free_result(&r);
    /* --chat: only the reply is printed, never the template's markers */
    snprintf(args, sizeof args, "generate -m %s --chat -t 0 -n 8 -i 'Say 3.'", path_in("sft/checkpoints/step_00000006"));
    r = run_align(args, NULL);
    CHECKF(r.code == 0 && !has(&r.out, "Say 3.") && !has(&r.out, "<|"), "generate --chat: exit %d: %s%s", r.code,
           r.out.data ? r.out.data : "", r.err.data ? r.err.data : "");
    free_result(&r);

    /* the preference trainer and convert carry them on */
    snprintf(args, sizeof args,
             "dpo --data %s -m %s -z %s --out %s --chat-template %s --steps 2 --batch-size 2 --seq-len 32 --quiet",
             path_in("prefs.jsonl"), path_in("sft/final"), path_in("sft/final/tokenizer.bin"), path_in("dpo"),
             path_in("tiny.tpl"));
    r = run_align(args, NULL);
    CHECKF(r.code == 0, "dpo failed: %s", r.err.data ? r.err.data : "");
    free_result(&r);
    snprintf(args, sizeof args, "convert -m %s -o %s", path_in("dpo/final"), path_in("conv"));
    r = run_align(args, NULL);
    CHECK(r.code == 0);
    free_result(&r);
    al_buf a = {0}, b = {0};
    al_read_file(path_in("sft/final/tokenizer_config.json"), &a);
    al_read_file(path_in("conv/tokenizer_config.json"), &b);
    CHECKF(a.len > 0 && a.len == b.len && !memcmp(a.data, b.data, a.len),
           "dpo -> convert: tokenizer_config.json differs from the SFT run's:\n%s", b.data ? b.data : "");
    al_buf_free(&a), al_buf_free(&b);
    snprintf(args, sizeof args, "chat -m %s -t 0", path_in("conv"));
    r = run_align(args, "Say 5.\n");
    CHECKF(r.code == 0 && has(&r.err, "'tiny' (saved with the model)"), "chat on the converted DPO model: %s",
           r.err.data ? r.err.data : "");
    free_result(&r);
}

/* A reply limit beyond the context is clipped to what is left, with a note; only a prompt
 * that leaves nothing is an error. */
static void test_clip(void)
{
    char args[4096];
    snprintf(args, sizeof args, "chat -m %s -t 0 -n 100000", path_in("sft/final"));
    run_result r = run_align(args, "Say 3.\n");
    CHECKF(r.code == 0 && has(&r.err, "-n clipped to ") && has(&r.err, "of the model's 64 positions"),
           "chat -n beyond the context: exit %d: %s", r.code, r.err.data ? r.err.data : "");
    free_result(&r);
    snprintf(args, sizeof args, "generate -m %s -t 0 -n 100000 -i 'Say 3.'", path_in("sft/final"));
    r = run_align(args, NULL);
    CHECKF(r.code == 0 && has(&r.err, "-n clipped to ") && has(&r.out, "Say 3."), "generate -n beyond the context: exit %d: %s",
           r.code, r.err.data ? r.err.data : "");
    free_result(&r);
    /* the default reply cap (half the context) fits a short conversation: no note */
    snprintf(args, sizeof args, "chat -m %s -t 0", path_in("sft/final"));
    r = run_align(args, "Say 3.\n");
    CHECKF(r.code == 0 && !has(&r.err, "clipped"), "chat with the default -n: %s", r.err.data ? r.err.data : "");
    free_result(&r);
    /* a prompt longer than the context */
    char longp[400] = "";
    for (int i = 0; i < 20; i++)
        strcat(longp, "Say 3. Say 4. ");
    snprintf(args, sizeof args, "generate -m %s -t 0 -i '%s'", path_in("sft/final"), longp);
    r = run_align(args, NULL);
    CHECKF(r.code == 1 && has(&r.err, "fills the model's 64 positions"), "generate, prompt past the context: %d %s",
           r.code, r.err.data ? r.err.data : "");
    free_result(&r);
    snprintf(args, sizeof args, "chat -m %s -t 0", path_in("sft/final"));
    char input[500];
    snprintf(input, sizeof input, "%s\n", longp);
    r = run_align(args, input);
    CHECKF(r.code == 0 && has(&r.err, "fills the model's 64 positions"), "chat, message past the context: %s",
           r.err.data ? r.err.data : "");
    free_result(&r);
}

int main(void)
{
    dir = test_tmpdir("model-dir");
    test_library_round_trip();
    test_trained_dir();
    test_clip();
    return test_report();
}

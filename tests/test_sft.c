/* align sft end to end: fine-tuning stories260K on a small instruction set lowers its
 * held-out loss, the run is deterministic, bad data is refused with a located message or
 * skipped and reported, and a --config file sets the same options as flags. */
#include <sys/wait.h>
#include <time.h>

#include "align/tokenizer.h"
#include "test.h"

static const char *dir;

static void write_data(const char *path, int n, bool broken)
{
    static const char *colors[] = {"red", "blue", "green", "yellow", "pink", "brown"};
    static const char *things[] = {"ball", "cat", "dog", "car", "hat", "box", "tree", "bird"};
    FILE *f = fopen(path, "w");
    uint64_t rng = 7;
    for (int i = 0; i < n; i++) {
        const char *c = colors[al_xorshift_u32(&rng) % 6], *t = things[al_xorshift_u32(&rng) % 8];
        if (broken && i == 3)
            fputs("{\"prompt\": \"Q: oops\", \"completion\": 5}\n", f);
        else if (broken && i == 7)
            fputs("{\"prompt\": \"Q: missing a brace\"\n", f);
        else if (i % 2)
            fprintf(f, "{\"prompt\": \"Q: What color is the %s? A:\", \"completion\": \" The %s is %s.\"}\n", t, t, c);
        else
            fprintf(f, "{\"prompt\": \"Q: What did Lily find? A:\", \"completion\": \" Lily found a %s %s.\"}\n", c, t);
    }
    fclose(f);
}

static int run(const char *args, const char *log)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s sft %s >/dev/null 2>%s", ALIGN_BINARY, args, log);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void eval_losses(const char *out, double *first, double *last)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    al_buf b = {0};
    al_read_file(path, &b);
    *first = *last = NAN;
    for (char *p = b.data; p && (p = strstr(p, "\"eval_loss\":")); p++) {
        double v = atof(p + 12);
        if (isnan(*first))
            *first = v;
        *last = v;
    }
    al_buf_free(&b);
}

static bool same_file(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool same = al_read_file(a, &x) == 0 && al_read_file(b, &y) == 0 && x.len == y.len &&
                memcmp(x.data, y.data, x.len) == 0;
    al_buf_free(&x), al_buf_free(&y);
    return same;
}

static void test_finetune(void)
{
    char data[1200], args[6000], log[1300], out_a[1200], out_b[1200], out_c[1200];
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    write_data(data, 240, false);
    const char *common = "-m %s -z %s --data %s --packing --epochs 2 --lr 2e-3 --batch-size 8 --seq-len 128 "
                         "--eval-every 10 --seed 3 --quiet";
    char base[4096];
    snprintf(base, sizeof base, common, shared_path("models/stories260K/stories260K.bin"),
             shared_path("models/stories260K/tok512.bin"), data);
    snprintf(out_a, sizeof out_a, "%s/a", dir);
    snprintf(out_b, sizeof out_b, "%s/b", dir);
    snprintf(log, sizeof log, "%s/a.log", dir);
    snprintf(args, sizeof args, "%s --out %s", base, out_a);
    CHECK(run(args, log) == 0);
    snprintf(args, sizeof args, "%s --out %s", base, out_b);
    CHECK(run(args, log) == 0);
    double first, last;
    eval_losses(out_a, &first, &last);
    CHECKF(last < 0.5 * first, "held-out loss %.3f -> %.3f did not fall by half", first, last);
    char fa[1300], fb[1300];
    snprintf(fa, sizeof fa, "%s/final/model.safetensors", out_a);
    snprintf(fb, sizeof fb, "%s/final/model.safetensors", out_b);
    CHECKF(same_file(fa, fb), "two runs with the same seed differ");

    /* the same options from a --config file give the same model */
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/sft.json", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"data\": \"%s\", \"packing\": true, \"epochs\": 2, \"lr\": 0.002, \"batch_size\": 8, "
               "\"seq_len\": 128, \"eval_every\": 10, \"seed\": 3, \"quiet\": true}\n", data);
    fclose(f);
    snprintf(out_c, sizeof out_c, "%s/c", dir);
    snprintf(args, sizeof args, "--config %s -m %s -z %s --out %s", cfg, shared_path("models/stories260K/stories260K.bin"),
             shared_path("models/stories260K/tok512.bin"), out_c);
    CHECK(run(args, log) == 0);
    snprintf(fb, sizeof fb, "%s/final/model.safetensors", out_c);
    CHECKF(same_file(fa, fb), "--config run differs from the flags run");
}

/* LoRA: only adapters train, the held-out loss still falls, DIR/final holds PEFT files,
 * and align lora merge turns them into a model that scores the same held-out loss. */
static void test_lora(void)
{
    char args[6000], log[1300], out[1200], data[1200], merged[1300];
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    snprintf(out, sizeof out, "%s/lora", dir);
    snprintf(log, sizeof log, "%s/lora.log", dir);
    snprintf(args, sizeof args,
             "-m %s -z %s --data %s --packing --epochs 2 --lr 1e-2 --batch-size 8 --seq-len 128 --eval-every 10 "
             "--seed 3 --quiet --lora --lora-r 4 --lora-targets q,v,up,down --out %s",
             shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"), data,
             out);
    CHECK(run(args, log) == 0);
    double first, last;
    eval_losses(out, &first, &last);
    CHECKF(last < 0.5 * first, "LoRA held-out loss %.3f -> %.3f did not fall by half", first, last);
    char path[1400];
    snprintf(path, sizeof path, "%s/final/adapter_model.safetensors", out);
    CHECK(al_file_exists(path));
    snprintf(path, sizeof path, "%s/final/adapter_config.json", out);
    al_buf b = {0};
    al_read_file(path, &b);
    CHECK(b.data && strstr(b.data, "\"r\": 4") && strstr(b.data, "q_proj") && !strstr(b.data, "k_proj"));
    al_buf_free(&b);
    snprintf(merged, sizeof merged, "%s/merged", dir);
    char cmd[6000];
    snprintf(cmd, sizeof cmd, "%s lora merge -m %s -a %s/final -o %s >/dev/null 2>>%s", ALIGN_BINARY,
             shared_path("models/stories260K/stories260K.bin"), out, merged, log);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", merged);
    CHECK(al_file_exists(path));
}

/* From scratch: the template's markers join the vocabulary as special tokens, the model
 * is sized to it, the grown tokenizer is saved beside the model, and chat reloads it. */
static void test_from_scratch(void)
{
    char data[1200], cfg[1200], out[1200], args[6000], log[1300], path[1400];
    snprintf(data, sizeof data, "%s/conv.jsonl", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 60; i++)
        fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"Say %d.\"}, "
                   "{\"role\": \"assistant\", \"content\": \"%d.\"}]}\n",
                i % 10, i % 10);
    fclose(f);
    snprintf(cfg, sizeof cfg, "%s/arch.json", dir);
    f = fopen(cfg, "w");
    fputs("{\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
          " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 512,"
          " \"max_position_embeddings\": 64, \"tie_word_embeddings\": true}\n",
          f);
    fclose(f);
    snprintf(out, sizeof out, "%s/scratch", dir);
    snprintf(log, sizeof log, "%s/scratch.log", dir);
    snprintf(args, sizeof args, "--model-config %s -z %s --data %s --out %s --steps 30 --lr 3e-3 --batch-size 8 "
                                "--seq-len 64 --packing --eval-every 10 --quiet",
             cfg, shared_path("models/stories260K/tok512.bin"), data, out);
    CHECK(run(args, log) == 0);
    double first, last;
    eval_losses(out, &first, &last);
    CHECKF(last < first, "from-scratch held-out loss %.3f -> %.3f", first, last);
    al_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/final/tokenizer.bin", out);
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (tok) {
        CHECK(al_tokenizer_vocab_size(tok) == 514); /* <|im_start|> and <|im_end|> */
        CHECK(al_tokenizer_find(tok, "<|im_start|>", 12) == 512 && al_tokenizer_find(tok, "<|im_end|>", 10) == 513);
        al_tokenizer_free(tok);
    }
    snprintf(path, sizeof path, "%s/final/config.json", out);
    al_buf b = {0};
    al_read_file(path, &b);
    CHECK(b.data && strstr(b.data, "\"vocab_size\": 514"));
    al_buf_free(&b);
    /* chat finds the grown tokenizer beside the model */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf 'Say 3.\\n' | %s chat -m %s/final -t 0 -n 4 >/dev/null 2>>%s", ALIGN_BINARY, out,
             log);
    CHECK(system(cmd) == 0);
}

/* A fine-tuning run (full, or LoRA with dropout) killed with SIGKILL at a random step and
 * resumed ends with the weights of the uninterrupted run. */
static void test_kill_resume(bool lora)
{
    char data[1200], args[6000], log[1300], a[1200], b[1200], cmd[8192], fa[1300], fb[1300];
    const char *tag = lora ? "lora" : "full";
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    snprintf(log, sizeof log, "%s/kill.log", dir);
    snprintf(a, sizeof a, "%s/ka-%s", dir, tag);
    snprintf(b, sizeof b, "%s/kb-%s", dir, tag);
    char base[4096];
    snprintf(base, sizeof base, "-m %s -z %s --data %s --packing --steps 30 --lr 2e-3 --batch-size 4 --seq-len 64 "
                                "--eval-every 10 --save-every 1 --keep 2 --seed 5 --quiet%s",
             shared_path("models/stories260K/stories260K.bin"), shared_path("models/stories260K/tok512.bin"), data,
             lora ? " --lora --lora-r 4 --lora-dropout 0.1" : "");
    snprintf(args, sizeof args, "%s --out %s", base, a);
    CHECK(run(args, log) == 0);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    int target = 2 + rand() % 25;
    long us = rand() % 20000;
    snprintf(cmd, sizeof cmd, "exec %s sft %s --out %s >/dev/null 2>>%s", ALIGN_BINARY, base, b, log);
    bool killed = kill_at_checkpoint(cmd, b, target, us);
    fprintf(stderr, "sft %s kill test: seed %u, SIGKILL %ld us after step %d's checkpoint (%s)\n", tag, seed, us,
            target, killed ? "killed mid-run" : "the run had already finished");
    CHECK(killed);
    snprintf(args, sizeof args, "--resume %s --quiet", b);
    CHECK(run(args, log) == 0);
    const char *w = lora ? "adapter_model.safetensors" : "model.safetensors";
    snprintf(fa, sizeof fa, "%s/final/%s", a, w);
    snprintf(fb, sizeof fb, "%s/final/%s", b, w);
    CHECKF(same_file(fa, fb), "killed and resumed %s SFT run differs (seed %u)", tag, seed);
}

static void test_bad_data(void)
{
    char data[1200], args[6000], log[1300];
    snprintf(data, sizeof data, "%s/bad.jsonl", dir);
    snprintf(log, sizeof log, "%s/bad.log", dir);
    write_data(data, 40, true);
    const char *fmt = "-m %s -z %s --data %s --out %s/bad --steps 2 --quiet%s";
    snprintf(args, sizeof args, fmt, shared_path("models/stories260K/stories260K.bin"),
             shared_path("models/stories260K/tok512.bin"), data, dir, "");
    CHECK(run(args, log) == 1);
    al_buf b = {0};
    al_read_file(log, &b);
    char want[1300];
    snprintf(want, sizeof want, "%s:4:", data); /* the record on line 4 has a number for completion */
    CHECKF(b.data && strstr(b.data, want), "no located error: %s", b.data ? b.data : "");
    al_buf_free(&b);
    snprintf(args, sizeof args, fmt, shared_path("models/stories260K/stories260K.bin"),
             shared_path("models/stories260K/tok512.bin"), data, dir, " --skip-bad-lines");
    /* --quiet hides the report; run without it to see the skipped lines */
    char *q = strstr(args, " --quiet");
    memmove(q, q + 8, strlen(q + 8) + 1);
    CHECK(run(args, log) == 0);
    al_read_file(log, &b);
    CHECKF(b.data && strstr(b.data, "skipped 2 bad records") && strstr(b.data, "lines 4 8"), "%s",
           b.data ? b.data : "");
    al_buf_free(&b);
    CHECK(run("--data x -m y", log) == 2);
}

/* align chat through a pipe: a reply per message, /reset clears, /exit ends cleanly;
 * greedy decoding gives the same replies for the same conversation. */
static void test_chat(void)
{
    char cmd[6000], out[1300];
    snprintf(out, sizeof out, "%s/chat.out", dir);
    snprintf(cmd, sizeof cmd,
             "printf 'What color is the dog?\\n/reset\\nWhat color is the dog?\\n/exit\\nnever read\\n' | "
             "%s chat -m %s/a/final -z %s -t 0 -n 12 >%s 2>%s.err",
             ALIGN_BINARY, dir, shared_path("models/stories260K/tok512.bin"), out, out);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    al_buf b = {0};
    al_read_file(out, &b);
    char *cleared = b.data ? strstr(b.data, "(conversation cleared)\n") : NULL;
    CHECKF(cleared != NULL, "no /reset acknowledgement: %s", b.data ? b.data : "");
    if (cleared) {
        size_t first = (size_t)(cleared - b.data);
        const char *second = cleared + strlen("(conversation cleared)\n");
        CHECKF(first > 1 && strlen(second) == first && strncmp(b.data, second, first) == 0,
               "replies before and after /reset differ:\n%s", b.data);
    }
    al_buf_free(&b);
    CHECK(system(ALIGN_BINARY " chat 2>/dev/null") != 0); /* -m is required */
}

int main(void)
{
    dir = test_tmpdir("sft");
    test_finetune();
    test_lora();
    test_from_scratch();
    test_kill_resume(false);
    test_kill_resume(true);
    test_bad_data();
    test_chat();
    return test_report();
}

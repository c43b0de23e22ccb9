/* align generate: text from a model, streamed to stdout. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/model.h"
#include "align/tokenizer.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align generate -m MODEL [options]\n"
    "\n"
    "Generates text from MODEL (llama2.c .bin, HF directory with model.safetensors +\n"
    "config.json, or a .safetensors file) and streams it to stdout.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH        checkpoint to load (required)\n"
    "  -z, --tokenizer PATH    tokenizer (default: tokenizer.json, tokenizer.bin or tok*.bin\n"
    "                          beside the model, with the special tokens its\n"
    "                          tokenizer_config.json lists)\n"
    "  -i, --prompt TEXT       prompt (default: empty, i.e. start from BOS); raw text, continued\n"
    "                          as it is, even when the model has a chat template\n"
    "      --chat              -i is one user message instead: rendered with the chat template\n"
    "                          saved with the model (else chatml) and its generation prompt;\n"
    "                          prints only the reply, which ends at the template's markers\n"
    "      --chat-template T   chatml, llama2 or a template file; implies --chat\n"
    "  -n, --steps N           new tokens to generate (default 256), clipped with a note to the\n"
    "                          positions the prompt leaves; with --compat llama2c, run.c's\n"
    "                          meaning: total positions including the prompt (0 = max)\n"
    "  -t, --temperature T     0 = greedy (default 1.0)\n"
    "  -p, --top-p P           nucleus sampling mass (default 0.9; 1 = off)\n"
    "  -k, --top-k K           keep the K most likely tokens (default 0 = off)\n"
    "      --min-p P           drop tokens below P x the best token's probability (default 0)\n"
    "      --repeat-penalty R  CTRL-style penalty on recent tokens (default 1 = off)\n"
    "      --repeat-last-n N   window for the penalty (default 64; 0 = all)\n"
    "  -s, --seed S            random seed (default: time-based)\n"
    "      --stop TEXT         stop when TEXT is generated (repeatable)\n"
    "      --num-samples N     generate N continuations of the prompt (batched decoding; the\n"
    "                          prompt is read once and its cache shared)\n"
    "      --max-batch N       decode at most N sequences at once; the others wait and take\n"
    "                          the place of finished ones (default: all)\n"
    "      --kv-cache TYPE     f32 (default: exact, the numbers training computes) or f16\n"
    "                          (half the cache memory and traffic, as llama.cpp's default;\n"
    "                          faster when many long sequences share the steps)\n"
    "      --weights TYPE      f32 (default), bf16 or int8 (one scale per output row): the\n"
    "                          decoder's copy of the weight matrices, half or a quarter of\n"
    "                          the bytes; the numbers of float weights rounded to the type\n"
    "      --compat llama2c    reproduce llama2.c run.c byte for byte: its sampler, RNG,\n"
    "                          BOS handling and its stop on BOS\n"
    "  -h, --help              this text\n"
    "\n"
    "examples:\n"
    "  align generate -m stories260K.bin -z tok512.bin -t 0 -i \"Once upon a time\"\n"
    "  align generate -m stories260K.bin -z tok512.bin -t 1.0 -p 0.9 -s 133742 --compat llama2c\n"
    "  align generate -m runs/dpo/final --chat -t 0 -i \"How do I reset my password?\"\n"
    "  align generate -m stories260K.bin -z tok512.bin --num-samples 32 -t 0.8 -p 0.9 --kv-cache f16\n";

typedef struct gen_args {
    const char *model, *tokenizer, *prompt, *chat_template;
    int steps, num_samples, max_batch;
    al_kv_type kv;
    al_weight_type weights;
    bool compat, seed_given, chat;
    al_sampler_opts s;
    const char *stops[16];
    int n_stops;
} gen_args;

/* run.c's safe_printf: skip single bytes that are neither printable nor whitespace. */
static void print_piece_llama2c(const char *piece, size_t len)
{
    if (len == 0)
        return;
    if (len == 1 && !(isprint((unsigned char)piece[0]) || isspace((unsigned char)piece[0])))
        return;
    fwrite(piece, 1, len, stdout);
}

/* run.c's generate(), step for step. */
static int generate_llama2c(const al_model *m, const al_tokenizer *tok, const gen_args *a)
{
    al_ints prompt = {0};
    const char *text = a->prompt ? a->prompt : "";
    if (al_tokenizer_encode(tok, text, strlen(text), true, false, &prompt))
        return -1;
    int steps = a->steps;
    if (steps <= 0 || steps > m->cfg.seq_len)
        steps = m->cfg.seq_len;
    al_sampler sampler;
    al_sampler_opts so = a->s;
    so.llama2c = true;
    if (al_sampler_init(&sampler, m->cfg.vocab_size, &so)) {
        al_ints_free(&prompt);
        return -1;
    }
    al_decoder *dec = al_decoder_new(m, 1, steps);
    if (!dec) {
        al_sampler_free(&sampler);
        al_ints_free(&prompt);
        return -1;
    }
    al_buf piece = {0};
    int token = prompt.v[0], pos = 0, rc = 0;
    double start = 0;
    while (pos < steps) {
        float *logits = al_decoder_step(dec, NULL, &token, 1);
        if (!logits) {
            rc = -1;
            break;
        }
        int next = pos < prompt.n - 1 ? prompt.v[pos + 1] : al_sample(&sampler, logits, NULL, 0);
        pos++;
        if (next == 1)
            break;
        piece.len = 0;
        if (al_tokenizer_decode_token(tok, token, next, &piece)) {
            rc = -1;
            break;
        }
        print_piece_llama2c(piece.data, piece.len);
        fflush(stdout);
        token = next;
        if (start == 0)
            start = al_now();
    }
    printf("\n");
    if (pos > 1 && start > 0)
        fprintf(stderr, "achieved tok/s: %f\n", (pos - 1) / (al_now() - start));
    al_buf_free(&piece);
    al_decoder_free(dec);
    al_sampler_free(&sampler);
    al_ints_free(&prompt);
    return rc;
}

typedef struct stream_ctx {
    const al_tokenizer *tok;
    int prev;
    al_buf piece;
    const al_ints *silent; /* ids not printed (a chat reply's end markers) */
} stream_ctx;

static bool is_silent(const al_ints *silent, int id)
{
    for (int i = 0; silent && i < silent->n; i++)
        if (silent->v[i] == id)
            return true;
    return false;
}

static void stream_token(void *user, int seq, int id)
{
    stream_ctx *s = user;
    if (is_silent(s->silent, id))
        return;
    s->piece.len = 0;
    if (al_tokenizer_decode_token(s->tok, s->prev, id, &s->piece) == 0) {
        fwrite(s->piece.data, 1, s->piece.len, stdout);
        fflush(stdout);
    }
    s->prev = id;
}

/* The prompt's ids: -i as raw text, or with --chat as one user turn of the template (whose
 * markers then also end the reply: their ids join stop_ids, unprinted). */
static int encode_prompt(const al_tokenizer *tok, const al_chat_template *tmpl, const gen_args *a, al_ints *ids,
                         al_ints *stop_ids)
{
    const char *text = a->prompt ? a->prompt : "";
    if (!tmpl)
        return al_tokenizer_encode(tok, text, strlen(text), true, false, ids);
    al_message msg = {.role = AL_ROLE_USER, .content = (char *)text};
    al_buf rendered = {0};
    int rc = al_chat_render(tmpl, &msg, 1, true, &rendered, NULL, NULL) ||
                     al_tokenizer_encode(tok, rendered.data ? rendered.data : "", rendered.len,
                                         al_chat_template_adds_bos(tmpl), false, ids)
                 ? -1
                 : 0;
    al_buf_free(&rendered);
    const char **markers;
    int n;
    al_chat_template_specials(tmpl, &markers, &n);
    for (int k = 0; rc == 0 && k < n; k++) {
        int id = al_tokenizer_find(tok, markers[k], strlen(markers[k]));
        if (id >= 0 && id != al_tokenizer_bos(tok))
            rc = al_ints_push(stop_ids, id);
    }
    return rc;
}

static int generate_default(const al_model *m, const al_tokenizer *tok, const al_chat_template *tmpl,
                            const gen_args *a)
{
    int n = a->num_samples;
    al_ints *prompts = calloc((size_t)n, sizeof *prompts);
    al_gen_result *res = calloc((size_t)n, sizeof *res);
    al_ints stop_ids = {0};
    if (!prompts || !res) {
        free(prompts), free(res);
        return al_fail("out of memory");
    }
    int eos = al_tokenizer_eos(tok);
    int rc = (eos >= 0 && al_ints_push(&stop_ids, eos)) ||
             (m->cfg.eos_id >= 0 && m->cfg.eos_id != eos && al_ints_push(&stop_ids, m->cfg.eos_id));
    if (rc == 0)
        rc = encode_prompt(tok, tmpl, a, &prompts[0], &stop_ids);
    for (int i = 1; i < n && rc == 0; i++)
        for (int j = 0; j < prompts[0].n && rc == 0; j++)
            rc = al_ints_push(&prompts[i], prompts[0].v[j]);
    int steps = rc == 0 ? cli_clip_new_tokens("align generate", a->steps, prompts[0].n, m->cfg.seq_len) : 0;
    if (rc == 0 && steps == 0 && a->steps > 0)
        rc = al_fail("the prompt (%d tokens) fills the model's %d positions", prompts[0].n, m->cfg.seq_len);
    al_gen_opts go = {.max_new_tokens = steps, .sampling = a->s, .stop_ids = stop_ids.v, .n_stop_ids = stop_ids.n,
                      .stop_strings = a->stops, .n_stop_strings = a->n_stops, .max_batch = a->max_batch,
                      .kv = a->kv, .weights = a->weights};
    al_gen_stats stats = {0};
    go.stats = &stats;
    /* One stream prints as it goes; several are printed whole, one after another.  A chat
     * reply is printed without the prompt's template text. */
    stream_ctx sc = {.tok = tok, .prev = rc == 0 ? prompts[0].v[prompts[0].n - 1] : 0, .silent = tmpl ? &stop_ids : NULL};
    const char *echo = tmpl ? "" : a->prompt ? a->prompt : "";
    if (rc == 0 && n == 1) {
        fputs(echo, stdout);
        fflush(stdout);
    }
    double t0 = al_now();
    if (rc == 0)
        rc = al_generate(m, tok, prompts, n, &go, res, n == 1 ? stream_token : NULL, &sc);
    double dt = al_now() - t0;
    long total = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        total += res[i].ids.n;
        if (n > 1) {
            /* Piece by piece from the prompt's last token, so a continuation keeps the
             * leading space a whole-sequence decode would strip. */
            al_buf out = {0};
            printf("--- sample %d ---\n%s", i + 1, echo);
            int prev = prompts[i].v[prompts[i].n - 1];
            for (int j = 0; j < res[i].ids.n && rc == 0; j++) {
                if (!is_silent(sc.silent, res[i].ids.v[j]))
                    rc = al_tokenizer_decode_token(tok, prev, res[i].ids.v[j], &out);
                prev = res[i].ids.v[j];
            }
            fwrite(out.data, 1, out.len, stdout);
            al_buf_free(&out);
        }
        printf("\n");
    }
    fflush(stdout);
    if (rc == 0)
        fprintf(stderr, "%ld tokens in %.3f s (%.1f tok/s over %d sequence%s; steps %.1f tok/s after %.1f ms of setup)\n",
                total, dt, total / dt, n, n == 1 ? "" : "s",
                stats.step_seconds > 0 ? total / stats.step_seconds : 0.0, 1e3 * stats.setup_seconds);
    al_buf_free(&sc.piece);
    al_ints_free(&stop_ids);
    for (int i = 0; i < n; i++)
        al_ints_free(&prompts[i]);
    al_gen_results_free(res, n);
    free(prompts), free(res);
    return rc;
}

static int parse(gen_args *g, int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align generate", argc, argv);
    memset(g, 0, sizeof *g);
    g->s = al_sampler_defaults();
    g->s.top_p = 0.9f;
    g->steps = 256;
    g->num_samples = 1;
    const char *arg;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 1;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            g->model = a.value;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            g->tokenizer = a.value;
        } else if (cli_opt(&a, arg, "-i", "--prompt")) {
            g->prompt = a.value;
        } else if (cli_flag(&a, arg, NULL, "--chat")) {
            g->chat = true;
        } else if (cli_opt(&a, arg, NULL, "--chat-template")) {
            g->chat_template = a.value;
            g->chat = true;
        } else if (cli_opt(&a, arg, "-n", "--steps")) {
            g->steps = cli_int(&a, 0, 1 << 24);
        } else if (cli_opt(&a, arg, "-t", "--temperature")) {
            g->s.temperature = cli_float(&a, 0, 100);
        } else if (cli_opt(&a, arg, "-p", "--top-p")) {
            g->s.top_p = cli_float(&a, 0, 1);
        } else if (cli_opt(&a, arg, "-k", "--top-k")) {
            g->s.top_k = cli_int(&a, 0, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--min-p")) {
            g->s.min_p = cli_float(&a, 0, 0.999);
        } else if (cli_opt(&a, arg, NULL, "--repeat-penalty")) {
            g->s.repeat_penalty = cli_float(&a, 0.01, 100);
        } else if (cli_opt(&a, arg, NULL, "--repeat-last-n")) {
            g->s.repeat_last_n = cli_int(&a, 0, 1 << 24);
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            g->s.seed = (uint64_t)strtoull(a.value, NULL, 10);
            g->seed_given = true;
        } else if (cli_opt(&a, arg, NULL, "--stop")) {
            if (g->n_stops == 16) {
                fprintf(stderr, "align generate: at most 16 --stop strings\n");
                return 2;
            }
            g->stops[g->n_stops++] = a.value;
        } else if (cli_opt(&a, arg, NULL, "--num-samples")) {
            g->num_samples = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--max-batch")) {
            g->max_batch = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--kv-cache")) {
            if (al_kv_type_parse(a.value, &g->kv)) {
                fprintf(stderr, "align generate: --kv-cache takes f32 or f16, got '%s'\n", a.value);
                return 2;
            }
        } else if (cli_opt(&a, arg, NULL, "--weights")) {
            if (al_weight_type_parse(a.value, &g->weights)) {
                fprintf(stderr, "align generate: --weights takes f32, bf16 or int8, got '%s'\n", a.value);
                return 2;
            }
        } else if (cli_opt(&a, arg, NULL, "--compat")) {
            if (strcmp(a.value, "llama2c") != 0) {
                fprintf(stderr, "align generate: --compat takes 'llama2c', got '%s'\n", a.value);
                return 2;
            }
            g->compat = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!g->model) {
        fprintf(stderr, "align generate: -m MODEL is required (see align generate --help)\n");
        return 2;
    }
    if (g->compat && (g->num_samples != 1 || g->chat || g->n_stops || g->s.top_k || g->s.min_p > 0 ||
                      g->s.repeat_penalty != 1.0f)) {
        fprintf(stderr, "align generate: --compat llama2c takes only -t, -p, -s, -n, -i (as run.c does)\n");
        return 2;
    }
    if (g->compat && g->weights != AL_W_F32) {
        fprintf(stderr, "align generate: --compat llama2c decodes with float weights, as run.c does\n");
        return 2;
    }
    if (g->compat && g->kv != AL_KV_F32) {
        fprintf(stderr, "align generate: --compat llama2c decodes with a float cache, as run.c does\n");
        return 2;
    }
    if (!g->seed_given)
        g->s.seed = (uint64_t)time(NULL);
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    gen_args g;
    int prc = parse(&g, argc, argv);
    if (prc)
        return prc == 1 ? 0 : prc;
    al_model m;
    if (al_model_load(&m, g.model)) {
        fprintf(stderr, "align generate: %s\n", al_errmsg());
        return 1;
    }
    cli_model_files f;
    if (cli_model_files_load("align generate", g.model, g.tokenizer, g.chat_template, g.chat, &f)) {
        al_model_free(&m);
        return 1;
    }
    int rc = 0;
    if (al_tokenizer_vocab_size(f.tok) != m.cfg.vocab_size)
        rc = al_fail("the tokenizer has %d tokens, the model %d", al_tokenizer_vocab_size(f.tok), m.cfg.vocab_size);
    if (rc == 0)
        rc = g.compat ? generate_llama2c(&m, f.tok, &g) : generate_default(&m, f.tok, f.tmpl, &g);
    if (rc)
        fprintf(stderr, "align generate: %s\n", al_errmsg());
    cli_model_files_free(&f);
    al_model_free(&m);
    return rc ? 1 : 0;
}

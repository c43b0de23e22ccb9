/* align chat: an interactive conversation in the terminal, tokens streamed as they come. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "align/data.h"
#include "align/model.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align chat -m MODEL [-z TOKENIZER] [options]\n"
    "\n"
    "Talks with MODEL through a chat template. Type a message and press Enter; the reply\n"
    "streams as it is generated. Commands: /reset forgets the conversation, /exit (or end\n"
    "of input) quits. Reads lines from standard input, so it also works in pipes.\n"
    "\n"
    "A model directory written by align (sft, dpo, rm, pretrain, convert, lora merge) carries\n"
    "its tokenizer and chat template (tokenizer.json or tokenizer.bin, tokenizer_config.json),\n"
    "so -m is all it needs; the flags below override them.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH        the model (required)\n"
    "  -z, --tokenizer PATH    its tokenizer (default: the one beside the model)\n"
    "      --chat-template T   chatml, llama2, or a template file (default: the template saved\n"
    "                          with the model, else chatml)\n"
    "      --system TEXT       a system message at the start of every conversation\n"
    "  -n, --max-tokens N      longest reply in tokens (default: half the model's context, at\n"
    "                          most 512); always clipped to the positions the conversation\n"
    "                          leaves, with a note\n"
    "  -t, --temperature T     (default 0.7; 0 = greedy)\n"
    "  -p, --top-p P           (default 0.9)\n"
    "  -s, --seed S            (default: time-based)\n"
    "  -h, --help              this text\n"
    "\n"
    "example:\n"
    "  align chat -m runs/sft/final --system \"You are a support assistant.\"\n";

typedef struct reply {
    const al_tokenizer *tok;
    int prev;
    al_buf text;      /* the whole reply so far */
    size_t printed;   /* bytes of text already on the screen */
    const char **stops;
    int n_stops;
    size_t hold;      /* longest stop string - 1: a tail this long may still become one */
} reply;

/* Prints what can no longer turn into a stop string. */
static void flush_safe(reply *r, bool final)
{
    size_t upto = r->text.len;
    for (int k = 0; k < r->n_stops; k++) {
        char *at = r->text.data ? strstr(r->text.data, r->stops[k]) : NULL;
        if (at && (size_t)(at - r->text.data) < upto)
            upto = (size_t)(at - r->text.data);
    }
    if (!final && upto == r->text.len)
        upto = upto > r->hold ? upto - r->hold : 0;
    if (upto > r->printed) {
        fwrite(r->text.data + r->printed, 1, upto - r->printed, stdout);
        fflush(stdout);
        r->printed = upto;
    }
}

static void on_token(void *user, int seq, int id)
{
    reply *r = user;
    al_tokenizer_decode_token(r->tok, r->prev, id, &r->text);
    r->prev = id;
    flush_safe(r, false);
}

static int add_message(al_message **msgs, int *n, al_role role, const char *content)
{
    al_message *m = realloc(*msgs, (size_t)(*n + 1) * sizeof *m);
    if (!m)
        return al_fail("out of memory");
    *msgs = m;
    m[*n].role = role;
    m[*n].content = strdup(content);
    if (!m[*n].content)
        return al_fail("out of memory");
    (*n)++;
    return 0;
}

static void clear_messages(al_message *msgs, int *n, int keep)
{
    for (int i = keep; i < *n; i++)
        free(msgs[i].content);
    *n = keep;
}

int cmd_chat(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align chat", argc, argv);
    const char *model = NULL, *tok_path = NULL, *tmpl_name = NULL, *system = NULL, *arg;
    int max_tokens = 0; /* 0: by the model's context */
    al_sampler_opts so = al_sampler_defaults();
    so.temperature = 0.7f;
    so.top_p = 0.9f;
    so.seed = (uint64_t)time(NULL);
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            model = a.value;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            tok_path = a.value;
        } else if (cli_opt(&a, arg, NULL, "--chat-template")) {
            tmpl_name = a.value;
        } else if (cli_opt(&a, arg, NULL, "--system")) {
            system = a.value;
        } else if (cli_opt(&a, arg, "-n", "--max-tokens")) {
            max_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, "-t", "--temperature")) {
            so.temperature = cli_float(&a, 0, 100);
        } else if (cli_opt(&a, arg, "-p", "--top-p")) {
            so.top_p = cli_float(&a, 0.001, 1);
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            so.seed = (uint64_t)strtoull(a.value, NULL, 10);
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!model) {
        fprintf(stderr, "align chat: -m MODEL is required (see --help)\n");
        return 2;
    }
    al_model m = {0};
    cli_model_files files = {0};
    int rc = 1;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align chat: %s\n", al_errmsg());
        goto out;
    }
    if (cli_model_files_load("align chat", model, tok_path, tmpl_name, true, &files))
        goto out;
    const al_tokenizer *tok = files.tok;
    const al_chat_template *tmpl = files.tmpl;
    if (al_tokenizer_vocab_size(tok) > m.cfg.vocab_size) {
        fprintf(stderr, "align chat: the tokenizer has %d tokens, the model %d (pass the model's own with -z)\n",
                al_tokenizer_vocab_size(tok), m.cfg.vocab_size);
        goto out;
    }
    fprintf(stderr, "align chat: chat template '%s' (%s)\n", al_chat_template_name(tmpl), files.tmpl_source);
    if (max_tokens == 0)
        max_tokens = m.cfg.seq_len / 2 < 1 ? 1 : m.cfg.seq_len / 2 < 512 ? m.cfg.seq_len / 2 : 512;
    bool bos = al_chat_template_adds_bos(tmpl) && al_tokenizer_bos(tok) >= 0;
    const char **stops;
    int n_stops;
    al_chat_template_specials(tmpl, &stops, &n_stops);
    size_t hold = 0;
    for (int k = 0; k < n_stops; k++)
        hold = strlen(stops[k]) > hold ? strlen(stops[k]) : hold;
    al_message *msgs = NULL;
    int n = 0, keep = 0;
    if (system && add_message(&msgs, &n, AL_ROLE_SYSTEM, system) == 0)
        keep = 1;
    bool tty = isatty(0) && isatty(1);
    char line[65536];
    rc = 0;
    for (int turn = 0;; turn++) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        if (!fgets(line, sizeof line, stdin))
            break;
        line[strcspn(line, "\r\n")] = 0;
        if (!strcmp(line, "/exit"))
            break;
        if (!strcmp(line, "/reset")) {
            clear_messages(msgs, &n, keep);
            puts("(conversation cleared)");
            continue;
        }
        if (!line[0])
            continue;
        if (add_message(&msgs, &n, AL_ROLE_USER, line)) {
            rc = 1;
            break;
        }
        al_buf text = {0};
        al_ints prompt = {0};
        if (al_chat_render(tmpl, msgs, n, true, &text, NULL, NULL) ||
            al_tokenizer_encode(tok, text.data, text.len, bos, false, &prompt)) {
            fprintf(stderr, "align chat: %s\n", al_errmsg());
            al_buf_free(&text);
            rc = 1;
            break;
        }
        al_buf_free(&text);
        int reply_max = cli_clip_new_tokens("align chat", max_tokens, prompt.n, m.cfg.seq_len);
        if (reply_max == 0) {
            fprintf(stderr, "align chat: the conversation fills the model's %d positions; /reset to start over\n",
                    m.cfg.seq_len);
            al_ints_free(&prompt);
            clear_messages(msgs, &n, n - 1);
            continue;
        }
        reply r = {.tok = tok, .prev = prompt.v[prompt.n - 1], .stops = stops, .n_stops = n_stops,
                   .hold = hold ? hold - 1 : 0};
        int eos = al_tokenizer_eos(tok);
        al_sampler_opts s = so;
        s.seed = so.seed + (uint64_t)turn;
        al_gen_opts go = {.max_new_tokens = reply_max, .sampling = s, .stop_ids = &eos, .n_stop_ids = eos >= 0,
                          .stop_strings = stops, .n_stop_strings = n_stops};
        al_gen_result res = {0};
        if (al_generate(&m, tok, &prompt, 1, &go, &res, on_token, &r)) {
            fprintf(stderr, "align chat: %s\n", al_errmsg());
            rc = 1;
        }
        flush_safe(&r, true);
        putchar('\n');
        fflush(stdout);
        /* the reply joins the history without its stop marker */
        size_t len = r.printed;
        char *content = malloc(len + 1);
        if (content) {
            memcpy(content, r.text.data ? r.text.data : "", len);
            content[len] = 0;
            if (add_message(&msgs, &n, AL_ROLE_ASSISTANT, content))
                rc = 1;
            free(content);
        }
        al_buf_free(&r.text);
        al_gen_results_free(&res, 1);
        al_ints_free(&prompt);
        if (rc)
            break;
    }
    clear_messages(msgs, &n, 0);
    free(msgs);
out:
    cli_model_files_free(&files);
    al_model_free(&m);
    return rc;
}

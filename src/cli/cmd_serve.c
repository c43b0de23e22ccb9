/* align serve: the model behind an OpenAI-compatible HTTP API, the guard on both sides,
 * and the dashboard at /ui.  Runs until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/serve.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align serve -m MODEL [--policy POLICY.yaml] [options]\n"
    "\n"
    "Serves MODEL over HTTP with OpenAI's API: POST /v1/chat/completions and /v1/completions\n"
    "(\"stream\": true for server-sent events), POST /v1/moderations (the guard's input rails),\n"
    "GET /v1/models, /health and /metrics (Prometheus). Requests from every client share one\n"
    "batched decoder. The guard checks each prompt before it is decoded and each reply as it\n"
    "grows; a blocked prompt or reply gets the policy's canned reply (finish_reason\n"
    "\"content_filter\") and escalations go to the review queue. The dashboard at /ui shows the\n"
    "training runs (--runs), the review queue with approve/reject, and a chat box that shows\n"
    "which rail fired. Listens on loopback unless --host says otherwise. docs/serve.md.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH        the model (required)\n"
    "  -z, --tokenizer PATH    its tokenizer (default: the one beside the model)\n"
    "      --chat-template T   chatml, llama2 or a template file (default: the model's, else chatml)\n"
    "      --policy FILE       guard policy (YAML, over the built-in one; default: built-in)\n"
    "      --no-guard          serve without rails (moderations then answer 503)\n"
    "      --review-db FILE    review queue (default: the policy's review.queue, else\n"
    "                          $ALIGN_REVIEW_DB, else ./" AL_REVIEW_DEFAULT_DB ")\n"
    "      --runs DIR          training runs for the dashboard (metrics.jsonl files under DIR)\n"
    "      --host ADDR         IPv4 address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
    "      --port N            (default 8080; 0 = any free port)\n"
    "      --port-file FILE    write the port listened on to FILE (with --port 0, for scripts)\n"
    "      --api-keys FILE     require `Authorization: Bearer KEY` on /v1 and /api, one key per\n"
    "                          line ('#' comments); /health, /metrics and /ui stay open\n"
    "      --model-id NAME     the model's id in responses (default: the model's directory name)\n"
    "      --slots N           sequences decoded together (default 16)\n"
    "      --max-tokens N      cap on a request's max_tokens (default 256)\n"
    "      --max-concurrent N  model requests answered at once; more get 429 (default 64)\n"
    "      --max-connections N open connections; more are refused (default 256)\n"
    "      --max-body BYTES    largest request body; larger gets 413 (default 1048576)\n"
    "      --check-every N     run the output rails every N tokens of a reply (default 1)\n"
    "      --kv-cache T        f32 or f16 (default f32)\n"
    "      --weights T         f32, bf16 or int8 decoding weights (default f32)\n"
    "  -q, --quiet             no request log on stderr\n"
    "  -h, --help              this text\n"
    "\n"
    "examples:\n"
    "  align serve -m build/align-demo/runs/dpo/final --policy examples/guard/support_policy.yaml\n"
    "  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
    "       -d '{\"messages\": [{\"role\": \"user\", \"content\": \"How do I reset my password?\"}]}'\n";

static char *model_id_from_path(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    /* runs/dpo/final: the run's name says more than "final" */
    if (n - start == 5 && !strncmp(path + start, "final", 5) && start > 1) {
        size_t end = start - 1;
        size_t s2 = end;
        while (s2 > 0 && path[s2 - 1] != '/')
            s2--;
        if (end > s2)
            return strndup(path + s2, end - s2);
    }
    return strndup(path + start, n - start);
}

/* OpenMP's threads spin for a while after each parallel region, waiting for the next.  A
 * trainer wants that; a server does not: its decoding steps are short and far apart, and
 * the spinning thread takes the core the connections' threads need (on two cores: 80 vs
 * 765 requests/s under wrk, docs/serve.md).  libgomp reads its wait policy when it loads,
 * before main, so the server runs itself again with the policy set, unless the user chose
 * one.  argv is main's argv + 1 (the command's own), so argv - 1 is the whole line. */
static void rerun_with_passive_waits(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("ALIGN_SERVE_REEXEC"))
        return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("ALIGN_SERVE_REEXEC", "1", 1);
    execv("/proc/self/exe", argv - 1);
    /* no /proc: serve with the spinning threads rather than not at all */
}

int cmd_serve(int argc, char **argv)
{
    rerun_with_passive_waits(argv);
    cli_args a;
    cli_args_init(&a, "align serve", argc, argv);
    al_serve_opts o = al_serve_defaults();
    o.model_id = NULL; /* the model's name unless --model-id */
    const char *model = NULL, *tok_path = NULL, *tmpl_name = NULL, *policy_path = NULL, *port_file = NULL, *arg;
    bool no_guard = false;
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
        } else if (cli_opt(&a, arg, NULL, "--policy")) {
            policy_path = a.value;
        } else if (cli_flag(&a, arg, NULL, "--no-guard")) {
            no_guard = true;
        } else if (cli_opt(&a, arg, NULL, "--review-db")) {
            o.review_db = a.value;
        } else if (cli_opt(&a, arg, NULL, "--runs")) {
            o.runs_dir = a.value;
        } else if (cli_opt(&a, arg, NULL, "--host")) {
            o.host = a.value;
        } else if (cli_opt(&a, arg, NULL, "--port")) {
            o.port = cli_int(&a, 0, 65535);
        } else if (cli_opt(&a, arg, NULL, "--port-file")) {
            port_file = a.value;
        } else if (cli_opt(&a, arg, NULL, "--api-keys")) {
            o.api_keys_path = a.value;
        } else if (cli_opt(&a, arg, NULL, "--model-id")) {
            o.model_id = a.value;
        } else if (cli_opt(&a, arg, NULL, "--slots")) {
            o.slots = cli_int(&a, 1, 1024);
        } else if (cli_opt(&a, arg, NULL, "--max-tokens")) {
            o.max_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--max-concurrent")) {
            o.max_concurrent = cli_int(&a, 1, 1 << 16);
        } else if (cli_opt(&a, arg, NULL, "--max-connections")) {
            o.max_connections = cli_int(&a, 1, 1 << 16);
        } else if (cli_opt(&a, arg, NULL, "--max-body")) {
            o.max_body_bytes = (size_t)cli_int(&a, 64, 1 << 30);
        } else if (cli_opt(&a, arg, NULL, "--check-every")) {
            o.check_every = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--kv-cache")) {
            if (al_kv_type_parse(a.value, &o.kv)) {
                fprintf(stderr, "align serve: --kv-cache takes f32 or f16, got '%s'\n", a.value);
                return 2;
            }
        } else if (cli_opt(&a, arg, NULL, "--weights")) {
            if (al_weight_type_parse(a.value, &o.weights)) {
                fprintf(stderr, "align serve: --weights takes f32, bf16 or int8, got '%s'\n", a.value);
                return 2;
            }
        } else if (cli_flag(&a, arg, "-q", "--quiet")) {
            o.quiet = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!model) {
        fprintf(stderr, "align serve: -m MODEL is required (see align serve --help)\n");
        return 2;
    }
    if (no_guard && policy_path) {
        fprintf(stderr, "align serve: --no-guard and --policy contradict each other\n");
        return 2;
    }
    al_model m = {0};
    cli_model_files files = {0};
    al_guard_policy pol = {0};
    bool have_pol = false;
    al_guard *guard = NULL;
    char *id = NULL;
    int rc = 1;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align serve: %s\n", al_errmsg());
        goto out;
    }
    if (cli_model_files_load("align serve", model, tok_path, tmpl_name, true, &files))
        goto out;
    if (al_tokenizer_vocab_size(files.tok) > m.cfg.vocab_size) {
        fprintf(stderr, "align serve: the tokenizer has %d tokens, the model %d (pass the model's own with -z)\n",
                al_tokenizer_vocab_size(files.tok), m.cfg.vocab_size);
        goto out;
    }
    if (!no_guard) {
        if (policy_path ? al_guard_policy_load(policy_path, &pol) : al_guard_policy_default(&pol)) {
            fprintf(stderr, "align serve: %s\n", al_errmsg());
            goto out;
        }
        have_pol = true;
        guard = al_guard_open(&pol);
        if (!guard) {
            fprintf(stderr, "align serve: %s\n", al_errmsg());
            goto out;
        }
        if (!o.review_db)
            o.review_db = pol.review_queue;
    }
    if (!o.review_db)
        o.review_db = getenv("ALIGN_REVIEW_DB");
    if (!o.model_id)
        o.model_id = id = model_id_from_path(model);
    o.model = &m;
    o.model_path = model;
    o.tok = files.tok;
    o.tmpl = files.tmpl;
    o.guard = guard;
    /* the threads the server starts inherit this mask; the signals are taken below */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    al_server *s = al_server_start(&o);
    if (!s) {
        fprintf(stderr, "align serve: %s\n", al_errmsg());
        goto out;
    }
    const int port = al_server_port(s);
    if (port_file) {
        /* written whole, then renamed: a script polling for it never reads half a number */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) || rename(tmp, port_file)) {
            fprintf(stderr, "align serve: cannot write %s\n", port_file);
            al_server_stop(s);
            goto out;
        }
    }
    fprintf(stderr,
            "align serve: http://%s:%d/ (model %s, %d positions, %d slots; guard: %s; review queue %s; dashboard "
            "/ui)\n",
            o.host, port, o.model_id, m.cfg.seq_len, o.slots, guard ? pol.origin : "off",
            o.review_db ? o.review_db : AL_REVIEW_DEFAULT_DB);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "align serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    al_server_stop(s);
    rc = 0;
out:
    free(id);
    al_guard_close(guard);
    if (have_pol)
        al_guard_policy_free(&pol);
    cli_model_files_free(&files);
    al_model_free(&m);
    return rc;
}

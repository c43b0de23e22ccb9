/* align guard generate: the request generator's output as labelled JSONL, the format
 * `align guard eval` reads. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/guard.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align guard generate [--split train|valid|heldout] [-n N] [--seed S] [-o FILE.jsonl]\n"
            "\n"
            "Writes harmful and benign requests from the built-in generator (docs/guard_models.md):\n"
            "items across the 14 hazards and benign ones that borrow their words (homonyms,\n"
            "figurative speech, safe targets and contexts, definitions, history, public figures,\n"
            "nonsense groups), each in a surface form (question, imperative, first person, past,\n"
            "future, polite, curt, long) and some inside a jailbreak wrapper.  Every item, frame\n"
            "and wrapper belongs to one split: train (what the default harm model learns from),\n"
            "valid (what calibrates it) or heldout (what it is measured on); a request takes all\n"
            "its parts from one split.  One JSON object per line: prompt, label (1 harmful,\n"
            "0 benign), category (the hazard, or \"benign\"), phenomenon, form, wrapper.\n"
            "\n"
            "options:\n"
            "      --split NAME        train, valid or heldout (default heldout)\n"
            "  -n, --count N           requests (default 1000)\n"
            "      --seed S            the same seed gives the same file (default 1)\n"
            "      --harmful-percent P share of harmful requests (default 50)\n"
            "      --wrap-percent P    share inside a jailbreak wrapper (default 25)\n"
            "      --encodings         wrappers may also encode (Base64, ROT13, leetspeak, pig Latin)\n"
            "  -o, --out FILE          output (default: standard output)\n"
            "  -h, --help              this text\n"
            "\n"
            "example:\n"
            "  align guard generate --split heldout -n 2000 --encodings -o heldout.jsonl\n"
            "  align guard eval --data heldout.jsonl\n");
}

static int write_set(FILE *fp, const al_harm_gen_set *s)
{
    for (int i = 0; i < s->n; i++) {
        const al_harm_gen_example *x = &s->v[i];
        json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s?}", "prompt", x->prompt, "label", x->harmful ? 1 : 0,
                              "category", x->hazard >= 0 ? al_hazard_name((al_hazard)x->hazard) : "benign",
                              "phenomenon", al_harm_gen_phenomenon_name(x->phenomenon), "form", x->form, "wrapper",
                              x->wrapper);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        int bad = !line || fputs(line, fp) < 0 || fputc('\n', fp) < 0;
        free(line);
        if (bad)
            return al_fail("write failed");
    }
    return 0;
}

int cmd_guard_generate(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align guard generate", argc, argv);
    al_harm_gen_opts o = al_harm_gen_defaults();
    o.split = AL_HARM_GEN_HELDOUT;
    const char *out = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, NULL, "--split")) {
            if (!strcmp(a.value, "train")) {
                o.split = AL_HARM_GEN_TRAIN;
            } else if (!strcmp(a.value, "valid")) {
                o.split = AL_HARM_GEN_VALID;
            } else if (!strcmp(a.value, "heldout")) {
                o.split = AL_HARM_GEN_HELDOUT;
            } else {
                fprintf(stderr, "align guard generate: --split expects train, valid or heldout, got '%s'\n", a.value);
                return 2;
            }
        } else if (cli_opt(&a, arg, "-n", "--count")) {
            o.n = cli_int(&a, 1, 10000000);
        } else if (cli_opt(&a, arg, NULL, "--seed")) {
            o.seed = (uint64_t)cli_int(&a, 0, 2147483647);
        } else if (cli_opt(&a, arg, NULL, "--harmful-percent")) {
            o.harmful_percent = cli_int(&a, 0, 100);
        } else if (cli_opt(&a, arg, NULL, "--wrap-percent")) {
            o.wrap_percent = cli_int(&a, 0, 100);
        } else if (cli_flag(&a, arg, NULL, "--encodings")) {
            o.encodings = true;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    al_harm_gen_set s = {0};
    int rc = al_harm_generate(&o, &s);
    if (rc == 0 && out) {
        al_atomic_file f;
        if (al_atomic_open(&f, out)) {
            rc = -1;
        } else if (write_set(f.fp, &s)) {
            al_atomic_abort(&f);
            rc = -1;
        } else {
            rc = al_atomic_commit(&f);
        }
    } else if (rc == 0) {
        rc = write_set(stdout, &s);
    }
    al_harm_gen_free(&s);
    if (rc) {
        fprintf(stderr, "align guard generate: %s\n", al_errmsg());
        return 1;
    }
    if (out)
        fprintf(stderr, "align guard generate: %d requests (%s split) to %s\n", o.n,
                o.split == AL_HARM_GEN_HELDOUT ? "heldout" : o.split == AL_HARM_GEN_VALID ? "valid" : "train",
                out);
    return 0;
}

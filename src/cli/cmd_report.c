/* align report: one HTML page from run directories. */
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align report DIR... [-o FILE.html] [--json FILE.json]\n"
    "\n"
    "Writes one self-contained HTML page (inline CSS and SVG charts, no script, nothing\n"
    "fetched: it opens offline) from run directories, in the order given:\n"
    "  - an align demo directory: the before/after table, the acceptance targets, the\n"
    "    red-team round's attack success per technique (the aligned model, behind the guard,\n"
    "    after the round) and every trainer's curves from its metrics.jsonl;\n"
    "  - an align redteam directory: attack success per technique and per category with\n"
    "    Wilson 95% intervals;\n"
    "  - any trainer's run directory: the curves of its metrics.jsonl.\n"
    "\n"
    "  -o, --out FILE      the HTML page (default report.html)\n"
    "      --json FILE     also what was drawn, as JSON\n"
    "  -h, --help          this text\n"
    "\n"
    "example:\n"
    "  align report build/align-demo rt -o report.html\n";

int cmd_report(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align report", argc, argv);
    const char *out = "report.html", *json = NULL, *arg;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    if (!dirs) {
        fprintf(stderr, "align report: out of memory\n");
        return 1;
    }
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            free(dirs);
            return 0;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else if (cli_opt(&a, arg, NULL, "--json")) {
            json = a.value;
        } else if (arg[0] != '-') {
            dirs[n++] = arg;
        } else {
            free(dirs);
            return cli_unknown(&a, arg);
        }
    }
    if (a.error || n == 0) {
        if (n == 0 && !a.error)
            fprintf(stderr, "align report: at least one run directory is required (see --help)\n");
        free(dirs);
        return 2;
    }
    int rc = al_report_html(dirs, n, out, json);
    if (rc)
        fprintf(stderr, "align report: %s\n", al_errmsg());
    else
        printf("wrote %s%s%s\n", out, json ? " and " : "", json ? json : "");
    free(dirs);
    return rc ? 1 : 0;
}

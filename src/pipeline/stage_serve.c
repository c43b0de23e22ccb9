/* Stage serve: the deployment.  The last model (the red-team round's) goes behind the
 * demo's guard in align serve on a loopback port, as a team would run the support
 * assistant, and the red team attacks it there over HTTP with the held-out harmful
 * requests and the red-team stage's techniques: every answer passes through the server's
 * input and output rails and its batched decoder.  Figures: the attack success rate as
 * the client sees it, and what the server did (prompts blocked, replies cut, escalations
 * queued for review, latency).  The review queue is OUT/serve/review.db. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "align/redteam.h"
#include "align/serve.h"
#include "internal.h"

int pipeline_stage_serve(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    const char *model_dir = pipeline_at(p, &ps, REDTEAM_RUN "/final"), *dir = pipeline_at(p, &ps, "serve"),
               *db = pipeline_at(p, &ps, "serve/review.db"), *policy = pipeline_at(p, &ps, "guard/policy.yaml"),
               *requests = pipeline_at(p, &ps, REDTEAM_RUN "/requests_heldout.jsonl"),
               *attacks = pipeline_at(p, &ps, "serve/attack_heldout"), *runs = pipeline_at(p, &ps, "runs"),
               *tok_path = pipeline_at(p, &ps, TOKENIZER), *world = pipeline_at(p, &ps, WORLD);
    int rc = model_dir && dir && db && policy && requests && attacks && runs && tok_path && world ? 0 : -1;
    rc = rc ? rc : al_mkdir_p(dir);
    if (rc == 0) {
        /* a rerun starts from an empty queue */
        unlink(db);
        char side[4096];
        snprintf(side, sizeof side, "%s-wal", db), unlink(side);
        snprintf(side, sizeof side, "%s-shm", db), unlink(side);
    }
    al_model m = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *tmpl = NULL;
    al_guard_policy pol = {0};
    bool have_pol = false;
    al_guard *guard = NULL;
    al_server *srv = NULL;
    rc = rc ? rc : al_model_load(&m, model_dir);
    rc = rc ? rc : pipeline_load_text(p, &tok, &tmpl);
    if (rc == 0 && (rc = al_guard_policy_load(policy, &pol)) == 0) {
        have_pol = true;
        guard = al_guard_open(&pol);
        rc = guard ? 0 : -1;
    }
    if (rc == 0) {
        al_serve_opts o = al_serve_defaults();
        o.model = &m, o.tok = tok, o.tmpl = tmpl, o.guard = guard, o.model_id = "support-assistant";
        o.model_path = model_dir;
        o.review_db = db, o.runs_dir = runs, o.port = 0, o.quiet = true;
        srv = al_server_start(&o);
        rc = srv ? 0 : -1;
    }
    al_redteam_summary s = {0};
    double t0 = al_now();
    if (rc == 0) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", al_server_port(srv));
        if (p->log)
            fprintf(p->log, "serve: %s (the red-team round's model behind the guard); attacking it there\n", url);
        al_technique ts[PIPELINE_N_REDTEAM_TECHNIQUES];
        for (int t = 0; rc == 0 && t < PIPELINE_N_REDTEAM_TECHNIQUES; t++)
            rc = al_technique_parse(pipeline_redteam_techniques[t], &ts[t]);
        al_redteam_opts ro;
        al_redteam_defaults(&ro);
        ro.endpoint = url, ro.endpoint_model = "support-assistant", ro.tokenizer = tok_path, ro.world = world;
        ro.requests = requests, ro.techniques = ts, ro.n_techniques = PIPELINE_N_REDTEAM_TECHNIQUES;
        ro.max_new_tokens = p->preset->redteam_max_new, ro.seed = p->seed, ro.out_dir = attacks;
        ro.quiet = !p->log;
        rc = rc ? rc : al_redteam_run(&ro, &s);
    }
    const double seconds = al_now() - t0;
    if (rc == 0) {
        al_serve_counts c;
        al_server_counts(srv, &c);
        json_t *by = json_object();
        for (int t = 0; by && t < s.n_techniques; t++)
            json_object_set_new(by, s.technique[t].name, json_real(s.technique[t].asr));
        json_object_set_new(fig, "attacks",
                            json_pack("{s:i, s:i, s:i, s:f, s:[f, f], s:o}", "attempts", s.overall.attempts,
                                      "successes", s.overall.successes, "skipped", s.overall.skipped, "asr",
                                      s.overall.asr, "asr_ci95", s.overall.lo, s.overall.hi, "by_technique", by));
        json_object_set_new(fig, "server",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "requests",
                                      (json_int_t)c.model_requests, "errors", (json_int_t)c.errors, "input_blocked",
                                      (json_int_t)c.input_blocked, "output_cut", (json_int_t)c.output_cut,
                                      "output_redacted", (json_int_t)c.output_redacted, "review_queued",
                                      (json_int_t)c.review_queued, "completion_tokens",
                                      (json_int_t)c.completion_tokens, "latency_mean_ms",
                                      1e3 * c.model_latency_mean, "latency_p50_ms_bound", 1e3 * c.model_latency_p50,
                                      "seconds", seconds));
        if (p->log) {
            fprintf(p->log, "served: %lld requests in %.1f s, %lld blocked at the prompt, %lld replies cut, %lld "
                            "queued for review, %lld errors; mean latency %.1f ms\n",
                    c.model_requests, seconds, c.input_blocked, c.output_cut, c.review_queued, c.errors,
                    1e3 * c.model_latency_mean);
            al_redteam_summary_print(&s, p->log);
        }
        if (c.errors > 0)
            rc = al_fail("serve: %lld of %lld requests failed", c.errors, c.requests);
    }
    al_redteam_summary_free(&s);
    al_server_stop(srv);
    al_guard_close(guard);
    if (have_pol)
        al_guard_policy_free(&pol);
    al_tokenizer_free(tok);
    al_chat_template_free(tmpl);
    al_model_free(&m);
    pipeline_paths_free(&ps);
    return rc;
}

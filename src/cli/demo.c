/* The driver of align demo: runs the stage table in order, skipping the stages a
 * previous run finished, and records each one as it completes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

char *demo_path(const demo_ctx *c, const char *rel)
{
    char *p = al_path_join(c->out, rel);
    if (!p)
        al_fail("out of memory");
    return p;
}

/* The 1-minute load average (NaN where /proc is missing): the machine may be shared,
 * and timings mean little without it. */
static double load_average(void)
{
    double x = NAN;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &x) != 1)
            x = NAN;
        fclose(fp);
    }
    return x;
}

/* OUT/settings.json names the preset and seed the run directory was made with; stages
 * finished under other settings must not be mixed into this run. */
static int check_settings(demo_ctx *c)
{
    char *path = demo_path(c, "settings.json");
    if (!path)
        return -1;
    int rc = 0;
    if (al_file_exists(path)) {
        json_error_t err;
        json_t *old = json_load_file(path, 0, &err);
        const char *preset = json_string_value(json_object_get(old, "preset"));
        json_int_t seed = json_integer_value(json_object_get(old, "seed"));
        if (!preset)
            rc = al_fail("%s: not a demo settings file (%s)", path, err.text);
        else if (strcmp(preset, c->p->name) || seed != (json_int_t)c->seed)
            rc = al_fail("%s holds a %s run with seed %lld; this is a %s run with seed %llu: pass --from-scratch "
                         "or another --out",
                         c->out, preset, (long long)seed, c->p->name, (unsigned long long)c->seed);
        json_decref(old);
    } else {
        json_t *s = json_pack("{s:s, s:I}", "preset", c->p->name, "seed", (json_int_t)c->seed);
        rc = s ? al_mkdir_p(c->out) || al_write_json_atomic(path, s) ? -1 : 0 : al_fail("out of memory");
        json_decref(s);
    }
    free(path);
    return rc;
}

static char *stage_file(const demo_ctx *c, const demo_stage *st)
{
    char rel[128];
    snprintf(rel, sizeof rel, "stages/%s.json", st->name);
    return demo_path(c, rel);
}

static int run_stage(demo_ctx *c, int i)
{
    const demo_stage *st = &demo_stages[i];
    char *path = stage_file(c, st);
    if (!path)
        return -1;
    if (al_file_exists(path)) {
        json_error_t err;
        json_t *rec = json_load_file(path, 0, &err);
        free(path);
        if (!rec)
            return al_fail("%s:%d: %s (delete the file to rerun the stage)", err.source, err.line, err.text);
        printf("[%2d/%d] %-13s done earlier (%.1f s), skipped\n", i + 1, demo_n_stages, st->name,
               json_real_value(json_object_get(rec, "seconds")));
        return json_object_set_new(c->stages, st->name, rec);
    }
    printf("\n[%2d/%d] %s: %s\n", i + 1, demo_n_stages, st->name, st->what);
    fflush(stdout);
    double t0 = al_now();
    json_t *fig = json_object();
    int rc = fig ? st->run(c, fig) : al_fail("out of memory");
    fflush(stdout);
    double seconds = al_now() - t0;
    json_t *rec = rc == 0 ? json_pack("{s:s, s:f, s:o, s:o}", "stage", st->name, "seconds", seconds,
                                      "load_average_1m", isnan(load_average()) ? json_null() : json_real(load_average()),
                                      "figures", fig)
                          : NULL;
    if (!rec)
        json_decref(fig);
    char *dir = demo_path(c, "stages");
    if (rc == 0)
        rc = !rec || !dir ? al_fail("out of memory") : al_mkdir_p(dir) || al_write_json_atomic(path, rec) ? -1 : 0;
    if (rc == 0) {
        printf("[%2d/%d] %s: done in %.1f s\n", i + 1, demo_n_stages, st->name, seconds);
        json_object_set(c->stages, st->name, rec);
    } else {
        al_fail_prefix("stage %s", st->name);
    }
    json_decref(rec);
    free(dir);
    free(path);
    return rc;
}

int demo_run(demo_ctx *c)
{
    double t0 = al_now();
    printf("align demo: %s run in %s (seed %llu, %d threads)\n", c->p->name, c->out, (unsigned long long)c->seed,
           c->threads);
    if (check_settings(c))
        return -1;
    for (int i = 0; i < demo_n_stages; i++)
        if (run_stage(c, i))
            return -1;
    return demo_report(c, al_now() - t0, stdout) < 0 ? -1 : 0;
}

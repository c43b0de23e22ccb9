/* The pipeline's runner: goes through the stage table in order, skipping the stages an
 * earlier run finished, and records each one as it completes (align/pipeline.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int al_pipeline_init(al_pipeline *p, const char *out, const al_pipeline_preset *preset)
{
    *p = (al_pipeline){.out = out, .seed = 1, .threads = 2, .preset = preset, .stages = json_object()};
    return p->stages ? 0 : al_fail("out of memory");
}

void al_pipeline_free(al_pipeline *p)
{
    json_decref(p->stages);
    p->stages = NULL;
}

const json_t *al_pipeline_figures(const al_pipeline *p, const char *stage)
{
    return json_object_get(json_object_get(p->stages, stage), "figures");
}

/* The stage lines go to the log, if any, flushed so that they keep their place among the
 * trainers' lines on stderr. */
static void log_line(const al_pipeline *p, const char *fmt, ...) AL_PRINTF(2, 3);
static void log_line(const al_pipeline *p, const char *fmt, ...)
{
    if (!p->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->log, fmt, ap);
    va_end(ap);
    fflush(p->log);
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
static int check_settings(al_pipeline *p)
{
    char *path = pipeline_path(p, "settings.json");
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
        else if (strcmp(preset, p->preset->name) || seed != (json_int_t)p->seed)
            rc = al_fail("%s holds a %s run with seed %lld; this is a %s run with seed %llu: pass --from-scratch "
                         "or another --out",
                         p->out, preset, (long long)seed, p->preset->name, (unsigned long long)p->seed);
        json_decref(old);
    } else {
        json_t *s = json_pack("{s:s, s:I}", "preset", p->preset->name, "seed", (json_int_t)p->seed);
        rc = s ? al_mkdir_p(p->out) || al_write_json_atomic(path, s) ? -1 : 0 : al_fail("out of memory");
        json_decref(s);
    }
    free(path);
    return rc;
}

static char *stage_file(const al_pipeline *p, const al_pipeline_stage *st)
{
    char rel[128];
    snprintf(rel, sizeof rel, "stages/%s.json", st->name);
    return pipeline_path(p, rel);
}

/* Runs stage i, or takes its record from OUT/stages/NAME.json when an earlier run
 * finished it; either way the record lands in p->stages. */
static int run_stage(al_pipeline *p, int i)
{
    const al_pipeline_stage *st = &al_pipeline_stages[i];
    char *path = stage_file(p, st);
    if (!path)
        return -1;
    if (al_file_exists(path)) {
        json_error_t err;
        json_t *rec = json_load_file(path, 0, &err);
        free(path);
        if (!rec)
            return al_fail("%s:%d: %s (delete the file to rerun the stage)", err.source, err.line, err.text);
        log_line(p, "[%2d/%d] %-13s done earlier (%.1f s), skipped\n", i + 1, al_pipeline_n_stages, st->name,
                 json_real_value(json_object_get(rec, "seconds")));
        return json_object_set_new(p->stages, st->name, rec);
    }
    log_line(p, "\n[%2d/%d] %s: %s\n", i + 1, al_pipeline_n_stages, st->name, st->what);
    double t0 = al_now();
    json_t *fig = json_object();
    int rc = fig ? st->run(p, fig) : al_fail("out of memory");
    if (p->log)
        fflush(p->log);
    double seconds = al_now() - t0;
    json_t *rec = rc == 0 ? json_pack("{s:s, s:f, s:o, s:o}", "stage", st->name, "seconds", seconds,
                                      "load_average_1m", isnan(load_average()) ? json_null() : json_real(load_average()),
                                      "figures", fig)
                          : NULL;
    if (!rec)
        json_decref(fig);
    char *dir = pipeline_path(p, "stages");
    if (rc == 0)
        rc = !rec || !dir ? al_fail("out of memory") : al_mkdir_p(dir) || al_write_json_atomic(path, rec) ? -1 : 0;
    if (rc == 0) {
        log_line(p, "[%2d/%d] %s: done in %.1f s\n", i + 1, al_pipeline_n_stages, st->name, seconds);
        json_object_set(p->stages, st->name, rec);
    } else {
        al_fail_prefix("stage %s", st->name);
    }
    json_decref(rec);
    free(dir);
    free(path);
    return rc;
}

int al_pipeline_run(al_pipeline *p)
{
    log_line(p, "align demo: %s run in %s (seed %llu, %d threads)\n", p->preset->name, p->out,
             (unsigned long long)p->seed, p->threads);
    if (check_settings(p))
        return -1;
    for (int i = 0; i < al_pipeline_n_stages; i++)
        if (run_stage(p, i))
            return -1;
    return 0;
}

int al_pipeline_run_stage(al_pipeline *p, const char *name)
{
    for (int i = 0; i < al_pipeline_n_stages; i++)
        if (!strcmp(al_pipeline_stages[i].name, name))
            return check_settings(p) ? -1 : run_stage(p, i);
    return al_fail("no pipeline stage named %s", name);
}

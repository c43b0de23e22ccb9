/* metrics.jsonl: one JSON object per line, flushed as written so a killed run keeps every
 * line it reported. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/train.h"

int al_metrics_open(al_metrics *mt, const char *out_dir, bool append)
{
    char *path = al_path_join(out_dir, "metrics.jsonl");
    if (!path)
        return al_fail("out of memory");
    mt->fp = fopen(path, append ? "ab" : "wb");
    int rc = mt->fp ? 0 : al_fail("%s: cannot open: %s", path, strerror(errno));
    free(path);
    return rc;
}

int al_metrics_write(al_metrics *mt, const char *json_text)
{
    if (!mt->fp)
        return 0;
    if (fputs(json_text, mt->fp) < 0 || fputc('\n', mt->fp) < 0 || fflush(mt->fp) != 0)
        return al_fail("metrics.jsonl: write failed: %s", strerror(errno));
    return 0;
}

void al_metrics_close(al_metrics *mt)
{
    if (mt->fp)
        fclose(mt->fp);
    mt->fp = NULL;
}

/* Keeps the lines whose "step" is at most `step`; a resumed run then appends the rest, so
 * metrics.jsonl reads as if the run had never stopped. */
int al_metrics_truncate_after(const char *out_dir, long step)
{
    char *path = al_path_join(out_dir, "metrics.jsonl");
    al_buf in = {0};
    if (!path || !al_file_exists(path) || al_read_file(path, &in)) {
        free(path);
        return 0;
    }
    al_atomic_file f;
    int rc = al_atomic_open(&f, path);
    for (char *line = in.data; rc == 0 && line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        json_t *s = j ? json_object_get(j, "step") : NULL;
        if (j && json_is_integer(s) && json_integer_value(s) <= step) {
            fwrite(line, 1, len, f.fp);
            fputc('\n', f.fp);
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    if (rc == 0)
        rc = al_atomic_commit(&f);
    al_buf_free(&in);
    free(path);
    return rc;
}

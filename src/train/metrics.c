/* metrics.jsonl: one JSON object per line, flushed as written so a killed run keeps every
 * line it reported. */
#include <errno.h>
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

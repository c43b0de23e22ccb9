/* JSON files written whole or not at all. */
#include <jansson.h>

#include "align/core.h"

int al_write_json_atomic(const char *path, const json_t *root)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    if (json_dumpf(root, f.fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) != 0 ||
        fputc('\n', f.fp) == EOF) {
        al_atomic_abort(&f);
        return al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}

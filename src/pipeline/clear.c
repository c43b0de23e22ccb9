/* al_pipeline_clear (--from-scratch): a run directory may be one the user also keeps other
 * things in, so only what the pipeline writes is deleted. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int pipeline_remove_tree(const char *path)
{
    if (access(path, F_OK) != 0)
        return 0;
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) ? al_fail("%s: could not delete it", path) : 0;
}

int al_pipeline_clear(const char *dir)
{
    static const char *const owned[] = {"stages", "world", "tokenizer", "runs", "eval", "guard",
                                        "settings.json", "summary.json"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        char *p = al_path_join(dir, owned[i]);
        if (!p)
            return al_fail("out of memory");
        int rc = access(p, F_OK) == 0 ? nftw(p, remove_one, 16, FTW_DEPTH | FTW_PHYS) : 0;
        free(p);
        if (rc)
            return al_fail("%s/%s: could not delete it", dir, owned[i]);
    }
    return 0;
}

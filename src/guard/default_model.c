/* Where the built-in policy's harm model lives: $ALIGN_HARM_MODEL, else harm_default.bin
 * beside the running executable, where the build writes it (`align guard train --default`
 * runs as part of `cmake --build`).  Beside the binary rather than in the working
 * directory, so that every command, test and script finds the same model wherever it
 * runs from. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/core.h"
#include "align/guard.h"

#define DEFAULT_MODEL_NAME "harm_default.bin"

char *al_harm_default_model_path(void)
{
    const char *env = getenv("ALIGN_HARM_MODEL");
    if (env && *env) {
        char *p = strdup(env);
        if (!p)
            al_fail("out of memory");
        return p;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        al_fail("cannot find the running executable (/proc/self/exe) to locate %s; set ALIGN_HARM_MODEL",
                DEFAULT_MODEL_NAME);
        return NULL;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    return al_path_join(slash ? exe : ".", DEFAULT_MODEL_NAME);
}

/* al_model_load: picks the reader from the path (and, for files without a telling
 * extension, from the first bytes). */
#include "align/model.h"

#include <string.h>
#include <strings.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* First bytes: "GGUF" magic, or a safetensors header (u64 length that fits, then '{'). */
static const char *sniff(const char *path)
{
    al_mapped f;
    if (al_map_file(path, &f))
        return NULL;
    const char *kind = NULL;
    if (f.size >= 4 && !memcmp(f.data, "GGUF", 4)) {
        kind = "gguf";
    } else if (f.size >= 9) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | f.data[i];
        if (n >= 2 && n <= f.size - 8 && f.data[8] == '{')
            kind = "safetensors";
    }
    al_unmap_file(&f);
    return kind;
}

int al_model_load(al_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    if (al_is_dir(path))
        return al_model_load_safetensors(m, path);
    if (!al_file_exists(path))
        return al_fail("%s: no such model file or directory", path);
    const char *kind = NULL;
    if (has_suffix(path, ".safetensors"))
        kind = "safetensors";
    else if (has_suffix(path, ".gguf"))
        kind = "gguf";
    else
        kind = sniff(path);
    if (kind && !strcmp(kind, "safetensors"))
        return al_model_load_safetensors(m, path);
    if (kind && !strcmp(kind, "gguf"))
        return al_model_load_gguf(m, path);
    return al_model_load_llama2c(m, path);
}

/* The dashboard built into the library (cmake/embed_ui.cmake over src/serve/ui/): every
 * file is found under its /ui path with its type, "/ui" and "/ui/" are the page, nothing
 * else is found, the embedded bytes are the files' bytes, and the page loads nothing from
 * the network (it has to work on a machine with none). */
#include <dirent.h>

#include "align/serve.h"
#include "test.h"

static bool contains(const al_ui_file *f, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= f->len; i++)
        if (memcmp(f->data + i, needle, n) == 0)
            return true;
    return false;
}

/* Counts "http://" and "https://" in f, the SVG namespace aside: app.js names it to
 * create chart elements, and a namespace is an identifier, never fetched. */
static int network_urls(const al_ui_file *f)
{
    static const char svg_ns[] = "http://www.w3.org/2000/svg";
    int count = 0;
    for (size_t i = 0; i < f->len; i++) {
        const char *p = (const char *)f->data + i;
        size_t left = f->len - i;
        bool http = left >= 7 && memcmp(p, "http://", 7) == 0;
        bool https = left >= 8 && memcmp(p, "https://", 8) == 0;
        if (!http && !https)
            continue;
        if (http && left >= sizeof svg_ns - 1 && memcmp(p, svg_ns, sizeof svg_ns - 1) == 0)
            continue;
        fprintf(stderr, "%s: a network URL at byte %zu: %.40s\n", f->path, i, p);
        count++;
    }
    return count;
}

/* The embedded copy matches the source file byte for byte. */
static bool same_as_source(const al_ui_file *f, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/src/serve/ui/%s", ALIGN_SOURCE_DIR, name);
    al_buf src = {0};
    bool same = al_read_file(path, &src) == 0 && src.len == f->len &&
                memcmp(src.data, f->data, f->len) == 0;
    al_buf_free(&src);
    return same;
}

int main(void)
{
    static const struct { const char *path, *name, *mime; } files[] = {
        {"/ui/index.html", "index.html", "text/html; charset=utf-8"},
        {"/ui/app.js", "app.js", "application/javascript; charset=utf-8"},
        {"/ui/style.css", "style.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const al_ui_file *f = al_ui_find(files[i].path);
        CHECKF(f != NULL, "%s", files[i].path);
        if (!f)
            continue;
        CHECK(strcmp(f->path, files[i].path) == 0);
        CHECKF(strcmp(f->mime, files[i].mime) == 0, "%s: %s", f->path, f->mime);
        CHECKF(f->len > 100, "%s: %zu bytes", f->path, f->len);
        CHECKF(same_as_source(f, files[i].name), "%s differs from src/serve/ui/%s", f->path, files[i].name);
        CHECKF(f->data[f->len] == 0, "%s: not NUL-terminated", f->path);
    }

    const al_ui_file *index = al_ui_find("/ui/index.html");
    CHECK(al_ui_find("/ui") == index && al_ui_find("/ui/") == index);
    if (index) {
        CHECK(contains(index, "app.js"));
        CHECK(contains(index, "style.css"));
    }

    static const char *const missing[] = {
        "/ui/../x", "/ui/../index.html", "/ui//index.html", "/ui/./app.js", "/ui/nope.js",
        "/ui/index.html/", "/UI/index.html", "/index.html", "/ui.", "/uiapp.js", "", "ui/app.js",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        CHECKF(al_ui_find(missing[i]) == NULL, "\"%s\" was found", missing[i]);
    CHECK(al_ui_find(NULL) == NULL);

    /* every file in src/serve/ui, not only the three above: one added later is embedded
     * and held to the same rule */
    char dir_path[1024];
    snprintf(dir_path, sizeof dir_path, "%s/src/serve/ui", ALIGN_SOURCE_DIR);
    DIR *dir = opendir(dir_path);
    CHECKF(dir != NULL, "%s", dir_path);
    int seen = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) {
        if (e->d_name[0] == '.' || e->d_type == DT_DIR)
            continue;
        char path[512];
        snprintf(path, sizeof path, "/ui/%s", e->d_name);
        const al_ui_file *f = al_ui_find(path);
        CHECKF(f != NULL, "%s is not embedded", path);
        if (!f)
            continue;
        seen++;
        CHECKF(same_as_source(f, e->d_name), "%s differs from its source", path);
        CHECKF(network_urls(f) == 0, "%s loads something from the network", path);
    }
    if (dir)
        closedir(dir);
    CHECK(seen >= 3);
    return test_report();
}

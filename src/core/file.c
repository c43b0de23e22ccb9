/* Files: mapping, whole-file reads, directories, and atomic replacement. */
#include "align/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int al_map_file(const char *path, al_mapped *out)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return al_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return al_fail("%s: not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return al_fail("%s: cannot map: %s", path, strerror(errno));
        }
        out->data = p;
    }
    close(fd);
    return 0;
}

void al_unmap_file(al_mapped *m)
{
    if (m->data && m->size)
        munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

int al_read_file(const char *path, al_buf *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return al_fail("%s: cannot open: %s", path, strerror(errno));
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (al_buf_append(out, chunk, n)) {
            fclose(fp);
            return -1;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad)
        return al_fail("%s: read error", path);
    if (!out->data && al_buf_append(out, "", 0))
        return -1;
    return 0;
}

bool al_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool al_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int al_mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return al_fail("out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            al_fail("%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = al_fail("%s: cannot create directory: %s", p, strerror(errno));
    free(p);
    return rc;
}

char *al_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/')
        s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

int al_atomic_open(al_atomic_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    size_t n = strlen(path) + 32;
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        al_atomic_abort(f);
        return al_fail("out of memory");
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        int e = errno;
        al_atomic_abort(f);
        return al_fail("%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

static void fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int al_atomic_commit(al_atomic_file *f)
{
    int rc = 0;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        rc = al_fail("%s: write failed: %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && rc == 0)
        rc = al_fail("%s: close failed: %s", f->path, strerror(errno));
    f->fp = NULL;
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = al_fail("%s: rename failed: %s", f->path, strerror(errno));
    if (rc == 0)
        fsync_parent_dir(f->path);
    else
        unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    return rc;
}

void al_atomic_abort(al_atomic_file *f)
{
    if (f->fp) {
        fclose(f->fp);
        unlink(f->tmp);
    }
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
}

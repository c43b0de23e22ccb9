/* Time and a terminal progress bar.  The bar is drawn on stderr only when it is
 * a terminal, so logs and CI output stay clean; ALIGN_PROGRESS=1 forces it on. */
#include "align/core.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double al_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void al_progress_begin(al_progress *p, const char *label, long total)
{
    const char *force = getenv("ALIGN_PROGRESS");
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start = al_now();
    p->last_draw = 0;
    p->tty = isatty(STDERR_FILENO);
    p->enabled = force ? atoi(force) != 0 : p->tty;
}

static void format_eta(char *out, size_t n, double secs)
{
    if (secs < 0 || secs > 1e7) {
        snprintf(out, n, "--:--");
        return;
    }
    long s = (long)(secs + 0.5);
    if (s >= 3600)
        snprintf(out, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(out, n, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(al_progress *p, const char *extra, double now)
{
    const int width = 24;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * width);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double elapsed = now - p->start;
    char eta[32];
    format_eta(eta, sizeof eta, p->done > 0 ? elapsed * (double)(p->total - p->done) / (double)p->done : -1);
    fprintf(stderr, "%s%s [%s] %ld/%ld eta %s%s%s", p->tty ? "\r\033[K" : "", p->label, bar, p->done,
            p->total, eta, extra ? "  " : "", extra ? extra : "");
    if (!p->tty)
        fputc('\n', stderr);
    fflush(stderr);
    p->last_draw = now;
}

void al_progress_update(al_progress *p, long done, const char *extra)
{
    p->done = done;
    if (!p->enabled)
        return;
    double now = al_now();
    if (now - p->last_draw < (p->tty ? 0.1 : 5.0) && done < p->total)
        return;
    draw(p, extra, now);
}

void al_progress_end(al_progress *p)
{
    if (!p->enabled)
        return;
    if (p->tty)
        fputc('\n', stderr);
    fflush(stderr);
}

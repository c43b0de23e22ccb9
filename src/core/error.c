/* Per-thread error message: the last failure's description, with context
 * prepended as it travels up (file name, then section, then field). */
#include "align/core.h"

#include <string.h>

static _Thread_local char errbuf[2048];

int al_vfail(const char *fmt, va_list ap)
{
    char msg[sizeof errbuf]; /* an argument may be al_errmsg() itself: context prepended */
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(errbuf, msg, sizeof errbuf);
    return -1;
}

int al_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    al_vfail(fmt, ap);
    va_end(ap);
    return -1;
}

int al_vfail_at(const char *origin, long line, long col, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return al_fail("%s:%ld:%ld: %s", origin, line, col, msg);
}

int al_fail_at(const char *origin, long line, long col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    al_vfail_at(origin, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

int al_fail_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof errbuf - 3)
        k = sizeof errbuf - 3;
    memcpy(errbuf, prefix, k);
    errbuf[k] = ':';
    errbuf[k + 1] = ' ';
    size_t rest = sizeof errbuf - k - 2;
    size_t m = strnlen(old, rest - 1);
    memcpy(errbuf + k + 2, old, m);
    errbuf[k + 2 + m] = 0;
    return -1;
}

const char *al_errmsg(void) { return errbuf[0] ? errbuf : "no error"; }

void al_clear_error(void) { errbuf[0] = 0; }

/* A minimal RFC 4180 CSV reader: benchmarks (AdvBench, HarmBench, JailbreakBench,
 * Do-Not-Answer) ship as CSV with a header row. */
#include <string.h>

#include "align/core.h"

int al_csv_record(char **p, char **fields, int max)
{
    char *s = *p;
    if (!*s)
        return 0;
    int n = 0;
    for (;;) {
        char *out = s, *start = s;
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s)
                    break;
                if (*s == '"' && s[1] == '"') {
                    *out++ = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    *out++ = *s++;
                }
            }
            while (*s && *s != ',' && *s != '\n')
                s++;
        } else {
            while (*s && *s != ',' && *s != '\n')
                s++;
            out = s;
        }
        char end = *s;
        if (n < max)
            fields[n++] = start;
        *out = 0;
        if (out > start && out[-1] == '\r')
            out[-1] = 0;
        if (end == ',') {
            s++;
            continue;
        }
        if (end == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

int al_csv_column(char **fields, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(fields[i], name) == 0)
            return i;
    return -1;
}

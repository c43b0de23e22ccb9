/* Table-driven settings files: one writer and one reader for every trainer. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "align/train.h"
#include "settings.h"

json_t *settings_to_json(const void *obj, const setting *t, int n)
{
    json_t *j = json_object();
    for (int i = 0; i < n; i++) {
        const void *p = (const char *)obj + t[i].offset;
        json_t *v = NULL;
        switch (t[i].type) {
        case SET_STR:
            v = *(const char *const *)p ? json_string(*(const char *const *)p) : json_null();
            break;
        case SET_INT:
            v = json_integer(*(const int *)p);
            break;
        case SET_LONG:
            v = json_integer(*(const long *)p);
            break;
        case SET_FLOAT:
            v = json_real(*(const float *)p);
            break;
        case SET_DOUBLE:
            v = json_real(*(const double *)p);
            break;
        case SET_BOOL:
            v = json_boolean(*(const bool *)p);
            break;
        case SET_U64:
            v = json_integer((json_int_t) * (const uint64_t *)p);
            break;
        case SET_SCHEDULE:
            v = json_string(al_schedule_name(*(const al_schedule_kind *)p));
            break;
        }
        json_object_set_new(j, t[i].key, v);
    }
    return j;
}

int settings_from_json(void *obj, json_t *j, const setting *t, int n, const char *origin)
{
    for (int i = 0; i < n; i++) {
        json_t *v = json_object_get(j, t[i].key);
        if (!v || json_is_null(v))
            continue;
        void *p = (char *)obj + t[i].offset;
        bool ok = true;
        switch (t[i].type) {
        case SET_STR:
            ok = json_is_string(v);
            if (ok)
                *(const char **)p = json_string_value(v);
            break;
        case SET_BOOL:
            ok = json_is_boolean(v);
            if (ok)
                *(bool *)p = json_is_true(v);
            break;
        case SET_SCHEDULE:
            if (!json_is_string(v) || al_schedule_parse(json_string_value(v), (al_schedule_kind *)p))
                return al_fail("%s: \"%s\": expected a schedule name", origin, t[i].key);
            break;
        default:
            ok = json_is_number(v);
            if (!ok)
                break;
            double x = json_number_value(v);
            if (t[i].type == SET_U64 && json_is_integer(v)) {
                /* written as a json_int_t: a seed of 2^63 or more comes back negative, and casts back */
                *(uint64_t *)p = (uint64_t)json_integer_value(v);
                break;
            }
            if (t[i].type == SET_INT || t[i].type == SET_LONG || t[i].type == SET_U64) {
                /* check the range before the cast: out of range, the conversion is undefined */
                double lo = t[i].type == SET_INT ? INT_MIN : t[i].type == SET_LONG ? (double)LONG_MIN : 0;
                double end = t[i].type == SET_INT ? INT_MAX + 1.0 : t[i].type == SET_LONG ? -(double)LONG_MIN : 0x1p64;
                if (!(x >= lo && x < end) || x != floor(x))
                    return al_fail("%s: \"%s\": expected an integer in [%.0f, %.0f), got %g", origin, t[i].key, lo,
                                   end, x);
            }
            if (t[i].type == SET_INT)
                *(int *)p = (int)x;
            else if (t[i].type == SET_LONG)
                *(long *)p = (long)x;
            else if (t[i].type == SET_FLOAT)
                *(float *)p = (float)x;
            else if (t[i].type == SET_DOUBLE)
                *(double *)p = x;
            else
                *(uint64_t *)p = (uint64_t)x;
            break;
        }
        if (!ok)
            return al_fail("%s: \"%s\": wrong type", origin, t[i].key);
    }
    return 0;
}

json_t *settings_load(const char *dir, const char *name)
{
    char *path = al_path_join(dir, name);
    json_error_t err;
    json_t *j = path ? json_load_file(path, 0, &err) : NULL;
    if (!j)
        al_fail("%s:%d: %s", path ? path : dir, path ? err.line : 0, path ? err.text : "out of memory");
    else if (!json_is_object(j)) {
        al_fail("%s: expected a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    free(path);
    return j;
}

/* A run's settings as JSON (train_args.json, sft_args.json), from one table per options
 * struct: each entry names a key, its type and where it lives in the struct.  Internal to
 * the train module. */
#ifndef ALIGN_TRAIN_SETTINGS_H
#define ALIGN_TRAIN_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

typedef enum { SET_STR, SET_INT, SET_LONG, SET_FLOAT, SET_DOUBLE, SET_BOOL, SET_U64, SET_SCHEDULE } setting_type;

typedef struct setting {
    const char *key;
    setting_type type;
    size_t offset;
} setting;

#define SETTING(STRUCT, KEY, TYPE, MEMBER) {KEY, TYPE, offsetof(STRUCT, MEMBER)}

json_t *settings_to_json(const void *obj, const setting *table, int n);
/* Keys absent from j keep obj's values (its defaults); strings point into j. */
int settings_from_json(void *obj, json_t *j, const setting *table, int n, const char *origin);
/* DIR/NAME parsed, or NULL with a located error. */
json_t *settings_load(const char *dir, const char *name);

#endif

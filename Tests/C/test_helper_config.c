/*
 * test_helper_config.c — the helper layer's config items, folders and config
 * sets, through <grpchelper.h> only:
 * - gh_config_new: the name rule ([a-z][a-z0-9-]*, else GH_ERR_RESULT with
 *   GH_RC_ERROR_PARAM_INVALID and a message), GH_CONFIG_VALID_CUSTOM without a
 *   function (GH_RC_ERROR_PARAM_MISSING), an unknown validator
 *   (GH_ERR_INVALID_ARGUMENT); gh_last_result_code per thread;
 * - every validator's edges through gh_config_validate and gh_config_update
 *   (Python's int()/float() readings, positive checks, empty values and
 *   can_be_empty), the item and value named in the message, the value left
 *   unchanged on error; a C custom validator's code and message reaching the
 *   caller; its free_user_data called exactly once (at gh_config_free, at
 *   gh_config_set_free when a set holds the item, at once when gh_config_new
 *   fails);
 * - gh_config_value / default_value / int_value / float_value / reset, and
 *   gh_config_describe decoded as a ConfigItem message;
 * - gh_config_static_items: the 12 items of the seed table, their defaults,
 *   rpc-logs-interval-unit's units;
 * - gh_folders: system never created, user and workspace created on first
 *   use, "~" expanded with HOME, NULL folders, a folder that cannot be made;
 * - gh_config_set_new: the default layers (hard-coded < system config.json <
 *   user config.json < environment < cli), an invalid default naming the item
 *   and its layer, an item in both lists or twice, malformed config.json
 *   files naming the file, malformed cli strings; gh_config_set_item;
 * - gh_config_set_get / set / reset on hand-encoded Filter and ConfigUpdate
 *   messages, their errors (nothing applied), undecodable requests;
 *   gh_config_set_update;
 * - persistence in <workspace>/config.json (non-default values only, valid
 *   JSON at every moment while 8 threads update), restored by a new set; a
 *   persisted value that no longer validates falls back with a warning.
 * Everything happens below one mkdtemp folder, removed at the end.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

_Static_assert(GH_ERR_RESULT == -507, "GH_ERR_RESULT");
_Static_assert(GH_RC_OK == 0, "GH_RC_OK");
_Static_assert(GH_RC_ERROR == 1, "GH_RC_ERROR");
_Static_assert(GH_RC_ERROR_PARAM_MISSING == 20, "GH_RC_ERROR_PARAM_MISSING");
_Static_assert(GH_RC_ERROR_PARAM_INVALID == 21, "GH_RC_ERROR_PARAM_INVALID");
_Static_assert(GH_RC_ERROR_ITEM_UNKNOWN == 30, "GH_RC_ERROR_ITEM_UNKNOWN");
_Static_assert(GH_RC_ERROR_MODEL_INVALID == 40, "GH_RC_ERROR_MODEL_INVALID");
_Static_assert(GH_RC_ERROR_CUSTOM == 100, "GH_RC_ERROR_CUSTOM");
_Static_assert(GH_CONFIG_VALID_STRING == 0 && GH_CONFIG_VALID_CUSTOM == 1 &&
                   GH_CONFIG_VALID_INT == 2 && GH_CONFIG_VALID_POS_INT == 3 &&
                   GH_CONFIG_VALID_FLOAT == 4 && GH_CONFIG_VALID_POS_FLOAT == 5,
               "gh_config_validator");

/* The root of every file this test makes. */
static char *g_tmp;

/* A fresh folder <g_tmp>/<name> (made). */
/* ------------------------------------------------------------------------ */
/* Items: small helpers                                                     */
/* ------------------------------------------------------------------------ */

static gh_config *item_new(const char *name, const char *default_value,
                           int can_be_empty, int validator) {
    gh_config *c = NULL;
    CHECK_OK(gh_config_new(name, NULL, default_value, can_be_empty, validator,
                           NULL, NULL, NULL, &c));
    CHECK(c != NULL);
    return c;
}

/* The item's current value must be |want|. */
static void check_value(const gh_config *c, const char *want) {
    char *v = gh_config_value(c);
    CHECK_STR(v, want);
    gh_free(v);
}

static void check_default(const gh_config *c, const char *want) {
    char *v = gh_config_default_value(c);
    CHECK_STR(v, want);
    gh_free(v);
}

/* |value| is accepted by validate and update (then it is the value). */
static void accepts(gh_config *c, const char *value) {
    CHECK_OK(gh_config_validate(c, value));
    CHECK_OK(gh_config_update(c, value));
    check_value(c, value);
}

/* |value| is refused with |code| by validate and update, which leaves the
 * value as it was. GH_RC_ERROR_PARAM_INVALID names the item and the value. */
static void refuses(gh_config *c, const char *value, int code) {
    char *before = gh_config_value(c);
    CHECK(before != NULL);
    const char *msg = CHECK_RESULT(gh_config_validate(c, value), code);
    if (code == GH_RC_ERROR_PARAM_INVALID) {
        CHECK_CONTAINS(msg, gh_config_name(c));
        CHECK_CONTAINS(msg, value);
    }
    CHECK_RESULT(gh_config_update(c, value), code);
    check_value(c, before);
    gh_free(before);
}

/* ------------------------------------------------------------------------ */
/* A C custom validator                                                     */
/* ------------------------------------------------------------------------ */

/* Refuses the values that start with "bad" with |code| and the message
 * "custom refuses <value> for <name>"; counts calls and frees. */
typedef struct {
    atomic_int calls;
    atomic_int freed;
    int code;
    atomic_size_t message_size;
} custom_state;

static void custom_init(custom_state *st, int code) {
    atomic_init(&st->calls, 0);
    atomic_init(&st->freed, 0);
    atomic_init(&st->message_size, 0);
    st->code = code;
}

static int custom_validate(void *user_data, const char *name, const char *value,
                           char *message, size_t message_size) {
    custom_state *st = user_data;
    CHECK(name != NULL && value != NULL && message != NULL);
    atomic_fetch_add(&st->calls, 1);
    atomic_store(&st->message_size, message_size);
    if (strncmp(value, "bad", 3) != 0) return GH_RC_OK;
    CHECK(message_size > 1);
    snprintf(message, message_size, "custom refuses %s for %s", value, name);
    return st->code;
}

static void custom_free(void *user_data) {
    custom_state *st = user_data;
    atomic_fetch_add(&st->freed, 1);
}

static gh_config *custom_item(const char *name, const char *default_value,
                              custom_state *st) {
    gh_config *c = NULL;
    CHECK_OK(gh_config_new(name, "custom", default_value, 0,
                           GH_CONFIG_VALID_CUSTOM, custom_validate, st,
                           custom_free, &c));
    CHECK(c != NULL);
    return c;
}

/* ------------------------------------------------------------------------ */
/* ConfigItem / ConfigStatus decoding, Filter / ConfigUpdate encoding       */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *name;
    char *description;
    char *value;
    char *default_value;
    int can_be_empty;
    int validator;
} config_item;

static void item_decode(const uint8_t *data, size_t len, config_item *it) {
    /* proto3: absent fields hold their zero values. */
    it->name = strdup("");
    it->description = strdup("");
    it->value = strdup("");
    it->default_value = strdup("");
    it->can_be_empty = 0;
    it->validator = 0;
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        char **s = NULL;
        switch (f.field) {
        case 1: s = &it->name; break;
        case 2: s = &it->description; break;
        case 3: s = &it->value; break;
        case 4: s = &it->default_value; break;
        case 5:
            CHECK_EQ(f.wire, 0);
            it->can_be_empty = f.varint != 0;
            break;
        case 6:
            CHECK_EQ(f.wire, 0);
            it->validator = (int)f.varint;
            break;
        default:
            CHECK_MSG(0, "unexpected ConfigItem field %d", f.field);
        }
        if (s != NULL) {
            free(*s);
            *s = tu_pb_strdup(&f);
        }
    }
}

static void item_clear(config_item *it) {
    free(it->name);
    free(it->description);
    free(it->value);
    free(it->default_value);
    memset(it, 0, sizeof *it);
}

#define MAX_ITEMS 32

typedef struct {
    size_t count;
    config_item items[MAX_ITEMS];
} config_status;

/* Decodes a ConfigStatus (field 1, the Result, is skipped) and frees |data|. */
static void status_decode(uint8_t *data, size_t len, config_status *st) {
    memset(st, 0, sizeof *st);
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == 1) {
            CHECK_EQ(f.wire, 2);
            continue;
        }
        CHECK_MSG(f.field == 2 && f.wire == 2, "unexpected ConfigStatus field %d",
                  f.field);
        CHECK(st->count < MAX_ITEMS);
        item_decode(f.bytes, f.len, &st->items[st->count++]);
    }
    gh_free(data);
}

static void status_clear(config_status *st) {
    for (size_t i = 0; i < st->count; i++) item_clear(&st->items[i]);
    st->count = 0;
}

static const config_item *status_find(const config_status *st, const char *name) {
    for (size_t i = 0; i < st->count; i++) {
        if (strcmp(st->items[i].name, name) == 0) return &st->items[i];
    }
    return NULL;
}

/* ConfigUpdate { 1: repeated ConfigItemUpdate { 1: name; 2: value };
 * 2: ignore_unknown }, from NULL-terminated name, value pairs. */
static tu_buf config_update(int ignore_unknown, const char *const *pairs) {
    tu_buf b = {0};
    for (size_t i = 0; pairs != NULL && pairs[i] != NULL; i += 2) {
        tu_buf item = {0};
        tu_pb_string(&item, 1, pairs[i]);
        tu_pb_string(&item, 2, pairs[i + 1]);
        tu_pb_message(&b, 1, &item);
        tu_buf_free(&item);
    }
    if (ignore_unknown) tu_pb_varint(&b, 2, 1);
    return b;
}

typedef int (*set_op)(gh_config_set *, const uint8_t *, size_t, uint8_t **,
                      size_t *);

/* Runs |op| with |req| (freed), which must succeed; decodes the response. */
static void op_ok(set_op op, gh_config_set *set, tu_buf req, config_status *st) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(op(set, req.data, req.len, &resp, &len));
    CHECK(resp != NULL || len == 0);
    status_decode(resp, len, st);
    tu_buf_free(&req);
}

/* Runs |op| with |req| (freed), which must fail with GH_ERR_RESULT |code|. */
static const char *op_fails(set_op op, gh_config_set *set, tu_buf req, int code) {
    uint8_t *resp = NULL;
    size_t len = 0;
    const char *msg =
        CHECK_RESULT(op(set, req.data, req.len, &resp, &len), code);
    tu_buf_free(&req);
    return msg;
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------------ */
/* gh_config_new                                                            */
/* ------------------------------------------------------------------------ */

static void *thread_result_code(void *arg) {
    (void)arg;
    /* Per thread: nothing failed on this thread yet. */
    CHECK_EQ(gh_last_result_code(), GH_RC_OK);
    gh_config *c = NULL;
    CHECK_RESULT(gh_config_new("Bad", NULL, NULL, 0, GH_CONFIG_VALID_STRING,
                               NULL, NULL, NULL, &c),
                 GH_RC_ERROR_PARAM_INVALID);
    return NULL;
}

static void test_new(void) {
    static const char *const bad_names[] = {
        "", "Abc", "aBc", "1abc", "-abc", "a_b", "a b", "a.b", "a/b", "caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        gh_config *c = NULL;
        CHECK_RESULT(gh_config_new(bad_names[i], "d", "v", 0,
                                   GH_CONFIG_VALID_STRING, NULL, NULL, NULL, &c),
                     GH_RC_ERROR_PARAM_INVALID);
        CHECK(c == NULL);
    }
    static const char *const good_names[] = {"a", "a-b", "x9", "my-item-2", "z-"};
    for (size_t i = 0; i < sizeof good_names / sizeof good_names[0]; i++) {
        gh_config *c = item_new(good_names[i], "v", 0, GH_CONFIG_VALID_STRING);
        CHECK_STR(gh_config_name(c), good_names[i]);
        gh_config_free(c);
    }

    /* The result code is per thread. */
    gh_config *c = NULL;
    CHECK_RESULT(gh_config_new("custom-without-fn", NULL, NULL, 0,
                               GH_CONFIG_VALID_CUSTOM, NULL, NULL, NULL, &c),
                 GH_RC_ERROR_PARAM_MISSING);
    CHECK(c == NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_result_code, NULL) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_EQ(gh_last_result_code(), GH_RC_ERROR_PARAM_MISSING);

    /* Unknown validators are not ResultCode errors. */
    static const int bad_validators[] = {-1, 6, 99};
    for (size_t i = 0; i < sizeof bad_validators / sizeof bad_validators[0]; i++) {
        CHECK_RC(gh_config_new("valid-name", NULL, NULL, 0, bad_validators[i],
                               NULL, NULL, NULL, &c),
                 GH_ERR_INVALID_ARGUMENT);
        CHECK(c == NULL);
        CHECK(gh_last_error()[0] != '\0');
    }

    /* NULL description and default are "". */
    c = item_new("null-strings", NULL, 1, GH_CONFIG_VALID_STRING);
    check_value(c, "");
    check_default(c, "");
    gh_config_free(c);
    gh_config_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* Validators                                                               */
/* ------------------------------------------------------------------------ */

static void test_validators(void) {
    gh_config *c = item_new("int-item", "0", 0, GH_CONFIG_VALID_INT);
    accepts(c, "1_000");
    accepts(c, " 7 ");
    accepts(c, "-3");
    accepts(c, "+4");
    accepts(c, "0");
    refuses(c, "1.5", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "x", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "1__0", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "_1", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "1_", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "1e3", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "", GH_RC_ERROR_PARAM_MISSING);
    gh_config_free(c);

    c = item_new("pos-int-item", "1", 0, GH_CONFIG_VALID_POS_INT);
    refuses(c, "0", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "-1", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "2.0", GH_RC_ERROR_PARAM_INVALID);
    accepts(c, "1");
    accepts(c, "2_000");
    refuses(c, "", GH_RC_ERROR_PARAM_MISSING);
    gh_config_free(c);

    c = item_new("float-item", "0", 0, GH_CONFIG_VALID_FLOAT);
    accepts(c, "1e3");
    accepts(c, "inf");
    accepts(c, "-Infinity");
    accepts(c, "nan");
    accepts(c, "1.5");
    accepts(c, " 2.5 ");
    accepts(c, "-7");
    accepts(c, "1_000.5");
    refuses(c, "abc", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "1.2.3", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "", GH_RC_ERROR_PARAM_MISSING);
    gh_config_free(c);

    c = item_new("pos-float-item", "1", 0, GH_CONFIG_VALID_POS_FLOAT);
    refuses(c, "0", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "-0.5", GH_RC_ERROR_PARAM_INVALID);
    refuses(c, "abc", GH_RC_ERROR_PARAM_INVALID);
    accepts(c, "0.5");
    accepts(c, "3");
    accepts(c, "inf");
    refuses(c, "", GH_RC_ERROR_PARAM_MISSING);
    gh_config_free(c);

    c = item_new("string-item", "s", 0, GH_CONFIG_VALID_STRING);
    accepts(c, "anything at all");
    accepts(c, "1.5");
    refuses(c, "", GH_RC_ERROR_PARAM_MISSING);
    gh_config_free(c);

    /* can_be_empty lets "" through every validator. */
    static const int validators[] = {GH_CONFIG_VALID_STRING, GH_CONFIG_VALID_INT,
                                     GH_CONFIG_VALID_POS_INT, GH_CONFIG_VALID_FLOAT,
                                     GH_CONFIG_VALID_POS_FLOAT};
    for (size_t i = 0; i < sizeof validators / sizeof validators[0]; i++) {
        c = item_new("empty-ok", "1", 1, validators[i]);
        accepts(c, "");
        check_default(c, "1");
        if (validators[i] != GH_CONFIG_VALID_STRING) {
            refuses(c, "x", GH_RC_ERROR_PARAM_INVALID);
        }
        gh_config_free(c);
    }

    /* A custom validator's code and message reach the caller unchanged. */
    static const int codes[] = {GH_RC_ERROR_PARAM_INVALID, GH_RC_ERROR_CUSTOM,
                                GH_RC_ERROR_ITEM_CONFLICT};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        custom_state st;
        custom_init(&st, codes[i]);
        c = custom_item("custom-item", "fine", &st);
        accepts(c, "good");
        CHECK(atomic_load(&st.calls) >= 2);
        CHECK(atomic_load(&st.message_size) > 1);
        const char *msg = CHECK_RESULT(gh_config_validate(c, "bad-value"), codes[i]);
        CHECK_STR(msg, "custom refuses bad-value for custom-item");
        msg = CHECK_RESULT(gh_config_update(c, "bad-too"), codes[i]);
        CHECK_STR(msg, "custom refuses bad-too for custom-item");
        check_value(c, "good");
        /* Empty values are refused as missing first. */
        CHECK_RESULT(gh_config_validate(c, ""), GH_RC_ERROR_PARAM_MISSING);
        gh_config_free(c);
        CHECK_EQ(atomic_load(&st.freed), 1);
    }

    /* A negative return is no ResultCode: reported as GH_RC_ERROR; codes above
     * GH_RC_ERROR_CUSTOM (service-specific) pass through. */
    static const struct { int returned, reported; } mapped[] = {
        {-5, GH_RC_ERROR}, {GH_RC_ERROR_CUSTOM + 7, GH_RC_ERROR_CUSTOM + 7}};
    for (size_t i = 0; i < sizeof mapped / sizeof mapped[0]; i++) {
        custom_state st;
        custom_init(&st, mapped[i].returned);
        c = custom_item("custom-item", "fine", &st);
        CHECK_RESULT(gh_config_validate(c, "bad-value"), mapped[i].reported);
        gh_config_free(c);
    }
}

/* ------------------------------------------------------------------------ */
/* free_user_data                                                           */
/* ------------------------------------------------------------------------ */

static void test_user_data_lifetime(void) {
    custom_state st;
    gh_config *c = NULL;

    /* No set: at gh_config_free. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = custom_item("lifetime-a", "x", &st);
    CHECK_OK(gh_config_validate(c, "ok"));
    CHECK_EQ(atomic_load(&st.freed), 0);
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 1);

    /* Held by a set: when the set lets it go, not at gh_config_free. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = custom_item("lifetime-b", "x", &st);
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, NULL, NULL, 0, &set));
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 0);
    gh_config *held = gh_config_set_item(set, "lifetime-b");
    CHECK(held != NULL);
    CHECK_RESULT(gh_config_validate(held, "bad"), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_config_set_update(set, "lifetime-b", "bad-x"),
                 GH_RC_ERROR_PARAM_INVALID);
    CHECK_OK(gh_config_set_update(set, "lifetime-b", "fine"));
    check_value(held, "fine");
    CHECK_EQ(atomic_load(&st.freed), 0);
    gh_config_set_free(set);
    CHECK_EQ(atomic_load(&st.freed), 1);

    /* Held by two sets and the caller: once, after the last. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = custom_item("lifetime-c", "x", &st);
    gh_config_set *s1 = NULL, *s2 = NULL;
    CHECK_OK(gh_config_set_new(&c, 1, NULL, 0, NULL, NULL, 0, &s1));
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, NULL, NULL, 0, &s2));
    gh_config_set_free(s1);
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 0);
    gh_config_set_free(s2);
    CHECK_EQ(atomic_load(&st.freed), 1);

    /* A set that fails to build does not keep it. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = custom_item("lifetime-d", "x", &st);
    gh_config *twice[] = {c, c};
    CHECK_RESULT(gh_config_set_new(NULL, 0, twice, 2, NULL, NULL, 0, &set),
                 GH_RC_ERROR_MODEL_INVALID);
    CHECK_EQ(atomic_load(&st.freed), 0);
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 1);

    /* gh_config_new fails: at once. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = NULL;
    CHECK_RESULT(gh_config_new("Bad-Name", NULL, NULL, 0, GH_CONFIG_VALID_CUSTOM,
                               custom_validate, &st, custom_free, &c),
                 GH_RC_ERROR_PARAM_INVALID);
    CHECK(c == NULL);
    CHECK_EQ(atomic_load(&st.freed), 1);

    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    CHECK_RC(gh_config_new("fine-name", NULL, NULL, 0, 42, custom_validate, &st,
                           custom_free, &c),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(atomic_load(&st.freed), 1);

    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_config_new("fine-name", NULL, NULL, 0, GH_CONFIG_VALID_CUSTOM,
                               NULL, &st, custom_free, &c),
                 GH_RC_ERROR_PARAM_MISSING);
    CHECK_EQ(atomic_load(&st.freed), 1);
    CHECK_EQ(atomic_load(&st.calls), 0);

    /* Another validator ignores |custom| (never called) but the user data is
     * still released once the item is gone. */
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    CHECK_OK(gh_config_new("ignored-custom", NULL, "1", 0, GH_CONFIG_VALID_INT,
                           custom_validate, &st, custom_free, &c));
    accepts(c, "12");
    CHECK_RESULT(gh_config_validate(c, "bad"), GH_RC_ERROR_PARAM_INVALID);
    CHECK_EQ(atomic_load(&st.calls), 0);
    int freed_early = atomic_load(&st.freed);
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 1);
    CHECK_MSG(freed_early == 0,
              "free_user_data ran in gh_config_new (validator INT with a custom "
              "function), before the item was gone");

    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    CHECK_OK(gh_config_new("no-custom", NULL, "1", 0, GH_CONFIG_VALID_STRING,
                           NULL, &st, custom_free, &c));
    freed_early = atomic_load(&st.freed);
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 1);
    CHECK_MSG(freed_early == 0,
              "free_user_data ran in gh_config_new (validator STRING, custom "
              "NULL), before the item was gone");
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

static void test_values(void) {
    gh_config *c = item_new("value-item", "42", 0, GH_CONFIG_VALID_INT);
    CHECK_STR(gh_config_name(c), "value-item");
    check_value(c, "42");
    check_default(c, "42");
    int64_t i = 0;
    double d = 0;
    CHECK_OK(gh_config_int_value(c, &i));
    CHECK_EQ(i, 42);
    CHECK_OK(gh_config_float_value(c, &d));
    CHECK(d == 42.0);

    CHECK_OK(gh_config_update(c, "1_000"));
    check_value(c, "1_000");
    check_default(c, "42");
    CHECK_OK(gh_config_int_value(c, &i));
    CHECK_EQ(i, 1000);
    CHECK_OK(gh_config_float_value(c, &d));
    CHECK(d == 1000.0);

    CHECK_OK(gh_config_update(c, " -7 "));
    CHECK_OK(gh_config_int_value(c, &i));
    CHECK_EQ(i, -7);
    CHECK_OK(gh_config_update(c, "9223372036854775807"));
    CHECK_OK(gh_config_int_value(c, &i));
    CHECK(i == INT64_MAX);

    /* update leaves the value unchanged on error */
    CHECK_RESULT(gh_config_update(c, "x"), GH_RC_ERROR_PARAM_INVALID);
    check_value(c, "9223372036854775807");
    CHECK_OK(gh_config_reset(c));
    check_value(c, "42");
    check_default(c, "42");
    gh_config_free(c);

    /* Not a number: GH_RC_ERROR_PARAM_INVALID, *out untouched. */
    c = item_new("text-item", "abc", 0, GH_CONFIG_VALID_STRING);
    i = 1234;
    d = 56.5;
    CHECK_RESULT(gh_config_int_value(c, &i), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_config_float_value(c, &d), GH_RC_ERROR_PARAM_INVALID);
    CHECK_EQ(i, 1234);
    CHECK(d == 56.5);
    CHECK_OK(gh_config_update(c, "1.5"));
    CHECK_RESULT(gh_config_int_value(c, &i), GH_RC_ERROR_PARAM_INVALID);
    CHECK_EQ(i, 1234);
    CHECK_OK(gh_config_float_value(c, &d));
    CHECK(d == 1.5);
    CHECK_OK(gh_config_update(c, "1e3"));
    CHECK_OK(gh_config_float_value(c, &d));
    CHECK(d == 1000.0);
    CHECK_OK(gh_config_update(c, "-inf"));
    CHECK_OK(gh_config_float_value(c, &d));
    CHECK(isinf(d) && d < 0);
    CHECK_OK(gh_config_update(c, " 12 "));
    CHECK_OK(gh_config_int_value(c, &i));
    CHECK_EQ(i, 12);
    CHECK_OK(gh_config_reset(c));
    check_value(c, "abc");
    gh_config_free(c);

    /* An empty value is not a number either. */
    c = item_new("empty-item", "", 1, GH_CONFIG_VALID_INT);
    CHECK_RESULT(gh_config_int_value(c, &i), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_config_float_value(c, &d), GH_RC_ERROR_PARAM_INVALID);
    gh_config_free(c);
}

/* ------------------------------------------------------------------------ */
/* gh_config_describe                                                       */
/* ------------------------------------------------------------------------ */

static void describe(const gh_config *c, config_item *out) {
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(gh_config_describe(c, &data, &len));
    CHECK(data != NULL || len == 0);
    item_decode(data, len, out);
    gh_free(data);
}

static void test_describe(void) {
    gh_config *c = NULL;
    CHECK_OK(gh_config_new("described", "A described item", "5", 1,
                           GH_CONFIG_VALID_POS_INT, NULL, NULL, NULL, &c));
    CHECK_OK(gh_config_update(c, "7"));
    config_item it;
    describe(c, &it);
    CHECK_STR(it.name, "described");
    CHECK_STR(it.description, "A described item");
    CHECK_STR(it.value, "7");
    CHECK_STR(it.default_value, "5");
    CHECK_EQ(it.can_be_empty, 1);
    CHECK_EQ(it.validator, GH_CONFIG_VALID_POS_INT);
    item_clear(&it);
    gh_config_free(c);

    c = item_new("plain", "v", 0, GH_CONFIG_VALID_STRING);
    describe(c, &it);
    CHECK_STR(it.name, "plain");
    CHECK_STR(it.description, "");
    CHECK_STR(it.value, "v");
    CHECK_STR(it.default_value, "v");
    CHECK_EQ(it.can_be_empty, 0);
    CHECK_EQ(it.validator, GH_CONFIG_VALID_STRING);
    item_clear(&it);
    gh_config_free(c);

    custom_state st;
    custom_init(&st, GH_RC_ERROR_PARAM_INVALID);
    c = custom_item("custom-described", "d", &st);
    describe(c, &it);
    CHECK_STR(it.description, "custom");
    CHECK_EQ(it.validator, GH_CONFIG_VALID_CUSTOM);
    item_clear(&it);
    gh_config_free(c);

    static const int validators[] = {GH_CONFIG_VALID_INT, GH_CONFIG_VALID_FLOAT,
                                     GH_CONFIG_VALID_POS_FLOAT};
    for (size_t i = 0; i < sizeof validators / sizeof validators[0]; i++) {
        c = item_new("v-item", "1", 0, validators[i]);
        describe(c, &it);
        CHECK_EQ(it.validator, validators[i]);
        item_clear(&it);
        gh_config_free(c);
    }
}

/* ------------------------------------------------------------------------ */
/* gh_config_static_items                                                   */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *default_value;
} k_static[] = {
    {"rpc-max-workers", "30"},
    {"rpc-shutdown-grace", "30"},
    {"rpc-shutdown-timeout", "60"},
    {"rpc-logs-folder", "logs"},
    {"rpc-logs-backup", "10"},
    {"rpc-logs-interval-unit", "H"},
    {"rpc-logs-interval", "1"},
    {"rpc-main-host", "localhost"},
    {"rpc-main-port", "54321"},
    {"rpc-client-timeout", "60"},
    {"rpc-event-retain-timeout", "300"},
    {"rpc-event-keepalive-timeout", "60"},
    {"rpc-event-queue-max", "10000"},
    {"rpc-admin-peers", "any"},
};
#define N_STATIC (sizeof k_static / sizeof k_static[0])

static gh_config *find_item(gh_config **items, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(gh_config_name(items[i]), name) == 0) return items[i];
    }
    return NULL;
}

static void free_items(gh_config **items, size_t n) {
    for (size_t i = 0; i < n; i++) gh_config_free(items[i]);
    gh_free(items);
}

static void test_static_items(void) {
    gh_config **items = NULL;
    size_t n = 0;
    CHECK_OK(gh_config_static_items(&items, &n));
    CHECK_EQ(n, N_STATIC);
    for (size_t i = 0; i < n; i++) {
        CHECK(items[i] != NULL);
        CHECK_STR(gh_config_name(items[i]), k_static[i].name);
        check_value(items[i], k_static[i].default_value);
        check_default(items[i], k_static[i].default_value);
        CHECK_OK(gh_config_validate(items[i], k_static[i].default_value));
        config_item it;
        describe(items[i], &it);
        CHECK_STR(it.name, k_static[i].name);
        CHECK_STR(it.default_value, k_static[i].default_value);
        item_clear(&it);
    }

    gh_config *unit = find_item(items, n, "rpc-logs-interval-unit");
    CHECK(unit != NULL);
    static const char *const units[] = {"S", "M", "H", "D", "MIDNIGHT", "midnight",
                                        "W0", "w6", "s", "h", "Midnight"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) accepts(unit, units[i]);
    refuses(unit, "X", GH_RC_ERROR_PARAM_INVALID);
    refuses(unit, "W7", GH_RC_ERROR_PARAM_INVALID);
    refuses(unit, "hours", GH_RC_ERROR_PARAM_INVALID);
    refuses(unit, "", GH_RC_ERROR_PARAM_MISSING);

    /* New items on each call. */
    gh_config **again = NULL;
    size_t n2 = 0;
    CHECK_OK(gh_config_static_items(&again, &n2));
    CHECK_EQ(n2, N_STATIC);
    for (size_t i = 0; i < n; i++) CHECK(again[i] != items[i]);
    CHECK_OK(gh_config_update(items[0], "5"));
    check_value(again[0], "30");
    free_items(again, n2);
    free_items(items, n);
}

/* ------------------------------------------------------------------------ */
/* gh_folders                                                               */
/* ------------------------------------------------------------------------ */

static void test_folders(void) {
    char base[512], sys[600], user[600], ws[600], file[600], under_file[700];
    tu_subdir(base, sizeof base, g_tmp, "folders");
    TU_PATH(sys, "%s/sys/a", base);
    TU_PATH(user, "%s/user/b/c", base);
    TU_PATH(ws, "%s/ws/d/e", base);

    gh_folders *f = NULL;
    CHECK_OK(gh_folders_new(sys, user, ws, &f));
    CHECK(f != NULL);
    /* Nothing created by gh_folders_new. */
    CHECK(!tu_exists(sys) && !tu_exists(user) && !tu_exists(ws));
    CHECK_STR(gh_folders_system(f), sys);
    CHECK(!tu_exists(sys));

    const char *p = NULL;
    CHECK_OK(gh_folders_user(f, &p));
    CHECK_STR(p, user);
    CHECK(tu_is_dir(user));
    CHECK(!tu_exists(ws));
    const char *p2 = NULL;
    CHECK_OK(gh_folders_user(f, &p2));
    CHECK_STR(p2, user);
    CHECK_OK(gh_folders_workspace(f, &p));
    CHECK_STR(p, ws);
    CHECK(tu_is_dir(ws));
    /* The system folder is never created. */
    CHECK_STR(gh_folders_system(f), sys);
    CHECK(!tu_exists(sys));
    gh_folders_free(f);

    /* Absent folders. */
    CHECK_OK(gh_folders_new(NULL, NULL, NULL, &f));
    CHECK(gh_folders_system(f) == NULL);
    p = "x";
    CHECK_OK(gh_folders_user(f, &p));
    CHECK(p == NULL);
    p = "x";
    CHECK_OK(gh_folders_workspace(f, &p));
    CHECK(p == NULL);
    gh_folders_free(f);
    gh_folders_free(NULL);

    /* A folder that cannot be created (its parent is a file). */
    TU_PATH(file, "%s/plain-file", base);
    tu_write_file(file, "x");
    TU_PATH(under_file, "%s/sub", file);
    CHECK_OK(gh_folders_new(NULL, under_file, under_file, &f));
    p = NULL;
    CHECK_RESULT(gh_folders_user(f, &p), GH_RC_ERROR);
    CHECK_RESULT(gh_folders_workspace(f, &p), GH_RC_ERROR);
    gh_folders_free(f);
}

/* "~" is the HOME folder (set to g_tmp by main), as a shell and Python's
 * expanduser read it. Run last: nothing may be created in the real home. */
static void test_folders_tilde(void) {
    gh_folders *f = NULL;
    const char *p = NULL;
    char want[600];
    CHECK_OK(gh_folders_new("~/tilde-sys", "~/tilde-user", "~/tilde-ws", &f));
    TU_PATH(want, "%s/tilde-sys", g_tmp);
    CHECK_STR(gh_folders_system(f), want);
    CHECK_OK(gh_folders_user(f, &p));
    TU_PATH(want, "%s/tilde-user", g_tmp);
    CHECK_STR(p, want);
    CHECK(tu_is_dir(want));
    CHECK_OK(gh_folders_workspace(f, &p));
    TU_PATH(want, "%s/tilde-ws", g_tmp);
    CHECK_STR(p, want);
    CHECK(tu_is_dir(want));
    TU_PATH(want, "%s/tilde-sys", g_tmp);
    CHECK(!tu_exists(want));
    gh_folders_free(f);
}

/* ------------------------------------------------------------------------ */
/* gh_config_set_new: layers and errors                                     */
/* ------------------------------------------------------------------------ */

static void test_layers(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "layers");
    tu_write_file(l.sys_json,
                  "{\"ghtest-l2\": \"sys\", \"ghtest-l3\": \"sys\", "
                  "\"ghtest-l4\": \"sys\", \"ghtest-l5\": \"sys\", "
                  "\"ghtest-s4\": \"sys\", \"ghtest-not-an-item\": \"ignored\"}");
    tu_write_file(l.user_json,
                  "{\"ghtest-l3\": \"user\", \"ghtest-l4\": \"user\", "
                  "\"ghtest-l5\": \"user\"}");
    CHECK(setenv("GHTEST_L4", "env", 1) == 0);
    CHECK(setenv("GHTEST_L5", "env", 1) == 0);
    CHECK(setenv("GHTEST_S4", "env", 1) == 0);
    const char *cli[] = {"ghtest-l5=cli", "ghtest-s1=cli", "ghtest-eq=y=z",
                         "ghtest-empty="};

    gh_config *stat[] = {
        item_new("ghtest-s1", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-s4", "hard", 0, GH_CONFIG_VALID_STRING),
    };
    gh_config *user[] = {
        item_new("ghtest-l1", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-l2", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-l3", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-l4", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-l5", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-eq", "hard", 0, GH_CONFIG_VALID_STRING),
        item_new("ghtest-empty", "hard", 1, GH_CONFIG_VALID_STRING),
    };
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(stat, 2, user, 7, l.folders, cli, 4, &set));
    CHECK(set != NULL);
    static const struct {
        const char *name, *value;
    } want[] = {
        {"ghtest-s1", "cli"},  {"ghtest-s4", "env"}, {"ghtest-l1", "hard"},
        {"ghtest-l2", "sys"},  {"ghtest-l3", "user"}, {"ghtest-l4", "env"},
        {"ghtest-l5", "cli"},  {"ghtest-eq", "y=z"},  {"ghtest-empty", ""},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        gh_config *c = gh_config_set_item(set, want[i].name);
        CHECK_MSG(c != NULL, "%s", want[i].name);
        char *v = gh_config_value(c);
        char *d = gh_config_default_value(c);
        CHECK_MSG(v && d && strcmp(v, want[i].value) == 0 &&
                      strcmp(d, want[i].value) == 0,
                  "%s: value \"%s\", default \"%s\", expected \"%s\"",
                  want[i].name, v, d, want[i].value);
        gh_free(v);
        gh_free(d);
    }
    CHECK_EQ(gh_config_set_warning_count(set), 0);
    CHECK(gh_config_set_warning(set, 0) == NULL);
    /* reset goes back to the layered default, not the hard-coded one */
    CHECK_OK(gh_config_update(user[2], "changed"));
    CHECK_OK(gh_config_reset(user[2]));
    check_value(user[2], "user");
    gh_config_set_free(set);
    for (size_t i = 0; i < 2; i++) gh_config_free(stat[i]);
    for (size_t i = 0; i < 7; i++) gh_config_free(user[i]);
    unsetenv("GHTEST_L4");
    unsetenv("GHTEST_L5");
    unsetenv("GHTEST_S4");
    tu_layout_free(&l);
}

/* One set over |l| with a single user item |c|, expected to fail with |code|;
 * returns the message. */
static const char *set_fails(gh_config *c, const tu_layout *l, const char *const *cli,
                             size_t cli_count, int code) {
    gh_config_set *set = NULL;
    const char *msg = CHECK_RESULT(
        gh_config_set_new(NULL, 0, &c, 1, l ? l->folders : NULL, cli, cli_count, &set),
        code);
    CHECK(set == NULL);
    return msg;
}

static void test_invalid_defaults(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "invalid-defaults");
    const char *msg;
    gh_config *c;

    /* hard-coded */
    c = item_new("ghtest-num", "x", 0, GH_CONFIG_VALID_INT);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-num");
    CHECK_CONTAINS(msg, "hard-coded");
    gh_config_free(c);

    c = item_new("ghtest-num", "", 0, GH_CONFIG_VALID_INT);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_PARAM_MISSING);
    CHECK_CONTAINS(msg, "ghtest-num");
    gh_config_free(c);

    /* system config.json */
    tu_write_file(l.sys_json, "{\"ghtest-num\": \"sysbad\"}");
    c = item_new("ghtest-num", "1", 0, GH_CONFIG_VALID_INT);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-num");
    CHECK_CONTAINS(msg, l.sys_json);
    gh_config_free(c);

    /* user config.json (the system one is fine now) */
    tu_write_file(l.sys_json, "{\"ghtest-num\": \"2\"}");
    tu_write_file(l.user_json, "{\"ghtest-num\": \"0\"}");
    c = item_new("ghtest-num", "1", 0, GH_CONFIG_VALID_POS_INT);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-num");
    CHECK_CONTAINS(msg, l.user_json);
    gh_config_free(c);
    tu_write_file(l.user_json, "{}");

    /* environment */
    CHECK(setenv("GHTEST_NUM", "envbad", 1) == 0);
    c = item_new("ghtest-num", "1", 0, GH_CONFIG_VALID_INT);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-num");
    CHECK_CONTAINS(msg, "GHTEST_NUM");
    gh_config_free(c);

    /* cli (overrides the bad environment value with a bad one of its own) */
    const char *cli[] = {"ghtest-num=clibad"};
    c = item_new("ghtest-num", "1", 0, GH_CONFIG_VALID_INT);
    msg = set_fails(c, &l, cli, 1, GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-num");
    CHECK_CONTAINS(msg, "clibad");
    CHECK_MSG(strstr(msg, "command line") != NULL || strstr(msg, "-c") != NULL,
              "the layer is not named: %s", msg);
    gh_config_free(c);

    /* ... and a good cli value hides the bad environment value */
    const char *good_cli[] = {"ghtest-num=3"};
    c = item_new("ghtest-num", "1", 0, GH_CONFIG_VALID_INT);
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, l.folders, good_cli, 1, &set));
    check_default(c, "3");
    gh_config_set_free(set);
    gh_config_free(c);
    unsetenv("GHTEST_NUM");

    /* a custom validator's own code */
    custom_state st;
    custom_init(&st, GH_RC_ERROR_CUSTOM);
    c = custom_item("ghtest-custom", "bad-default", &st);
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_CUSTOM);
    CHECK_CONTAINS(msg, "custom refuses bad-default for ghtest-custom");
    gh_config_free(c);
    CHECK_EQ(atomic_load(&st.freed), 1);

    /* a static item's default is validated too */
    gh_config *s = item_new("ghtest-static-num", "nope", 0, GH_CONFIG_VALID_FLOAT);
    msg = CHECK_RESULT(gh_config_set_new(&s, 1, NULL, 0, NULL, NULL, 0, &set),
                       GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "ghtest-static-num");
    gh_config_free(s);
    tu_layout_free(&l);
}

static void test_set_errors(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "set-errors");
    gh_config_set *set = NULL;
    const char *msg;

    /* An item in both lists, twice in one list, or two items of one name. */
    gh_config *a = item_new("dup-a", "1", 0, GH_CONFIG_VALID_STRING);
    gh_config *b = item_new("dup-b", "1", 0, GH_CONFIG_VALID_STRING);
    gh_config *a2 = item_new("dup-a", "2", 0, GH_CONFIG_VALID_STRING);
    gh_config *both_s[] = {a}, *both_u[] = {b, a};
    CHECK_RESULT(gh_config_set_new(both_s, 1, both_u, 2, NULL, NULL, 0, &set),
                 GH_RC_ERROR_MODEL_INVALID);
    gh_config *twice[] = {a, b, a};
    CHECK_RESULT(gh_config_set_new(NULL, 0, twice, 3, NULL, NULL, 0, &set),
                 GH_RC_ERROR_MODEL_INVALID);
    CHECK_RESULT(gh_config_set_new(twice, 3, NULL, 0, NULL, NULL, 0, &set),
                 GH_RC_ERROR_MODEL_INVALID);
    gh_config *same_name[] = {a, a2};
    msg = CHECK_RESULT(gh_config_set_new(NULL, 0, same_name, 2, NULL, NULL, 0, &set),
                       GH_RC_ERROR_MODEL_INVALID);
    CHECK_CONTAINS(msg, "dup-a");
    CHECK(set == NULL);

    /* Malformed config.json files, named. */
    gh_config *c = item_new("json-item", "1", 0, GH_CONFIG_VALID_STRING);
    static const char *const malformed[] = {
        "not json {", "[\"a\", \"b\"]", "{\"json-item\": 1}",
        "{\"json-item\": true}", "{\"json-item\": null}", "\"text\"",
        "{\"other\": {\"x\": \"y\"}}",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        tu_write_file(l.sys_json, malformed[i]);
        msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_MODEL_INVALID);
        CHECK_CONTAINS(msg, l.sys_json);
        unlink(l.sys_json);

        tu_write_file(l.user_json, malformed[i]);
        msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_MODEL_INVALID);
        CHECK_CONTAINS(msg, l.user_json);
        unlink(l.user_json);
    }
    /* the workspace's config.json too */
    const char *ws_path = NULL;
    CHECK_OK(gh_folders_workspace(l.folders, &ws_path));
    tu_write_file(l.ws_json, "{\"json-item\": 5}");
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_MODEL_INVALID);
    CHECK_CONTAINS(msg, l.ws_json);
    tu_write_file(l.ws_json, "{oops");
    msg = set_fails(c, &l, NULL, 0, GH_RC_ERROR_MODEL_INVALID);
    CHECK_CONTAINS(msg, l.ws_json);
    unlink(l.ws_json);
    /* an empty object and files naming unknown items are fine */
    tu_write_file(l.sys_json, "{}");
    tu_write_file(l.user_json, "{\"unknown-item\": \"x\"}");
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, l.folders, NULL, 0, &set));
    gh_config_set_free(set);

    /* Malformed cli strings. */
    static const char *const bad_cli[] = {"novalue", "=v", "", "="};
    for (size_t i = 0; i < sizeof bad_cli / sizeof bad_cli[0]; i++) {
        const char *cli[] = {"json-item=ok", bad_cli[i]};
        set_fails(c, &l, cli, 2, GH_RC_ERROR_PARAM_INVALID);
    }
    /* the last of a name wins */
    const char *cli[] = {"json-item=first", "json-item=second"};
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, l.folders, cli, 2, &set));
    check_default(c, "second");
    gh_config_set_free(set);

    gh_config_free(c);
    gh_config_free(a);
    gh_config_free(a2);
    gh_config_free(b);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* gh_config_set_item                                                       */
/* ------------------------------------------------------------------------ */

static void test_set_item(void) {
    gh_config *s = item_new("item-static", "s", 0, GH_CONFIG_VALID_STRING);
    gh_config *u = item_new("item-user", "u", 0, GH_CONFIG_VALID_STRING);
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(&s, 1, &u, 1, NULL, NULL, 0, &set));
    /* The caller's own handles. */
    CHECK(gh_config_set_item(set, "item-static") == s);
    CHECK(gh_config_set_item(set, "item-user") == u);
    CHECK(gh_config_set_item(set, "item-unknown") == NULL);
    CHECK(gh_config_set_item(set, "") == NULL);
    CHECK(gh_config_set_item(set, NULL) == NULL);
    /* Borrowed: valid until the set is freed, after the caller's reference. */
    gh_config_free(s);
    gh_config_free(u);
    gh_config *bs = gh_config_set_item(set, "item-static");
    gh_config *bu = gh_config_set_item(set, "item-user");
    CHECK(bs != NULL && bu != NULL);
    CHECK_STR(gh_config_name(bs), "item-static");
    check_value(bs, "s");
    CHECK_OK(gh_config_update(bu, "changed"));
    check_value(bu, "changed");
    /* what get reports */
    config_status st;
    op_ok(gh_config_set_get, set, tu_pb_filter(0, NULL), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "item-user");
    CHECK_STR(st.items[0].value, "changed");
    status_clear(&st);
    gh_config_set_free(set);
    gh_config_set_free(NULL);

    /* Static items from gh_config_static_items in a set. */
    gh_config **items = NULL;
    size_t n = 0;
    CHECK_OK(gh_config_static_items(&items, &n));
    CHECK_OK(gh_config_set_new(items, n, NULL, 0, NULL, NULL, 0, &set));
    for (size_t i = 0; i < n; i++) {
        CHECK(gh_config_set_item(set, k_static[i].name) == items[i]);
    }
    op_ok(gh_config_set_get, set, tu_pb_filter(0, NULL), &st);
    CHECK_EQ(st.count, 0);
    status_clear(&st);
    gh_config_set_free(set);
    free_items(items, n);
}

/* ------------------------------------------------------------------------ */
/* get / set / reset                                                        */
/* ------------------------------------------------------------------------ */

/* The workspace's config.json as a map; it must be valid JSON. */
static void read_persisted(const char *path, tu_json_map *m) {
    char *text = tu_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s does not exist", path);
    CHECK_MSG(tu_json_parse_map(text, m) == 0, "%s is not a JSON string map: %s",
              path, text);
    for (size_t i = 0; i < m->count; i++) CHECK(!m->is_bool[i]);
    free(text);
}

static void check_persisted(const char *path, const char *const *pairs) {
    tu_json_map m;
    read_persisted(path, &m);
    size_t n = 0;
    for (; pairs[n] != NULL; n += 2) {
        const char *v = tu_json_get(&m, pairs[n], NULL);
        CHECK_MSG(v != NULL && strcmp(v, pairs[n + 1]) == 0,
                  "%s: %s is \"%s\", expected \"%s\"", path, pairs[n],
                  v ? v : "(absent)", pairs[n + 1]);
    }
    CHECK_MSG(m.count == n / 2, "%s holds %zu values, expected %zu", path, m.count,
              n / 2);
    tu_json_free(&m);
}

#define PAIRS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_PAIRS ((const char *const[]){NULL})

static void test_service(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "service");
    gh_config *stat = item_new("svc-static", "s", 0, GH_CONFIG_VALID_STRING);
    gh_config *user[] = {
        item_new("svc-a", "a0", 0, GH_CONFIG_VALID_STRING),
        item_new("svc-b", "1", 0, GH_CONFIG_VALID_INT),
        item_new("svc-c", "0.5", 0, GH_CONFIG_VALID_POS_FLOAT),
    };
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(&stat, 1, user, 3, l.folders, NULL, 0, &set));
    config_status st;

    /* get: empty filter → every user item, in definition order. */
    op_ok(gh_config_set_get, set, tu_pb_filter(0, NULL), &st);
    CHECK_EQ(st.count, 3);
    CHECK_STR(st.items[0].name, "svc-a");
    CHECK_STR(st.items[1].name, "svc-b");
    CHECK_STR(st.items[2].name, "svc-c");
    CHECK_STR(st.items[0].value, "a0");
    CHECK_STR(st.items[1].default_value, "1");
    CHECK_EQ(st.items[1].validator, GH_CONFIG_VALID_INT);
    CHECK_EQ(st.items[2].validator, GH_CONFIG_VALID_POS_FLOAT);
    CHECK(status_find(&st, "svc-static") == NULL);
    status_clear(&st);
    /* a NULL request of length 0 is the empty Filter */
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_config_set_get(set, NULL, 0, &resp, &resp_len));
    status_decode(resp, resp_len, &st);
    CHECK_EQ(st.count, 3);
    status_clear(&st);

    op_ok(gh_config_set_get, set, tu_pb_filter(0, NAMES("svc-c", "svc-a")), &st);
    CHECK_EQ(st.count, 2);
    CHECK(status_find(&st, "svc-a") != NULL && status_find(&st, "svc-c") != NULL);
    status_clear(&st);
    op_fails(gh_config_set_get, set, tu_pb_filter(0, NAMES("svc-a", "nope")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    op_fails(gh_config_set_get, set, tu_pb_filter(0, NAMES("svc-static")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    op_ok(gh_config_set_get, set, tu_pb_filter(1, NAMES("nope", "svc-b", "svc-static")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "svc-b");
    status_clear(&st);
    op_fails(gh_config_set_get, set, tu_pb_filter(0, NAMES("")), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_get, set, tu_pb_filter(1, NAMES("svc-a", "")),
             GH_RC_ERROR_PARAM_MISSING);

    /* set */
    CHECK(!tu_exists(l.ws_json));
    op_ok(gh_config_set_set, set, config_update(0, PAIRS("svc-b", "5")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "svc-b");
    CHECK_STR(st.items[0].value, "5");
    CHECK_STR(st.items[0].default_value, "1");
    status_clear(&st);
    check_value(user[1], "5");
    check_persisted(l.ws_json, PAIRS("svc-b", "5"));

    op_fails(gh_config_set_set, set, config_update(0, NULL), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_set, set, config_update(1, NULL), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_set, set, config_update(0, PAIRS("", "x")),
             GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_set, set, config_update(0, PAIRS("svc-a", "z", "nope", "1")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    op_fails(gh_config_set_set, set, config_update(0, PAIRS("svc-static", "x")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    check_value(user[0], "a0");
    check_value(stat, "s");

    /* one bad value: nothing applied, nothing persisted */
    char *before = tu_read_file(l.ws_json, NULL);
    CHECK(before != NULL);
    op_fails(gh_config_set_set, set,
             config_update(0, PAIRS("svc-a", "new", "svc-b", "notint", "svc-c", "2")),
             GH_RC_ERROR_PARAM_INVALID);
    op_fails(gh_config_set_set, set, config_update(0, PAIRS("svc-a", "new", "svc-c", "0")),
             GH_RC_ERROR_PARAM_INVALID);
    op_fails(gh_config_set_set, set, config_update(0, PAIRS("svc-c", "3", "svc-a", "")),
             GH_RC_ERROR_PARAM_MISSING);
    check_value(user[0], "a0");
    check_value(user[1], "5");
    check_value(user[2], "0.5");
    char *after = tu_read_file(l.ws_json, NULL);
    CHECK_STR(after, before);
    free(before);
    free(after);

    /* ignore_unknown skips unknown and static names */
    op_ok(gh_config_set_set, set,
          config_update(1, PAIRS("nope", "1", "svc-a", "z", "svc-static", "x")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "svc-a");
    CHECK_STR(st.items[0].value, "z");
    status_clear(&st);
    check_value(stat, "s");
    check_persisted(l.ws_json, PAIRS("svc-a", "z", "svc-b", "5"));

    /* several at once */
    op_ok(gh_config_set_set, set, config_update(0, PAIRS("svc-c", "2.5", "svc-a", "y")),
          &st);
    CHECK_EQ(st.count, 2);
    status_clear(&st);
    check_persisted(l.ws_json, PAIRS("svc-a", "y", "svc-b", "5", "svc-c", "2.5"));

    /* a value back to its default is not persisted */
    op_ok(gh_config_set_set, set, config_update(0, PAIRS("svc-a", "a0")), &st);
    status_clear(&st);
    check_persisted(l.ws_json, PAIRS("svc-b", "5", "svc-c", "2.5"));

    /* gh_config_set_update: one item */
    CHECK_OK(gh_config_set_update(set, "svc-b", "9"));
    check_value(user[1], "9");
    check_persisted(l.ws_json, PAIRS("svc-b", "9", "svc-c", "2.5"));
    CHECK_RESULT(gh_config_set_update(set, "svc-b", "x"), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_config_set_update(set, "svc-b", ""), GH_RC_ERROR_PARAM_MISSING);
    CHECK_RESULT(gh_config_set_update(set, "nope", "1"), GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_RESULT(gh_config_set_update(set, "svc-static", "1"), GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_RESULT(gh_config_set_update(set, "", "1"), GH_RC_ERROR_PARAM_MISSING);
    check_value(user[1], "9");
    check_persisted(l.ws_json, PAIRS("svc-b", "9", "svc-c", "2.5"));

    /* gh_config_update on an item changes it without persisting */
    CHECK_OK(gh_config_update(user[0], "unsaved"));
    op_ok(gh_config_set_get, set, tu_pb_filter(0, NAMES("svc-a")), &st);
    CHECK_STR(st.items[0].value, "unsaved");
    status_clear(&st);
    check_persisted(l.ws_json, PAIRS("svc-b", "9", "svc-c", "2.5"));
    CHECK_OK(gh_config_reset(user[0]));

    /* reset */
    op_fails(gh_config_set_reset, set, tu_pb_filter(0, NULL), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_reset, set, tu_pb_filter(1, NULL), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_reset, set, tu_pb_filter(0, NAMES("")), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_config_set_reset, set, tu_pb_filter(0, NAMES("svc-b", "svc-static")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    op_fails(gh_config_set_reset, set, tu_pb_filter(0, NAMES("svc-b", "nope")),
             GH_RC_ERROR_ITEM_UNKNOWN);
    check_value(user[1], "9");
    op_ok(gh_config_set_reset, set, tu_pb_filter(0, NAMES("svc-b")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "svc-b");
    CHECK_STR(st.items[0].value, "1");
    status_clear(&st);
    check_value(user[1], "1");
    check_persisted(l.ws_json, PAIRS("svc-c", "2.5"));
    op_ok(gh_config_set_reset, set, tu_pb_filter(1, NAMES("nope", "svc-c", "svc-static")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "svc-c");
    CHECK_STR(st.items[0].value, "0.5");
    status_clear(&st);
    check_persisted(l.ws_json, NO_PAIRS);

    /* requests that do not decode */
    static const uint8_t garbage[][4] = {
        {0x0a, 0x05, 'a', 0},   /* a string longer than the message */
        {0x08, 0x80, 0x80, 0x80}, /* a truncated varint */
        {0x0f, 0, 0, 0},        /* wire type 7 */
    };
    static const size_t garbage_len[] = {3, 4, 1};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *r = NULL;
        size_t rl = 0;
        CHECK_RC(gh_config_set_get(set, garbage[i], garbage_len[i], &r, &rl),
                 GH_ERR_INVALID_ARGUMENT);
        CHECK_RC(gh_config_set_set(set, garbage[i], garbage_len[i], &r, &rl),
                 GH_ERR_INVALID_ARGUMENT);
        CHECK_RC(gh_config_set_reset(set, garbage[i], garbage_len[i], &r, &rl),
                 GH_ERR_INVALID_ARGUMENT);
    }

    gh_config_set_free(set);
    gh_config_free(stat);
    for (size_t i = 0; i < 3; i++) gh_config_free(user[i]);

    /* Without folders nothing is persisted, and set still works. */
    gh_config *c = item_new("no-folder", "1", 0, GH_CONFIG_VALID_STRING);
    CHECK_OK(gh_config_set_new(NULL, 0, &c, 1, NULL, NULL, 0, &set));
    CHECK_OK(gh_config_set_update(set, "no-folder", "2"));
    check_value(c, "2");
    gh_config_set_free(set);
    gh_config_free(c);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* Persistence                                                              */
/* ------------------------------------------------------------------------ */

#define N_THREADS 8
#define N_UPDATES 25

typedef struct {
    gh_config_set *set;
    int index;
} writer_arg;

static void *writer(void *p) {
    writer_arg *a = p;
    char name[32], value[32];
    snprintf(name, sizeof name, "pers-%d", a->index);
    for (int j = 0; j < N_UPDATES; j++) {
        snprintf(value, sizeof value, "v-%d-%d", a->index, j);
        CHECK_OK(gh_config_set_update(a->set, name, value));
    }
    return NULL;
}

typedef struct {
    const char *path;
    atomic_int stop;
    int reads;
} reader_arg;

/* Reads config.json while the writers run: never a torn file. */
static void *reader(void *p) {
    reader_arg *a = p;
    while (!atomic_load(&a->stop)) {
        char *text = tu_read_file(a->path, NULL);
        if (text == NULL) continue;
        tu_json_map m;
        CHECK_MSG(tu_json_parse_map(text, &m) == 0, "torn %s: %s", a->path, text);
        tu_json_free(&m);
        free(text);
        a->reads++;
    }
    return NULL;
}

static gh_config **pers_items(int int_item) {
    gh_config **items = calloc(N_THREADS, sizeof *items);
    CHECK(items != NULL);
    for (int i = 0; i < N_THREADS; i++) {
        char name[32];
        snprintf(name, sizeof name, "pers-%d", i);
        items[i] = i == int_item ? item_new(name, "0", 0, GH_CONFIG_VALID_INT)
                                 : item_new(name, "d", 0, GH_CONFIG_VALID_STRING);
    }
    return items;
}

static void pers_free(gh_config **items) {
    for (int i = 0; i < N_THREADS; i++) gh_config_free(items[i]);
    free(items);
}

static void test_persistence(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "persistence");
    gh_config *stat = item_new("pers-static", "s", 0, GH_CONFIG_VALID_STRING);
    gh_config **items = pers_items(-1);
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(&stat, 1, items, N_THREADS, l.folders, NULL, 0, &set));

    reader_arg ra = {l.ws_json, 0, 0};
    atomic_init(&ra.stop, 0);
    pthread_t rt, th[N_THREADS];
    writer_arg wa[N_THREADS];
    CHECK(pthread_create(&rt, NULL, reader, &ra) == 0);
    for (int i = 0; i < N_THREADS; i++) {
        wa[i].set = set;
        wa[i].index = i;
        CHECK(pthread_create(&th[i], NULL, writer, &wa[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
    atomic_store(&ra.stop, 1);
    CHECK(pthread_join(rt, NULL) == 0);

    /* Every item's last value, and only non-default values. */
    tu_json_map m;
    read_persisted(l.ws_json, &m);
    CHECK_EQ(m.count, N_THREADS);
    for (int i = 0; i < N_THREADS; i++) {
        char name[32], want[32];
        snprintf(name, sizeof name, "pers-%d", i);
        snprintf(want, sizeof want, "v-%d-%d", i, N_UPDATES - 1);
        CHECK_STR(tu_json_get(&m, name, NULL), want);
        check_value(items[i], want);
    }
    tu_json_free(&m);
    /* Nothing but config.json in the workspace (no temporary files left). */
    DIR *dir = opendir(l.ws);
    CHECK(dir != NULL);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        CHECK_MSG(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                      strcmp(e->d_name, "config.json") == 0,
                  "unexpected file %s/%s", l.ws, e->d_name);
    }
    closedir(dir);

    CHECK_OK(gh_config_set_update(set, "pers-0", "d"));
    gh_config_set_free(set);
    pers_free(items);

    /* A new set over the same folders restores the values (not the defaults). */
    items = pers_items(-1);
    CHECK_OK(gh_config_set_new(&stat, 1, items, N_THREADS, l.folders, NULL, 0, &set));
    CHECK_EQ(gh_config_set_warning_count(set), 0);
    check_value(items[0], "d");
    for (int i = 1; i < N_THREADS; i++) {
        char want[32];
        snprintf(want, sizeof want, "v-%d-%d", i, N_UPDATES - 1);
        check_value(items[i], want);
        check_default(items[i], "d");
    }
    gh_config_set_free(set);
    pers_free(items);

    /* A persisted value that no longer validates: default + warning. A static
     * item's name in the file is not restored. */
    read_persisted(l.ws_json, &m);
    CHECK_EQ(m.count, N_THREADS - 1);
    tu_json_free(&m);
    tu_write_file(l.ws_json,
                  "{\"pers-1\": \"kept\", \"pers-3\": \"not-an-int\", "
                  "\"pers-static\": \"from-file\"}");
    items = pers_items(3);
    CHECK_OK(gh_config_update(stat, "s"));
    CHECK_OK(gh_config_set_new(&stat, 1, items, N_THREADS, l.folders, NULL, 0, &set));
    check_value(items[1], "kept");
    check_value(items[3], "0");
    check_default(items[3], "0");
    check_value(stat, "s");
    CHECK_EQ(gh_config_set_warning_count(set), 1);
    const char *w = gh_config_set_warning(set, 0);
    CHECK(w != NULL);
    CHECK_CONTAINS(w, "pers-3");
    CHECK(gh_config_set_warning(set, 1) == NULL);
    /* the file is left as it was until the next change */
    CHECK_OK(gh_config_set_update(set, "pers-2", "two"));
    check_persisted(l.ws_json, PAIRS("pers-1", "kept", "pers-2", "two"));
    gh_config_set_free(set);
    pers_free(items);
    gh_config_free(stat);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */

int main(void) {
    g_tmp = tu_tmpdir();
    /* "~" in folders: HOME is the test's folder. */
    CHECK(setenv("HOME", g_tmp, 1) == 0);

    test_new();
    test_validators();
    test_user_data_lifetime();
    test_values();
    test_describe();
    test_static_items();
    test_folders();
    test_layers();
    test_invalid_defaults();
    test_set_errors();
    test_set_item();
    test_service();
    test_persistence();
    test_folders_tilde();

    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("test_helper_config: OK\n");
    return 0;
}

/*
 * rpc_sample.h — the sample service's messages for the C RpcServer / RpcClient
 * examples (Protos/sample/my.proto), encoded and decoded by hand: a C host
 * would use its protobuf library of choice; these few lines keep the examples
 * free of one.
 *   MyConfig { 1: string name; 2: string value }
 *   MyStatus { 1: Result r; 2: repeated MyConfig items }
 */
#ifndef RPC_SAMPLE_H
#define RPC_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SAMPLE_MAX_ITEMS 64
#define SAMPLE_MAX_TEXT 128

typedef struct {
    char name[SAMPLE_MAX_TEXT];
    char value[SAMPLE_MAX_TEXT];
} sample_config;

static inline size_t sample_put_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

static inline size_t sample_put_string(uint8_t *out, int field, const char *s) {
    size_t len = strlen(s), n = 0;
    out[n++] = (uint8_t)(field << 3 | 2);
    n += sample_put_varint(out + n, len);
    memcpy(out + n, s, len);
    return n + len;
}

/* MyConfig into |out| (at least 2 * SAMPLE_MAX_TEXT + 16 bytes). */
static inline size_t sample_encode_config(uint8_t *out, const char *name, const char *value) {
    size_t n = 0;
    if (name[0]) n += sample_put_string(out + n, 1, name);
    if (value[0]) n += sample_put_string(out + n, 2, value);
    return n;
}

static inline int sample_get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *pos < len && shift < 64; shift += 7) {
        uint8_t b = p[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* Calls |field_fn| for each field; length-delimited ones get their bytes.
 * Returns 0 on malformed input. */
static inline int sample_fields(const uint8_t *p, size_t len,
                         int (*field_fn)(int field, const uint8_t *data, size_t n, void *ctx),
                         void *ctx) {
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, v;
        if (!sample_get_varint(p, len, &pos, &key)) return 0;
        int wire = (int)(key & 7), field = (int)(key >> 3);
        if (wire == 0) {
            if (!sample_get_varint(p, len, &pos, &v)) return 0;
        } else if (wire == 2) {
            if (!sample_get_varint(p, len, &pos, &v) || v > len - pos) return 0;
            if (!field_fn(field, p + pos, (size_t)v, ctx)) return 0;
            pos += (size_t)v;
        } else {
            return 0;
        }
    }
    return 1;
}

static inline int sample_config_field(int field, const uint8_t *data, size_t n, void *ctx) {
    sample_config *c = ctx;
    char *dst = field == 1 ? c->name : field == 2 ? c->value : NULL;
    if (dst == NULL) return 1;
    if (n >= SAMPLE_MAX_TEXT) return 0;
    memcpy(dst, data, n);
    dst[n] = '\0';
    return 1;
}

/* MyConfig from bytes; 0 if malformed or too long. */
static inline int sample_decode_config(const uint8_t *p, size_t len, sample_config *c) {
    memset(c, 0, sizeof *c);
    return sample_fields(p, len, sample_config_field, c);
}

typedef struct {
    sample_config items[SAMPLE_MAX_ITEMS];
    size_t count;
} sample_status;

static inline int sample_status_field(int field, const uint8_t *data, size_t n, void *ctx) {
    sample_status *s = ctx;
    if (field != 2) return 1; /* r: read with gh_rpc_result_code */
    if (s->count == SAMPLE_MAX_ITEMS) return 0;
    return sample_decode_config(data, n, &s->items[s->count++]);
}

/* MyStatus's items from bytes; 0 if malformed. */
static inline int sample_decode_status(const uint8_t *p, size_t len, sample_status *s) {
    memset(s, 0, sizeof *s);
    return sample_fields(p, len, sample_status_field, s);
}

#endif /* RPC_SAMPLE_H */

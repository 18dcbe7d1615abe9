/*
 * grpchelper/metadata.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Metadata lists (gh_metadata).
 */
#ifndef GRPCHELPER_METADATA_H
#define GRPCHELPER_METADATA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */
/* ------------------------------------------------------------------------ */

/* An ordered list of (key, value) entries; a key may repeat. Keys ending in
 * "-bin" hold bytes (base64 on the wire); other keys hold printable ASCII. */
typedef struct gh_metadata gh_metadata;

/* Creates an empty list in *out. Release with gh_metadata_free.
 * Threads: any thread. */
int gh_metadata_new(gh_metadata **out);

/* Frees |md|; NULL does nothing. Must not be a list owned by a call.
 * Threads: one thread at a time per list. */
void gh_metadata_free(gh_metadata *md);

/* Appends a text entry. |key| and |value| are copied. GH_ERR_INVALID_ARGUMENT
 * (nothing added, reason in gh_last_error) when the key is empty, not lowercase
 * [0-9a-z_.-], ends in "-bin", is reserved (":...", "grpc-...", content-type,
 * te, user-agent, connection, ...), or the value has a byte outside
 * printable ASCII or starts or ends with a space or tab (RFC 9113 8.2.1).
 * Received metadata never contains reserved keys.
 * Threads: one thread at a time per list. */
int gh_metadata_add(gh_metadata *md, const char *key, const char *value);

/* 1 if |key| names a header the library itself sets on every call — user-agent,
 * te, content-type, grpc-timeout, grpc-encoding, grpc-accept-encoding (any
 * case) — else 0 (also for NULL). gh_metadata_add refuses these keys; a host
 * that follows grpcio, which drops them from a call's metadata without an
 * error (the call carries the library's own values), skips the entries this
 * function names. |key| is borrowed for the call.
 * Threads: any thread. */
int gh_metadata_key_is_managed(const char *key);

/* Appends a binary entry; |key| must end in "-bin". |key| and the |len| bytes at
 * |value| are copied (|value| may be NULL when |len| is 0).
 * Threads: one thread at a time per list. */
int gh_metadata_add_bin(gh_metadata *md, const char *key, const uint8_t *value,
                        size_t len);

/* Number of entries; 0 for NULL.
 * Threads: any thread, if nobody modifies the list meanwhile. */
size_t gh_metadata_count(const gh_metadata *md);

/* Reads entry |index|: *key (NUL-terminated), *value and *len are valid until
 * |md| is modified or freed. Text values are also NUL-terminated.
 * Threads: any thread, if nobody modifies the list meanwhile. */
int gh_metadata_get(const gh_metadata *md, size_t index, const char **key,
                    const uint8_t **value, size_t *len);

/* Finds the first entry with |key| (borrowed for the call). Returns GH_OK and
 * fills *value and *len (valid as for gh_metadata_get), or GH_ERR_INVALID_ARGUMENT
 * (with gh_last_error set) when there is none.
 * Threads: any thread, if nobody modifies the list meanwhile. */
int gh_metadata_find(const gh_metadata *md, const char *key,
                     const uint8_t **value, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_METADATA_H */

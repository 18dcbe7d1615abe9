/*
 * check.h — minimal assertions for the libgrpchelper C tests.
 *
 * Every macro prints "file:line: ..." to stderr on failure and ends the process
 * with exit status 1 (via _Exit, so that it is safe from any thread, including
 * server handlers and client callbacks, while the library's threads run).
 */
#ifndef GH_TEST_CHECK_H
#define GH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#define CHECK_FAIL_EXIT_() \
    do {                   \
        fflush(stdout);    \
        fflush(stderr);    \
        _Exit(1);          \
    } while (0)

/* CHECK(cond): cond must be true. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                \
            CHECK_FAIL_EXIT_();                                            \
        }                                                                  \
    } while (0)

/* CHECK_MSG(cond, fmt, ...): like CHECK, with a printf-style explanation. */
#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            CHECK_FAIL_EXIT_();                                            \
        }                                                                  \
    } while (0)

/* CHECK_EQ(a, b): integer equality (values printed as long long). */
#define CHECK_EQ(a, b)                                                       \
    do {                                                                     \
        long long check_a_ = (long long)(a);                                 \
        long long check_b_ = (long long)(b);                                 \
        if (check_a_ != check_b_) {                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);         \
            CHECK_FAIL_EXIT_();                                              \
        }                                                                    \
    } while (0)

/* CHECK_OK(expr): expr, a gh_ function returning int, must return GH_OK. */
#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int check_rc_ = (expr);                                               \
        if (check_rc_ != GH_OK) {                                             \
            fprintf(stderr, "%s:%d: %s returned %d (%s), gh_last_error: %s\n", \
                    __FILE__, __LINE__, #expr, check_rc_,                     \
                    gh_strerror(check_rc_), gh_last_error());                 \
            CHECK_FAIL_EXIT_();                                               \
        }                                                                     \
    } while (0)

/* CHECK_RC(expr, rc): expr must return exactly rc. */
#define CHECK_RC(expr, rc)                                                   \
    do {                                                                     \
        int check_rc_ = (expr);                                              \
        int check_want_ = (rc);                                              \
        if (check_rc_ != check_want_) {                                      \
            fprintf(stderr,                                                  \
                    "%s:%d: %s returned %d (%s), expected %s = %d; "         \
                    "gh_last_error: %s\n",                                   \
                    __FILE__, __LINE__, #expr, check_rc_,                    \
                    gh_strerror(check_rc_), #rc, check_want_, gh_last_error()); \
            CHECK_FAIL_EXIT_();                                              \
        }                                                                    \
    } while (0)

/* CHECK_STR(a, b): two NUL-terminated strings are equal (NULL fails). */
#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *check_sa_ = (a);                                         \
        const char *check_sb_ = (b);                                         \
        if (check_sa_ == NULL || check_sb_ == NULL ||                        \
            strcmp(check_sa_, check_sb_) != 0) {                             \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n", \
                    __FILE__, __LINE__, #a, #b,                              \
                    check_sa_ ? check_sa_ : "(null)",                        \
                    check_sb_ ? check_sb_ : "(null)");                       \
            CHECK_FAIL_EXIT_();                                              \
        }                                                                    \
    } while (0)

/* CHECK_MEM(p, plen, q, qlen): two byte ranges are equal (lengths included). */
#define CHECK_MEM(p, plen, q, qlen)                                          \
    do {                                                                     \
        const void *check_p_ = (const void *)(p);                            \
        const void *check_q_ = (const void *)(q);                            \
        size_t check_pl_ = (size_t)(plen);                                   \
        size_t check_ql_ = (size_t)(qlen);                                   \
        if (check_pl_ != check_ql_ ||                                        \
            (check_pl_ > 0 && (check_p_ == NULL || check_q_ == NULL ||      \
                               memcmp(check_p_, check_q_, check_pl_) != 0))) { \
            fprintf(stderr, "%s:%d: CHECK_MEM failed: %s[%zu] == %s[%zu]\n", \
                    __FILE__, __LINE__, #p, check_pl_, #q, check_ql_);       \
            CHECK_FAIL_EXIT_();                                              \
        }                                                                    \
    } while (0)

/* CHECK_BYTES_STR(p, plen, s): a byte range equals the string s (no NUL). */
#define CHECK_BYTES_STR(p, plen, s)                                          \
    do {                                                                     \
        const char *check_s_ = (s);                                          \
        size_t check_len_ = (size_t)(plen);                                  \
        const void *check_ptr_ = (const void *)(p);                          \
        if (check_len_ != strlen(check_s_) ||                                \
            (check_len_ > 0 && memcmp(check_ptr_, check_s_, check_len_) != 0)) { \
            fprintf(stderr, "%s:%d: CHECK_BYTES_STR failed: %s == \"%s\" (got \"%.*s\", %zu bytes)\n", \
                    __FILE__, __LINE__, #p, check_s_,                        \
                    (int)(check_len_ > 200 ? 200 : check_len_),              \
                    check_ptr_ ? (const char *)check_ptr_ : "", check_len_); \
            CHECK_FAIL_EXIT_();                                              \
        }                                                                    \
    } while (0)

#endif /* GH_TEST_CHECK_H */

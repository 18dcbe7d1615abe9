/*
 * grpchelper/version.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Library version: compile-time macros and the run-time gh_version().
 */
#ifndef GRPCHELPER_VERSION_H
#define GRPCHELPER_VERSION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

/* The library's version: the one place it is written. CMake's project version,
 * the Swift constant (GRPCHelperVersion) and the Python binding's check all
 * read these three numbers. */
#define GH_VERSION_MAJOR 0
#define GH_VERSION_MINOR 8
#define GH_VERSION_PATCH 0

#define GH_VERSION_STRINGIFY_(x) #x
#define GH_VERSION_STRINGIFY(x) GH_VERSION_STRINGIFY_(x)
/* "MAJOR.MINOR.PATCH" */
#define GH_VERSION_STR                                                   \
    GH_VERSION_STRINGIFY(GH_VERSION_MAJOR) "." GH_VERSION_STRINGIFY(     \
        GH_VERSION_MINOR) "." GH_VERSION_STRINGIFY(GH_VERSION_PATCH)
/* 0xXXYYZZ: major, minor, patch. */
#define GH_VERSION_NUM \
    ((GH_VERSION_MAJOR << 16) | (GH_VERSION_MINOR << 8) | GH_VERSION_PATCH)
#define GH_VERSION_AT_LEAST(x, y, z) \
    (GH_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#if defined(__GNUC__) || defined(__clang__)
#define GH_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define GH_DEPRECATED(msg)
#endif

/* Run-time version information. Fields are only ever appended; |age| says
 * which exist (age 1: version_num, version_str). */
typedef struct {
    int age;
    int version_num;
    const char *version_str;
} gh_info;

/* Returns the library's version information if the library's version number is
 * at least |least_version_num| (0 accepts any), else NULL. The struct is static.
 * Threads: any thread. */
const gh_info *gh_version(int least_version_num);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_VERSION_H */

/*
 * threaddump.h — the backtraces of the process's other threads, for the RPC
 * server's debug dump (SIGUSR2). Linux: each thread is asked, one at a time,
 * with a real-time signal whose handler records backtrace(3) of the thread it
 * interrupts. A thread that blocks the signal (some runtimes block signals in
 * their threads) does not answer: its backtrace is reported missing.
 * Internal to libgrpchelper; not part of its C ABI.
 */
#ifndef GH_THREADDUMP_H
#define GH_THREADDUMP_H

#include <stddef.h>

/* Not exported from libgrpchelper.so. */
#define GHD_INTERNAL __attribute__((visibility("hidden")))

/* Fills |frames| (at most |capacity|) with the return addresses of thread
 * |tid| of this process. Returns the number of frames, or -1 when the thread
 * did not answer within |timeout_ms| (or does not exist). Calls are serialized.
 * Threads: any thread but |tid| itself. */
GHD_INTERNAL int ghd_thread_backtrace(int tid, void **frames, int capacity, int timeout_ms);

/* Lets the calling thread answer backtrace requests even when it inherited a
 * mask that blocks every signal (threads made from runtime threads do):
 * unblocks the one signal used. */
GHD_INTERNAL void ghd_allow_requests(void);

/* Names the calling thread (at most 15 bytes are kept). */
GHD_INTERNAL void ghd_set_thread_name(const char *name);

/* The calling thread's kernel id. */
GHD_INTERNAL int ghd_gettid(void);

/* backtrace_symbols(3) of |frames|: one malloc'd array of strings (free() it
 * once), or NULL. */
GHD_INTERNAL char **ghd_symbols(void *const *frames, int count);

#endif

/* threaddump.c — see include/threaddump.h. */
#define _GNU_SOURCE
#include "threaddump.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GHD_MAX_FRAMES 128

static pthread_mutex_t ghd_lock = PTHREAD_MUTEX_INITIALIZER;
static void *ghd_frames[GHD_MAX_FRAMES];
static atomic_int ghd_target;   /* the thread asked; 0: none */
static atomic_int ghd_count;    /* frames recorded; -1 until then */

#define GHD_SIGNAL (SIGRTMIN + 5)

int ghd_gettid(void) { return (int)syscall(SYS_gettid); }

void ghd_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

void ghd_allow_requests(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, GHD_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Runs on the interrupted thread: records its stack if it is the one asked
 * (a late answer to an earlier request is ignored). backtrace() is used after a
 * first call made outside the handler (which loads the unwinder). */
static void ghd_handler(int sig) {
    (void)sig;
    int saved = errno;
    if (atomic_load(&ghd_target) == ghd_gettid()) {
        int n = backtrace(ghd_frames, GHD_MAX_FRAMES);
        atomic_store(&ghd_count, n);
    }
    errno = saved;
}

int ghd_thread_backtrace(int tid, void **frames, int capacity, int timeout_ms) {
    if (tid == ghd_gettid() || capacity <= 0) return -1;
    pthread_mutex_lock(&ghd_lock);
    static int warmed = 0;
    if (!warmed) {
        void *f[2];
        backtrace(f, 2); /* loads libgcc's unwinder outside any handler */
        warmed = 1;
    }
    int sig = GHD_SIGNAL;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ghd_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, &old);
    atomic_store(&ghd_count, -1);
    atomic_store(&ghd_target, tid);
    int n = -1;
    if (syscall(SYS_tgkill, getpid(), tid, sig) == 0) {
        struct timespec step = {0, 1000000}; /* 1 ms */
        for (int waited = 0; waited < timeout_ms; waited++) {
            if (atomic_load(&ghd_count) >= 0) break;
            nanosleep(&step, NULL);
        }
        n = atomic_load(&ghd_count);
    }
    atomic_store(&ghd_target, 0);
    if (n > 0) {
        if (n > capacity) n = capacity;
        memcpy(frames, ghd_frames, (size_t)n * sizeof(void *));
    }
    /* A handler still running on a slow thread keeps the action until it
     * returns; the disposition found before is restored for later signals. */
    sigaction(sig, &old, NULL);
    pthread_mutex_unlock(&ghd_lock);
    return n;
}

char **ghd_symbols(void *const *frames, int count) {
    return count > 0 ? backtrace_symbols(frames, count) : NULL;
}

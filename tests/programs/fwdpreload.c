/* Another LD_PRELOAD library that also wraps sigaction and forwards with
 * dlsym(RTLD_NEXT), as crash reporters and profilers do. Built as a shared
 * object by tests/reliability.rs and preloaded before and after the shim.
 * With FWD_REPORT set it prints "fwdpreload sigaction_calls=N" on stderr at
 * exit (atexit: destructors do not run on quick_exit). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn next;
static unsigned long calls;

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    sigaction_fn n = __atomic_load_n(&next, __ATOMIC_ACQUIRE);
    if (!n) {
        n = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        __atomic_store_n(&next, n, __ATOMIC_RELEASE);
    }
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    return n(sig, act, old);
}

static void report(void) { fprintf(stderr, "fwdpreload sigaction_calls=%lu\n", calls); }

__attribute__((constructor)) static void init(void) {
    if (getenv("FWD_REPORT")) atexit(report);
}

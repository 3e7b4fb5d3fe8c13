/* Thread-policy probe: creates threads in every way the policy cares about
 * and prints "KEY value" lines; tests/thread_policy.rs runs it under
 * several CGOFIX_* settings and with no shim at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seen {
    size_t stacksize, guardsize;
    void *stackaddr;
    sigset_t mask;
    cpu_set_t cpus;
    int detached;
};

static void *observe(void *p) {
    struct seen *s = p;
    pthread_attr_t a;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &s->stackaddr, &s->stacksize);
    pthread_attr_getguardsize(&a, &s->guardsize);
    pthread_attr_getdetachstate(&a, &s->detached);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, NULL, &s->mask);
    pthread_getaffinity_np(pthread_self(), sizeof s->cpus, &s->cpus);
    return (void *)(intptr_t)0x5eed;
}

/* Creates one thread with `attr`, joins it, returns what it saw. */
static int spawn(pthread_attr_t *attr, struct seen *s) {
    pthread_t t;
    void *ret = NULL;
    memset(s, 0, sizeof *s);
    int r = pthread_create(&t, attr, observe, s);
    if (r) return r;
    pthread_join(t, &ret);
    if (ret != (void *)(intptr_t)0x5eed) { printf("bad_return %p\n", ret); exit(1); }
    return 0;
}

static int same_mask(const sigset_t *a, const sigset_t *b) {
    for (int s = 1; s < 65; s++)
        if (s != 32 && s != 33 && sigismember(a, s) != sigismember(b, s)) return 0;
    return 1;
}

static volatile int detached_done;
static void *detached_body(void *p) { (void)p; __atomic_fetch_add(&detached_done, 1, __ATOMIC_SEQ_CST); return NULL; }
static void *sleeper(void *p) { (void)p; for (;;) pause(); return NULL; }
static void *exiter(void *p) { pthread_exit(p); return NULL; }
static void *counter(void *p) { return (void *)((intptr_t)p + 1); }

int main(void) {
    struct seen s;
    pthread_attr_t a;
    size_t got;

    spawn(NULL, &s);
    printf("default %zu\n", s.stacksize);

    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    pthread_attr_setguardsize(&a, 3 * 4096);
    cpu_set_t one; CPU_ZERO(&one); CPU_SET(0, &one);
    pthread_attr_setaffinity_np(&a, sizeof one, &one);
    spawn(&a, &s);
    pthread_attr_getstacksize(&a, &got);
    printf("small %zu\n", s.stacksize);
    printf("small_attr_after %zu\n", got);
    printf("small_guard %zu\n", s.guardsize);
    printf("small_affinity_kept %d\n", CPU_EQUAL(&one, &s.cpus));
    pthread_attr_destroy(&a);

    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 24 << 20);
    spawn(&a, &s);
    printf("large %zu\n", s.stacksize);
    pthread_attr_destroy(&a);

    size_t own_size = 256 << 10;
    void *own = aligned_alloc(4096, own_size);
    pthread_attr_init(&a);
    pthread_attr_setstack(&a, own, own_size);
    spawn(&a, &s);
    printf("own_stack same_addr=%d size=%zu\n", s.stackaddr == own, s.stacksize);
    pthread_attr_destroy(&a);

    sigset_t want, before;
    sigemptyset(&want);
    sigaddset(&want, SIGUSR2);
    sigaddset(&want, SIGHUP);
    pthread_sigmask(SIG_SETMASK, &want, NULL);
    spawn(NULL, &s);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    printf("mask_usr2_hup child_exact=%d creator_restored=%d\n", same_mask(&s.mask, &want),
           same_mask(&before, &want));

    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    spawn(&a, &s);
    printf("mask_none child_exact=%d\n", same_mask(&s.mask, &none));
    pthread_attr_destroy(&a);

    /* A mask on the attr is the caller's explicit choice. */
    sigset_t attrmask;
    sigemptyset(&attrmask);
    sigaddset(&attrmask, SIGTERM);
    pthread_attr_init(&a);
    pthread_attr_setsigmask_np(&a, &attrmask);
    spawn(&a, &s);
    printf("attr_mask child_exact=%d\n", same_mask(&s.mask, &attrmask));
    pthread_attr_destroy(&a);

    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, (size_t)1 << 46);
    int r = spawn(&a, &s);
    printf("impossible %d\n", r);
    pthread_attr_destroy(&a);

    int bad = 0;
    for (intptr_t i = 0; i < 2000; i++) {
        pthread_t t; void *ret;
        if (pthread_create(&t, NULL, counter, (void *)i) || pthread_join(t, &ret) || ret != (void *)(i + 1)) bad++;
    }
    printf("cycles_bad %d\n", bad);

    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 100; i++) { pthread_t t; pthread_create(&t, &a, detached_body, NULL); }
    pthread_attr_destroy(&a);
    for (int i = 0; i < 5000 && __atomic_load_n(&detached_done, __ATOMIC_SEQ_CST) < 100; i++) usleep(1000);
    printf("detached %d\n", detached_done);

    pthread_t t; void *ret;
    pthread_create(&t, NULL, sleeper, NULL);
    usleep(10000);
    pthread_cancel(t);
    pthread_join(t, &ret);
    printf("cancelled %d\n", ret == PTHREAD_CANCELED);

    pthread_create(&t, NULL, exiter, (void *)(intptr_t)77);
    pthread_join(t, &ret);
    printf("pthread_exit %ld\n", (long)(intptr_t)ret);
    return 0;
}

/* Thread + signal storm for tests/reliability.rs: CREATORS threads each
 * create and join PER_CREATOR short-lived threads (in batches, some with
 * tiny requested stacks, some with their own sigaltstack) while the test
 * tgkill()s a mix of signals at every thread of the process. Handlers are
 * installed through sigaction (with and without SA_SIGINFO/SA_ONSTACK/
 * SA_RESTART) and signal().
 *
 *   sigstorm CREATORS PER_CREATOR
 * Prints "READY <pid>" once every handler is installed (nothing may be sent
 * before), then "OK threads=N bad=B hits=H alt=A" and exits 0 (1 if any
 * thread misbehaved). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 8

static unsigned long hits, alt_hits, bad;
static __thread char *alt_lo, *alt_hi;

static void touch_stack(void) {
    volatile char buf[2048];
    for (size_t i = 0; i < sizeof buf; i += 256) buf[i] = (char)i;
}

static void on_info(int s, siginfo_t *i, void *c) {
    (void)s; (void)i; (void)c;
    char here;
    touch_stack();
    __atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
    if (alt_lo && &here >= alt_lo && &here < alt_hi) __atomic_fetch_add(&alt_hits, 1, __ATOMIC_RELAXED);
}

static void on_plain(int s) { on_info(s, NULL, NULL); }

static void *worker(void *p) {
    intptr_t n = (intptr_t)p;
    char *alt = NULL;
    if (n % 4 == 0) {
        size_t size = 64 << 10;
        alt = malloc(size);
        stack_t ss = {.ss_sp = alt, .ss_size = size, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) == 0) { alt_lo = alt; alt_hi = alt + size; }
    }
    volatile uint64_t acc = 0;
    for (int i = 0; i < 20000; i++) acc += (uint64_t)i * (uint64_t)n;
    if (alt) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        alt_lo = alt_hi = NULL;
        free(alt);
    }
    return (void *)(n * 3 + (intptr_t)(acc & 0));
}

static void *creator(void *p) {
    intptr_t per = (intptr_t)p;
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 64 << 10);
    for (intptr_t done = 0; done < per; done += BATCH) {
        pthread_t t[BATCH];
        int made[BATCH];
        for (int i = 0; i < BATCH; i++) {
            intptr_t n = done + i;
            made[i] = pthread_create(&t[i], (n % 3 == 0) ? &small : NULL, worker, (void *)n) == 0;
            if (!made[i]) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
        }
        for (int i = 0; i < BATCH; i++) {
            void *r;
            if (made[i] && (pthread_join(t[i], &r) != 0 || r != (void *)((done + i) * 3)))
                __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_attr_destroy(&small);
    return NULL;
}

int main(int argc, char **argv) {
    int creators = argc > 1 ? atoi(argv[1]) : 4;
    int per = argc > 2 ? atoi(argv[2]) : 1000;
    per = (per + BATCH - 1) / BATCH * BATCH;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigaction(SIGURG, &sa, NULL);
    sigaction(SIGRTMIN + 3, &sa, NULL);
    signal(SIGWINCH, on_plain);
    signal(SIGPWR, on_plain);

    setvbuf(stdout, NULL, _IONBF, 0);
    printf("READY %d\n", (int)getpid());
    pthread_t c[64];
    if (creators > 64) creators = 64;
    for (int i = 0; i < creators; i++)
        if (pthread_create(&c[i], NULL, creator, (void *)(intptr_t)per)) bad++;
    for (int i = 0; i < creators; i++) pthread_join(c[i], NULL);
    printf("OK threads=%d bad=%lu hits=%lu alt=%lu\n", creators * per, bad,
           __atomic_load_n(&hits, __ATOMIC_RELAXED), __atomic_load_n(&alt_hits, __ATOMIC_RELAXED));
    return bad ? 1 : 0;
}

/* Thread create+join throughput: prints nanoseconds per create+join.
 *   threads N [STACK_BYTES]   (0 or absent: default attr, NULL) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *body(void *p) { return p; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    size_t stack = argc > 2 ? (size_t)atol(argv[2]) : 0;
    pthread_attr_t a, *ap = NULL;
    if (stack) {
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, stack);
        ap = &a;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, ap, body, NULL) || pthread_join(t, NULL)) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}

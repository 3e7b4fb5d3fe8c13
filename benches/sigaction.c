/* sigaction install throughput: prints nanoseconds per sigaction() call
 * (alternating two handlers on SIGUSR2, as a runtime re-installing would). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void h1(int s) { (void)s; }
static void h2(int s) { (void)s; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    struct sigaction a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.sa_handler = h1;
    b.sa_handler = h2;
    a.sa_flags = b.sa_flags = SA_RESTART;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++)
        if (sigaction(SIGUSR2, (i & 1) ? &a : &b, NULL)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}

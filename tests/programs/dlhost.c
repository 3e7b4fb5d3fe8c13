/* A host that exports napi_queue_async_work itself (link with -rdynamic) and
 * dlopen()s / dlclose()s small objects importing it, as a Node-API host
 * loading and unloading addons. The shim rewrites each loaded object's GOT
 * slot for that symbol; an object that is closed and another opened (often
 * at the same address) must not crash and must still be counted.
 *
 *   dlhost LIB_A LIB_B ROUNDS CALLS
 * Round i opens LIB_A (even i) or LIB_B (odd i) with RTLD_NOW|RTLD_LOCAL
 * (RTLD_LAZY on every third round), checks variant(), calls queue_n(CALLS),
 * and closes it. Prints "host_calls=N rounds=R bad=B" and exits 0 when every
 * call reached the host. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static long host_calls;

__attribute__((visibility("default"))) int napi_queue_async_work(void *env, void *work) {
    (void)env;
    (void)work;
    host_calls++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: dlhost LIB_A LIB_B ROUNDS CALLS\n"); return 2; }
    int rounds = atoi(argv[3]), calls = atoi(argv[4]), bad = 0;
    for (int i = 0; i < rounds; i++) {
        const char *lib = argv[1 + (i & 1)];
        void *h = dlopen(lib, (i % 3 == 2 ? RTLD_LAZY : RTLD_NOW) | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "dlopen %s: %s\n", lib, dlerror()); return 3; }
        int (*variant)(void) = (int (*)(void))dlsym(h, "variant");
        int (*queue_n)(int) = (int (*)(int))dlsym(h, "queue_n");
        if (!variant || !queue_n) { fprintf(stderr, "dlsym: %s\n", dlerror()); return 3; }
        long before = host_calls;
        if (variant() != 1 + (i & 1)) bad++;
        if (queue_n(calls) != calls || host_calls - before != calls) bad++;
        if (dlclose(h)) bad++;
    }
    printf("host_calls=%ld rounds=%d bad=%d\n", host_calls, rounds, bad);
    return bad ? 1 : 0;
}

/* An LD_PRELOAD library listed before the shim that defines malloc, free,
 * calloc and realloc, as an allocator preload (jemalloc, tcmalloc) does,
 * here forwarding to glibc's __libc_* entry points. It counts the calls
 * whose return address lies in the code of the object whose path is
 * SPY_OBJECT (the shim), and prints "mallocspy shim_calls=N found=1" on
 * stderr from its destructor. The shim binds its allocation calls at their first call
 * (src/deferred.rs), to what the loader would have bound an import to: this
 * library's functions. Built as a shared object by tests/reliability.rs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

/* Return addresses of the first calls, classified at exit: the shim's
 * constructor may allocate before this library's constructor has run. */
#define KEPT 65536
static unsigned long seen[KEPT], nseen, lo, hi;

static void note(void *ra) {
    unsigned long i = __atomic_fetch_add(&nseen, 1, __ATOMIC_RELAXED);
    if (i < KEPT) seen[i] = (unsigned long)ra;
}

void *malloc(size_t n) {
    note(__builtin_return_address(0));
    return __libc_malloc(n);
}
void free(void *p) {
    note(__builtin_return_address(0));
    __libc_free(p);
}
void *calloc(size_t a, size_t b) {
    note(__builtin_return_address(0));
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    note(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

/* The shim's executable mapping, from /proc/self/maps (read without stdio,
 * which would allocate through the functions above). */
static void find_object(void) {
    static char maps[1 << 16];
    const char *obj = getenv("SPY_OBJECT");
    if (!obj) return;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return;
    size_t len = 0;
    ssize_t r;
    while (len < sizeof maps - 1 && (r = read(fd, maps + len, sizeof maps - 1 - len)) > 0) len += (size_t)r;
    close(fd);
    maps[len] = 0;
    for (char *line = maps; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        unsigned long a, b;
        char perms[8];
        if (strstr(line, obj) && sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && perms[2] == 'x') {
            lo = a;
            hi = b;
        }
        line = end ? end + 1 : NULL;
    }
}

__attribute__((destructor)) static void report(void) {
    find_object();
    unsigned long hits = 0, n_seen = nseen < KEPT ? nseen : KEPT;
    for (unsigned long i = 0; i < n_seen; i++) hits += seen[i] >= lo && seen[i] < hi;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "mallocspy shim_calls=%lu found=%d\n", hits, hi > lo);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
}

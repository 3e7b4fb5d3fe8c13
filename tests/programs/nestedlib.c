/* A library whose constructor dlopen()s a Go library (path in $NESTED_GO):
 * the Go runtime starts inside a nested dlopen, with the loader lock held. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void open_go(void) {
    const char *p = getenv("NESTED_GO");
    if (p && !dlopen(p, RTLD_NOW)) fprintf(stderr, "nested dlopen: %s\n", dlerror());
}

int nested_ready(void) { return 42; }

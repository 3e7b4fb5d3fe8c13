/* Opens the library in argv[1] (tests/programs/nestedlib.c) and calls it. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("dlopen %s\n", dlerror()); return 1; }
    int (*ready)(void) = (int (*)(void))dlsym(h, "nested_ready");
    printf("ready %d\n", ready ? ready() : -1);
    return 0;
}

/* What the loader did with LD_PRELOAD in this process: prints
 *   at_secure N      getauxval(AT_SECURE): 1 = loader secure mode (setuid)
 *   uid R E          real and effective uid
 *   shim_loaded N    1 when a libcgofix object is mapped here
 * and exits 3 (a non-zero code the tests compare). Built dynamic and with
 * -static by tests/reliability.rs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(void) {
    int loaded = 0;
    char line[4096];
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "libcgofix")) loaded = 1;
    if (f) fclose(f);
    printf("at_secure %lu\nuid %d %d\nshim_loaded %d\n", getauxval(AT_SECURE), (int)getuid(), (int)geteuid(),
           loaded);
    return 3;
}

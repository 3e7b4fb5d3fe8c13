/* A runtime that bypasses libc: installs a handler on SIGUSR2 through libc,
 * then adds SA_ONSTACK with the raw rt_sigaction system call (as Go does on
 * architectures where it does not use libc's sigaction), then dlopen()s the
 * Go library named in argv[1]. Prints the SA_ONSTACK bit before and after. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct kact { void *handler; unsigned long flags; void *restorer; unsigned long mask; };

static void on_usr2(int s) { (void)s; }

static int onstack(void) {
    struct sigaction cur;
    sigaction(SIGUSR2, NULL, &cur);
    return !!(cur.sa_flags & SA_ONSTACK);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    struct kact k;
    syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8);
    k.flags |= SA_ONSTACK;
    syscall(SYS_rt_sigaction, SIGUSR2, &k, NULL, 8);
    printf("before %d\n", onstack());
    if (!dlopen(argv[1], RTLD_NOW)) { printf("dlopen %s\n", dlerror()); return 1; }
    printf("after %d\n", onstack());
    return 0;
}

/* JavaScriptCore's suspend/resume protocol in miniature, on SIGUSR2 (the test
 * declares it a suspend signal with CGOFIX_SUSPEND_SIGNALS=SIGUSR2): the
 * main thread has a sigaltstack and the handler gets SA_ONSTACK the way Go's
 * setsigstack adds it. A suspender thread sends the signal, waits until the
 * handler has published the interrupted context, sends it again to resume
 * (the handler waits in sigsuspend, so this second delivery nests), and
 * waits for the handler to finish. Prints "KEY VALUE" lines:
 *   on_alt     handler invocations that ran on the sigaltstack
 *   near_main  invocations whose stack is within 1 MiB below main's frame
 *   ctx_ok     the published ucontext survived the nested delivery
 *   oldact     what sigaction queries report for the handler */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ROUNDS 300

/* The interrupted PC and SP in the ucontext (glibc's sys/ucontext.h). */
#if defined(__x86_64__)
#define UC_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#define UC_SP(uc) ((uc)->uc_mcontext.gregs[REG_RSP])
#elif defined(__aarch64__)
#define UC_PC(uc) ((uc)->uc_mcontext.pc)
#define UC_SP(uc) ((uc)->uc_mcontext.sp)
#endif
#define ALT_SIZE (64 * 1024)

static char *alt;
static uintptr_t main_sp;
static pthread_t main_thread;
static sem_t sem;
/* 0 idle, 1 suspend requested, 2 suspended, 3 resume requested */
static volatile sig_atomic_t phase;
static volatile int on_alt, near_main, ctx_bad, suspended;
static volatile int done;

static void handler(int s, siginfo_t *info, void *ctx) {
    (void)s;
    (void)info;
    if (phase != 1) return; /* the resume signal, nested: nothing to do */
    volatile char here = 0;
    uintptr_t sp = (uintptr_t)&here;
    if (sp >= (uintptr_t)alt && sp < (uintptr_t)alt + ALT_SIZE) on_alt++;
    if (sp < main_sp && main_sp - sp < (1 << 20)) near_main++;
    ucontext_t *uc = ctx;
    unsigned long long pc = UC_PC(uc), usp = UC_SP(uc);
    suspended++;
    phase = 2;
    sem_post(&sem);
    sigset_t m;
    sigfillset(&m);
    sigdelset(&m, SIGUSR2);
    while (phase != 3) sigsuspend(&m);
    if (UC_PC(uc) != pc || UC_SP(uc) != usp || here != 0)
        ctx_bad++;
    phase = 0;
    sem_post(&sem);
}

static void *suspender(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        phase = 1;
        pthread_kill(main_thread, SIGUSR2);
        while (sem_wait(&sem) != 0) {}
        phase = 3;
        pthread_kill(main_thread, SIGUSR2);
        while (sem_wait(&sem) != 0) {}
    }
    done = 1;
    return NULL;
}

static void show_oldact(const char *key) {
    struct sigaction cur;
    sigaction(SIGUSR2, NULL, &cur);
    printf("%s handler=%d onstack=%d flags=0x%x usr2_masked=%d\n", key,
           cur.sa_sigaction == handler, !!(cur.sa_flags & SA_ONSTACK),
           cur.sa_flags & ~0x04000000, sigismember(&cur.sa_mask, SIGUSR2));
}

int main(void) {
    volatile char anchor = 0;
    main_sp = (uintptr_t)&anchor;
    main_thread = pthread_self();
    sem_init(&sem, 0, 0);
    alt = malloc(ALT_SIZE);
    stack_t st = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (sigaltstack(&st, NULL) != 0) return 2;

    /* JSC's install, then Go's setsigstack re-install with SA_ONSTACK. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR2, &sa, NULL);
    show_oldact("installed");
    sigaction(SIGUSR2, NULL, &old);
    old.sa_flags |= SA_ONSTACK;
    struct sigaction prev;
    sigaction(SIGUSR2, &old, &prev);
    printf("prev handler=%d\n", prev.sa_sigaction == handler);
    show_oldact("reinstalled");

    /* What the kernel really has (the shim's trampoline stands in for it). */
    struct { void *h; unsigned long flags; void *restorer; unsigned long mask; } k;
    syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8);
    printf("kernel own=%d onstack=%d\n", k.h == (void *)handler, !!(k.flags & SA_ONSTACK));

    pthread_t t;
    pthread_create(&t, NULL, suspender, NULL);
    volatile unsigned long spin = 0;
    errno = 77;
    while (!done) spin++; /* ordinary code, on main's own stack */
    int errno_kept = errno == 77;
    pthread_join(t, NULL);
    printf("rounds suspended=%d\n", suspended);
    printf("on_alt %d\n", on_alt);
    printf("near_main %d\n", near_main);
    printf("ctx_ok %d\n", !ctx_bad);
    printf("errno_kept %d\n", errno_kept);

    /* A disposition replaces the stand-in; signal() returns the handler. */
    __sighandler_t back = signal(SIGUSR2, SIG_IGN);
    printf("signal_ret own=%d\n", back == (__sighandler_t)(void *)handler);
    sigaction(SIGUSR2, NULL, &prev);
    printf("ignored is_ign=%d\n", prev.sa_handler == SIG_IGN);
    return 0;
}

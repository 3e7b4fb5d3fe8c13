/* Installs handlers through every libc entry point and prints what is really
 * installed, one "KEY VALUE" line each; tests/signal_policy.rs runs it with
 * and without the shim under several CGOFIX_* settings. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

extern __sighandler_t sysv_signal(int, __sighandler_t);
extern __sighandler_t bsd_signal(int, __sighandler_t);
extern __sighandler_t ssignal(int, __sighandler_t);

static volatile sig_atomic_t hits;
static void on_sig(int s) { (void)s; hits++; }
static void on_info(int s, siginfo_t *i, void *c) { (void)s; (void)i; (void)c; hits++; }

static int flags_of(int sig) {
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) != 0) return -1;
    return cur.sa_flags & ~0x04000000; /* SA_RESTORER is libc's business */
}

static void show(const char *key, int sig) {
    printf("%s onstack=%d flags=0x%x\n", key, !!(flags_of(sig) & SA_ONSTACK), flags_of(sig));
}

int main(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    show("sigaction", SIGUSR2);

    /* Go's setsigstack: the same handler re-installed with SA_ONSTACK. */
    sa.sa_flags |= SA_ONSTACK;
    sigaction(SIGUSR2, &sa, &old);
    show("reinstall_onstack", SIGUSR2);
    printf("oldact_is_real handler=%d onstack=%d\n", old.sa_sigaction == on_info,
           !!(old.sa_flags & SA_ONSTACK));

    signal(SIGHUP, on_sig);
    show("signal", SIGHUP);
    bsd_signal(SIGALRM, on_sig);
    show("bsd_signal", SIGALRM);
    sysv_signal(SIGTERM, on_sig);
    show("sysv_signal", SIGTERM);
    ssignal(SIGTTIN, on_sig);
    show("ssignal", SIGTTIN);
    _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
    sigset(SIGWINCH, on_sig);
    show("sigset", SIGWINCH);
    signal(SIGQUIT, SIG_IGN);
    show("sig_ign", SIGQUIT);
    signal(SIGURG, SIG_DFL);
    show("sig_dfl", SIGURG);

    /* libc's own return values and errno come back unchanged. */
    errno = 0;
    int r = sigaction(SIGKILL, &sa, NULL);
    printf("sigkill ret=%d errno=%d\n", r, errno);
    errno = 0;
    r = sigaction(0, &sa, NULL);
    printf("sig0 ret=%d errno=%d\n", r, errno);
    errno = 0;
    __sighandler_t p = signal(999, on_sig);
    printf("signal999 err=%d errno=%d\n", p == SIG_ERR, errno);

    /* Handlers still run. */
    raise(SIGUSR2);
    raise(SIGHUP);
    printf("hits %d\n", (int)hits);
    return 0;
}

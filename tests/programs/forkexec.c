/* fork/exec paths of a multi-threaded process, for tests/reliability.rs.
 *
 *   forkexec [CMD ARGS...]
 * While 4 background threads keep creating threads and installing signal
 * handlers, it runs, printing one "KEY exit=N" line each (N = the child's
 * exit code, or 128+signal, or "hang" if it did not end within 20 s):
 *   fork_child   fork(); the child calls pthread_create, sigaction (and takes
 *                the signal), dlopen/dlsym/dlclose, then exit(7)
 *   fork_exec    fork() + execv("/bin/sh", "-c", "exit 5")
 *   posix_spawn  posix_spawn("/bin/sh", "-c", "exit 6")
 *   vfork_exec   vfork() + execv("/bin/sh", "-c", "exit 4")
 *   fork_storm   40 forks racing the background threads; each child creates
 *                a thread and _exit(9)s; prints "fork_storm ok=K of 40"
 * then, when CMD is given, runs it (stdout/stderr inherited) through
 * posix_spawn, fork+exec and vfork+exec: "cmd_<how> exit=N". Exit code 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static volatile int stop;
static volatile sig_atomic_t got;

static void on_sig(int s) { (void)s; got++; }
static void *ret42(void *p) { (void)p; return (void *)42; }

static void *churn(void *p) {
    (void)p;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    while (!stop) {
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, ret42, NULL) == 0) pthread_join(t, &r);
        sigaction(SIGUSR2, &sa, NULL);
    }
    return NULL;
}

/* Waits up to 20 s; returns the exit code, 128+signal, or -1 on a hang. */
static int reap(pid_t pid) {
    for (int i = 0; i < 2000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR) return -2;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void show(const char *key, int code) {
    if (code == -1) printf("%s exit=hang\n", key);
    else printf("%s exit=%d\n", key, code);
}

static int child_work(void) {
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, ret42, NULL) || pthread_join(t, &r) || r != (void *)42) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    if (sigaction(SIGUSR1, &sa, NULL)) return 2;
    got = 0;
    raise(SIGUSR1);
    if (got != 1) return 3;
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h) return 4;
    double (*cosp)(double) = (double (*)(double))dlsym(h, "cos");
    if (!cosp || cosp(0.0) != 1.0) return 5;
    dlclose(h);
    return 7;
}

static char *sh_exit[4][4] = {
    {"sh", "-c", "exit 5", NULL},
    {"sh", "-c", "exit 6", NULL},
    {"sh", "-c", "exit 4", NULL},
};

static int do_fork_exec(char **argv) {
    pid_t p = fork();
    if (p == 0) { execv(argv[0][0] == '/' ? argv[0] : "/bin/sh", argv); _exit(127); }
    return p < 0 ? -3 : reap(p);
}

static int do_vfork_exec(const char *path, char **argv) {
    pid_t p = vfork();
    if (p == 0) { execv(path, argv); _exit(127); }
    return p < 0 ? -3 : reap(p);
}

static int do_spawn(const char *path, char **argv) {
    pid_t p;
    int e = posix_spawn(&p, path, NULL, NULL, argv, environ);
    return e ? -100 - e : reap(p);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t bg[4];
    for (int i = 0; i < 4; i++) pthread_create(&bg[i], NULL, churn, NULL);

    pid_t p = fork();
    if (p == 0) exit(child_work());
    show("fork_child", p < 0 ? -3 : reap(p));
    show("fork_exec", do_fork_exec(sh_exit[0]));
    show("posix_spawn", do_spawn("/bin/sh", sh_exit[1]));
    show("vfork_exec", do_vfork_exec("/bin/sh", sh_exit[2]));

    int ok = 0;
    for (int i = 0; i < 40; i++) {
        pid_t q = fork();
        if (q == 0) {
            pthread_t t;
            void *r = NULL;
            _exit(pthread_create(&t, NULL, ret42, NULL) == 0 && pthread_join(t, &r) == 0 && r == (void *)42 ? 9 : 1);
        }
        ok += q > 0 && reap(q) == 9;
    }
    printf("fork_storm ok=%d of 40\n", ok);

    if (argc > 1) {
        show("cmd_posix_spawn", do_spawn(argv[1], argv + 1));
        show("cmd_fork_exec", do_fork_exec(argv + 1));
        show("cmd_vfork_exec", do_vfork_exec(argv[1], argv + 1));
    }
    stop = 1;
    for (int i = 0; i < 4; i++) pthread_join(bg[i], NULL);
    return 0;
}

/* Signal dispositions as seen from inside the process, for
 * tests/dispositions.rs and scripts/dispositions.sh.
 *
 * Built as a shared library (cc -shared -fPIC -I<node-api headers>) that
 * every host can load: `cgofix_dispositions()` for bun:ffi, Deno.dlopen
 * and ctypes; an N-API module (`dump()`) for Node, which has no FFI. The
 * N-API functions are weak references, so hosts without them (CPython
 * loads with RTLD_NOW) still load the library.
 *
 * One line per signal 1..64:
 *   SIGNO DISP OWNER FLAGS  RAWDISP RAWOWNER RAWFLAGS
 * DISP is DFL, IGN, FN (a handler function) or ERR (sigaction refused the
 * query: glibc hides its reserved signals 32 and 33). OWNER is the object
 * the handler's address lies in (dladdr): `exe` for the main executable,
 * else the object's file name, `?` if no object holds it, `-` for DFL/IGN.
 * FLAGS is sa_flags in hex.
 *
 * The first triple is what libc's `sigaction` reports, read through the
 * same `sigaction` symbol the host's code binds to: when the shim is
 * preloaded that is its hook, which reports JSC's handler rather than the
 * trampoline standing in for it (src/trampoline.rs). Under qemu-user,
 * /proc/PID/status shows qemu's own handlers (docs/background.md §8), so
 * the guest's view must come from here. The second triple is the
 * rt_sigaction system call, bypassing every library: what the kernel will
 * actually run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

#pragma weak napi_create_string_utf8
#pragma weak napi_create_function
#pragma weak napi_set_named_property

/* The kernel's struct sigaction on x86_64 and aarch64 (both define
 * SA_RESTORER, so the restorer field is there on both). */
struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

static char out[64 * 160];

static const char *owner(void *addr) {
    Dl_info info, exe;
    if (!dladdr(addr, &info) || !info.dli_fname) return "?";
    /* dli_fname of the main program is argv[0] or "": compare load bases
     * with the object holding the entry point instead. */
    if (dladdr((void *)getauxval(AT_ENTRY), &exe) && exe.dli_fbase == info.dli_fbase)
        return "exe";
    const char *slash = strrchr(info.dli_fname, '/');
    const char *base = slash ? slash + 1 : info.dli_fname;
    return *base ? base : "?";
}

static const char *disp(void *h) {
    if (h == (void *)SIG_DFL) return "DFL";
    if (h == (void *)SIG_IGN) return "IGN";
    return "FN";
}

const char *cgofix_dispositions(void) {
    size_t used = 0;
    out[0] = 0;
    for (int sig = 1; sig <= 64; sig++) {
        struct sigaction sa;
        struct ksigaction k;
        memset(&sa, 0, sizeof sa);
        memset(&k, 0, sizeof k);
        /* act == NULL: pure queries, so probing never changes what it
         * measures. */
        int ok = sigaction(sig, NULL, &sa) == 0;
        int kok = syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) == 0;
        const char *d = ok ? disp((void *)sa.sa_handler) : "ERR";
        const char *kd = kok ? disp(k.handler) : "ERR";
        int n = snprintf(out + used, sizeof out - used, "%d %s %s 0x%x %s %s 0x%lx\n", sig, d,
                         strcmp(d, "FN") ? "-" : owner((void *)sa.sa_handler),
                         ok ? (unsigned)sa.sa_flags : 0u, kd,
                         strcmp(kd, "FN") ? "-" : owner(k.handler), kok ? k.flags : 0ul);
        if (n < 0 || (size_t)n >= sizeof out - used) break;
        used += (size_t)n;
    }
    return out;
}

static napi_value js_dump(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value s;
    if (napi_create_string_utf8(env, cgofix_dispositions(), NAPI_AUTO_LENGTH, &s) != napi_ok)
        return NULL;
    return s;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
    napi_value fn;
    if (napi_create_function(env, "dump", NAPI_AUTO_LENGTH, js_dump, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "dump", fn) != napi_ok)
        return NULL;
    return exports;
}

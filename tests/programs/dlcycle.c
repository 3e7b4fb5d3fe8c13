/* An N-API addon that, like dlhost.c but inside a real Bun, dlopen()s and
 * dlclose()s objects importing napi_queue_async_work (tests/programs/dllib.c):
 * the shim patches each object it sees loaded, must forget it when it is
 * unmapped, and patch the next one mapped at the same address again.
 *
 *   cycle(LIB_A, LIB_B, ROUNDS, CALLS) -> number of rounds that went wrong
 * Round i opens LIB_A (even i) or LIB_B (odd i), RTLD_LAZY every third round,
 * checks variant(), calls queue_n(CALLS) (each call reaches the host with no
 * env, which answers napi_invalid_arg) and closes it. */
#define NAPI_VERSION 8
#include <dlfcn.h>
#include <node_api.h>

static napi_value cycle(napi_env env, napi_callback_info info) {
    size_t argc = 4, len;
    napi_value argv[4], r;
    char a[4096], b[4096];
    int32_t rounds = 0, calls = 0;
    int bad = 0;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
        napi_get_value_string_utf8(env, argv[0], a, sizeof a, &len) != napi_ok ||
        napi_get_value_string_utf8(env, argv[1], b, sizeof b, &len) != napi_ok ||
        napi_get_value_int32(env, argv[2], &rounds) != napi_ok ||
        napi_get_value_int32(env, argv[3], &calls) != napi_ok) {
        napi_throw_error(env, NULL, "usage: cycle(libA, libB, rounds, calls)");
        return NULL;
    }
    for (int i = 0; i < rounds; i++) {
        void *h = dlopen((i & 1) ? b : a, (i % 3 == 2 ? RTLD_LAZY : RTLD_NOW) | RTLD_LOCAL);
        if (!h) {
            bad++;
            continue;
        }
        int (*variant)(void) = (int (*)(void))dlsym(h, "variant");
        int (*queue_n)(int) = (int (*)(int))dlsym(h, "queue_n");
        if (!variant || !queue_n || variant() != 1 + (i & 1))
            bad++;
        else
            queue_n(calls);
        if (dlclose(h)) bad++;
    }
    napi_create_int32(env, bad, &r);
    return r;
}

NAPI_MODULE_INIT() {
    napi_value fn;
    if (napi_create_function(env, "cycle", NAPI_AUTO_LENGTH, cycle, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "cycle", fn) != napi_ok)
        return NULL;
    return exports;
}

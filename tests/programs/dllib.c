/* A tiny "addon" for dlhost.c: imports napi_queue_async_work, which the host
 * executable defines (dlhost.c, or Bun under tests/programs/dlcycle.c).
 * Built twice (-DVARIANT=1, -DVARIANT=2) into two different .so files by
 * tests/reliability.rs. */
extern int napi_queue_async_work(void *env, void *work);

int variant(void) { return VARIANT; }

/* Queues n "works" (no env, no work: a real host such as Bun answers
 * napi_invalid_arg); returns how many calls the host accepted. */
int queue_n(int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) ok += napi_queue_async_work((void *)0, (void *)0) == 0;
    return ok;
}

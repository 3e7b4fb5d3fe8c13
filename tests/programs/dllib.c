/* A tiny "addon" for dlhost.c: imports napi_queue_async_work, which the host
 * executable defines. Built twice (-DVARIANT=1, -DVARIANT=2) into two
 * different .so files by tests/reliability.rs. */
extern int napi_queue_async_work(void *env, void *work);

int variant(void) { return VARIANT; }

/* Queues n "works"; returns how many calls the host accepted. */
int queue_n(int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) ok += napi_queue_async_work((void *)0, (void *)(long)(VARIANT * 1000 + i)) == 0;
    return ok;
}

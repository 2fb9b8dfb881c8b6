#include "qs_kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

// A pool of worker threads for the decode kernels. A token of decoding runs a few hundred
// small products (a 576 × 192 projection takes microseconds), so waking threads through a
// semaphore for each one (what libdispatch does) costs as much as the work itself. Here the
// workers spin on a generation counter for a while after each job, and sleep on a condition
// variable only once no job has come for that while; items are handed out in chunks through
// an atomic counter, so a thread the system pauses does not hold the others up.
//
// One job runs at a time: a call made while another runs (from another thread, or nested from
// inside a job) runs its items on the calling thread.

enum { QS_POOL_MAX = 64, QS_SPINS = 1 << 15, QS_WAIT_SPINS = 1 << 12 };

static struct {
    pthread_mutex_t busy;    // held by the caller of the running job
    pthread_mutex_t lock;    // guards sleeping
    pthread_cond_t wake;
    atomic_uint generation;  // advanced once per job
    atomic_int sleepers;
    atomic_int active;       // workers still in the current job
    atomic_long next;        // the next item to hand out
    long total, chunk;
    int participants;        // workers taking part in the current job
    qs_task_fn fn;
    void *ctx;
    int workers;             // started so far
    pthread_t threads[QS_POOL_MAX];
} pool = {
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static void run_items(void) {
    for (;;) {
        long begin = atomic_fetch_add(&pool.next, pool.chunk);
        if (begin >= pool.total) return;
        long end = begin + pool.chunk < pool.total ? begin + pool.chunk : pool.total;
        pool.fn(pool.ctx, begin, end);
    }
}

static void *worker_main(void *arg) {
    // The index, and the generation current when the worker was made: jobs before it are not its.
    long packed = (long)arg;
    int index = (int)(packed & 0xFFFF);
    unsigned seen = (unsigned)(packed >> 16);
    int took_part = 1;
    for (;;) {
        unsigned current;
        // A worker the last job did not ask for (the pool grew for a job of more threads than
        // the ones now running) sleeps at once instead of spinning beside those that work: on
        // two cores, after one job of 8 threads, SmolLM2 Q4_0 decoded on 2 threads at 13-18
        // tok/s with six idle workers spinning after every job, 63 tok/s with them asleep.
        int spins = took_part ? 0 : QS_SPINS;
        while ((current = atomic_load(&pool.generation)) == seen) {
            if (++spins < QS_SPINS) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
            spins = 0;
        }
        seen = current;
        took_part = index < pool.participants;
        if (took_part) {
            run_items();
            atomic_fetch_sub(&pool.active, 1);
        }
    }
    return NULL;
}

void qs_parallel(long total, long chunk, int threads, qs_task_fn fn, void *ctx) {
    if (total <= 0) return;
    if (chunk < 1) chunk = 1;
    if (threads > QS_POOL_MAX) threads = QS_POOL_MAX;
    if (threads <= 1 || total <= chunk || pthread_mutex_trylock(&pool.busy) != 0) {
        fn(ctx, 0, total);
        return;
    }
    while (pool.workers < threads - 1) {
        long arg = (long)pool.workers | ((long)atomic_load(&pool.generation) << 16);
        if (pthread_create(&pool.threads[pool.workers], NULL, worker_main, (void *)arg) != 0) break;
        pthread_detach(pool.threads[pool.workers]);
        pool.workers++;
    }
    int helpers = pool.workers < threads - 1 ? pool.workers : threads - 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = total;
    pool.chunk = chunk;
    pool.participants = helpers;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.active, helpers);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_items();
    // Every participant must check in before the next job may reuse the fields. A worker that
    // is slow to do so has usually been descheduled (more threads than cores: the test suite,
    // a build beside); after a short spin the caller yields its core so that worker can run,
    // where spinning on would hold it off for a whole time slice per job.
    for (int spins = 0; atomic_load(&pool.active) > 0; spins++) {
        if (spins < QS_WAIT_SPINS) _mm_pause();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool.busy);
}

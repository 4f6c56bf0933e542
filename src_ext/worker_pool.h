/* A persistent pool of native worker threads for the chunk reader.
 *
 * sd_pool_run(fn, arg, helpers) runs fn(arg) on the calling thread and on up to `helpers`
 * pool threads at once, and returns when every one of them has returned. fn must share its
 * work out itself (the reader hands out tasks through an atomic counter), so a helper that
 * wakes late simply finds nothing left to do. The caller never waits for a helper to start:
 * it works from the first microsecond, and a job whose caller finished first is withdrawn
 * before late helpers can join it. Handing work to Python's ThreadPoolExecutor cost 70-80 us
 * per read on this machine (futures, the GIL, two wake-ups), as much as decoding a plane.
 *
 * Waking a sleeping thread takes 30-50 us on this VM, as long as decoding a chunk, so a
 * helper woken when the job is posted arrives after a small read is done. sd_pool_wake()
 * wakes helpers ahead of time (the reader calls it before planning a large read) and idle
 * helpers spin for a short while, after a wake-up and after each job, before they sleep.
 *
 * Several threads may run jobs at once; idle helpers serve the oldest open job. Workers
 * never touch Python objects or the GIL, and block every signal but a fault's own (Python
 * handles signals on its main thread). After fork() the child starts with no workers and
 * creates new ones.
 */
#ifndef SD_WORKER_POOL_H
#define SD_WORKER_POOL_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#define SD_POOL_MAX_THREADS 256

typedef void (*sd_job_fn)(void *arg);

typedef struct sd_job {
    sd_job_fn fn;
    void *arg;
    int wanted;  /* helpers that may still join */
    int active;  /* helpers running fn now */
    struct sd_job *next;
} sd_job;

static pthread_mutex_t sd_pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sd_pool_work = PTHREAD_COND_INITIALIZER;  /* a job wants helpers */
static pthread_cond_t sd_pool_done = PTHREAD_COND_INITIALIZER;  /* a helper left its job */
static sd_job *sd_pool_jobs = NULL;  /* open jobs, oldest first */
static int sd_pool_threads = 0;
static int sd_pool_fork_handlers = 0;
static int sd_pool_sleeping = 0;            /* workers in pthread_cond_wait */
static int64_t sd_pool_heartbeat = 0;       /* last time a spinning worker ran (ns, atomic) */
static int64_t sd_pool_last_end = 0;        /* when the last job ended (ns, atomic) */
static int64_t sd_pool_posted = 0;          /* jobs posted so far (atomic) */
static int64_t sd_pool_spin_deadline = 0;   /* idle workers spin until then (ns, atomic) */

#define SD_POOL_SPIN_AFTER_JOB_NS 100000
#define SD_POOL_CALLER_SPIN_NS 2000000
#define SD_POOL_LIVE_NS 10000
#define SD_POOL_BUSY_NS 1000000

static int64_t sd_pool_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void sd_pool_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Until `deadline` or a new job is posted, spin without the mutex (called with it held). */
static void sd_pool_spin(int64_t deadline) {
    int64_t seen = __atomic_load_n(&sd_pool_posted, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&sd_pool_mutex);
    while (__atomic_load_n(&sd_pool_posted, __ATOMIC_ACQUIRE) == seen) {
        for (int i = 0; i < 64; i++) sd_pool_relax();
        int64_t now = sd_pool_now();
        __atomic_store_n(&sd_pool_heartbeat, now, __ATOMIC_RELAXED);
        if (now >= deadline) break;
    }
    pthread_mutex_lock(&sd_pool_mutex);
}

static void *sd_pool_worker(void *unused) {
    (void)unused;
    int64_t idle_until = 0;
    pthread_mutex_lock(&sd_pool_mutex);
    for (;;) {
        sd_job *job = sd_pool_jobs;
        while (job != NULL && job->wanted == 0) job = job->next;
        if (job == NULL) {
            int64_t deadline = __atomic_load_n(&sd_pool_spin_deadline, __ATOMIC_RELAXED);
            if (idle_until > deadline) deadline = idle_until;
            if (sd_pool_now() < deadline) {
                sd_pool_spin(deadline);
            } else {
                sd_pool_sleeping++;
                pthread_cond_wait(&sd_pool_work, &sd_pool_mutex);
                sd_pool_sleeping--;
            }
            idle_until = 0;
            continue;
        }
        job->wanted--;
        job->active++;
        pthread_mutex_unlock(&sd_pool_mutex);
        job->fn(job->arg);
        pthread_mutex_lock(&sd_pool_mutex);
        if (__atomic_sub_fetch(&job->active, 1, __ATOMIC_RELEASE) == 0)
            pthread_cond_broadcast(&sd_pool_done);
        idle_until = sd_pool_now() + SD_POOL_SPIN_AFTER_JOB_NS;
    }
    return NULL;
}

/* fork() copies only the calling thread: the child must not wait on the parent's workers,
   and the mutex must not be inherited locked. */
static void sd_pool_before_fork(void) { pthread_mutex_lock(&sd_pool_mutex); }
static void sd_pool_after_fork_parent(void) { pthread_mutex_unlock(&sd_pool_mutex); }
static void sd_pool_after_fork_child(void) {
    pthread_mutex_init(&sd_pool_mutex, NULL);
    pthread_cond_init(&sd_pool_work, NULL);
    pthread_cond_init(&sd_pool_done, NULL);
    sd_pool_jobs = NULL;
    sd_pool_threads = 0;
    sd_pool_sleeping = 0;
}

/* Block every signal in the calling thread, so that threads it starts inherit the mask and
   signals go to the interpreter's threads, but the signals of a fault in the thread itself:
   blocked, they kill the process without a handler (the reader's SIGBUS guard for truncated
   mappings, faulthandler). `previous` gets the mask to put back. */
static void sd_block_signals_for_new_threads(sigset_t *previous) {
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, previous);
}

/* A joinable thread running fn(arg), with the workers' signal mask; 0 if it started. */
typedef void *(*sd_thread_fn)(void *);
static int sd_start_thread(pthread_t *thread, sd_thread_fn fn, void *arg) {
    sigset_t previous;
    sd_block_signals_for_new_threads(&previous);
    int failed = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return failed;
}

/* Start workers until there are `wanted` (mutex held). Returns how many exist. */
static int sd_pool_grow(int wanted) {
    if (!sd_pool_fork_handlers) {
        pthread_atfork(sd_pool_before_fork, sd_pool_after_fork_parent, sd_pool_after_fork_child);
        sd_pool_fork_handlers = 1;
    }
    if (wanted > SD_POOL_MAX_THREADS) wanted = SD_POOL_MAX_THREADS;
    if (sd_pool_threads >= wanted) return sd_pool_threads;
    sigset_t previous;
    sd_block_signals_for_new_threads(&previous);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    while (sd_pool_threads < wanted) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, sd_pool_worker, NULL) != 0) break;
        sd_pool_threads++;
    }
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return sd_pool_threads;
}

/* Run fn(arg) here and on up to `helpers` workers; return once all have returned.
   With `awake_only` (small jobs), helpers are offered the job only if one is running right
   now (a spinning worker's heartbeat is fresh) or jobs are coming back to back. After an
   idle spell, merely waking a helper whose vCPU was halted slowed the caller of a 4-chunk
   plane read from 0.22 to 0.29-0.37 ms on this VM, more than a second thread can save. Returns how many helpers were offered the job. */
static int sd_pool_run(sd_job_fn fn, void *arg, int helpers, int awake_only) {
    sd_job job = {fn, arg, 0, 0, NULL};
    if (awake_only && helpers > 0) {
        int64_t now = sd_pool_now();
        int live = now - __atomic_load_n(&sd_pool_heartbeat, __ATOMIC_RELAXED) <= SD_POOL_LIVE_NS;
        int busy = now - __atomic_load_n(&sd_pool_last_end, __ATOMIC_RELAXED) <= SD_POOL_BUSY_NS;
        if (!live && !busy) helpers = 0;
    }
    if (helpers > 0) {
        pthread_mutex_lock(&sd_pool_mutex);
        int available = sd_pool_grow(helpers);
        job.wanted = helpers < available ? helpers : available;
        if (job.wanted > 0) {
            sd_job **tail = &sd_pool_jobs;
            while (*tail != NULL) tail = &(*tail)->next;
            *tail = &job;
            __atomic_add_fetch(&sd_pool_posted, 1, __ATOMIC_RELEASE);
            if (job.wanted == 1) pthread_cond_signal(&sd_pool_work);
            else pthread_cond_broadcast(&sd_pool_work);
        }
        helpers = job.wanted;
        pthread_mutex_unlock(&sd_pool_mutex);
    }
    fn(arg);
    if (helpers > 0) {
        pthread_mutex_lock(&sd_pool_mutex);
        job.wanted = 0;  /* withdrawn: late helpers go back to sleep */
        sd_job **link = &sd_pool_jobs;
        while (*link != &job) link = &(*link)->next;
        *link = job.next;
        /* A helper still at work finishes within a chunk's decode time: spin for it rather
           than sleep and pay another wake-up on the caller's side. */
        int64_t deadline = 0;
        while (job.active > 0) {
            if (deadline == 0) deadline = sd_pool_now() + SD_POOL_CALLER_SPIN_NS;
            if (sd_pool_now() < deadline) {
                pthread_mutex_unlock(&sd_pool_mutex);
                while (__atomic_load_n(&job.active, __ATOMIC_ACQUIRE) > 0 && sd_pool_now() < deadline)
                    for (int i = 0; i < 16; i++) sd_pool_relax();
                pthread_mutex_lock(&sd_pool_mutex);  /* the helper has let go of the job */
            } else {
                pthread_cond_wait(&sd_pool_done, &sd_pool_mutex);
            }
        }
        pthread_mutex_unlock(&sd_pool_mutex);
    }
    __atomic_store_n(&sd_pool_last_end, sd_pool_now(), __ATOMIC_RELAXED);
    return helpers;
}

/* Get up to `helpers` workers running and spinning for `spin_ns`: a job is coming. */
static void sd_pool_wake(int helpers, int64_t spin_ns) {
    if (helpers <= 0) return;
    int64_t deadline = sd_pool_now() + spin_ns;
    int64_t current = __atomic_load_n(&sd_pool_spin_deadline, __ATOMIC_RELAXED);
    while (current < deadline &&
           !__atomic_compare_exchange_n(&sd_pool_spin_deadline, &current, deadline, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    pthread_mutex_lock(&sd_pool_mutex);
    sd_pool_grow(helpers);
    int sleepers = sd_pool_sleeping < helpers ? sd_pool_sleeping : helpers;
    for (int i = 0; i < sleepers; i++) pthread_cond_signal(&sd_pool_work);
    pthread_mutex_unlock(&sd_pool_mutex);
}

static int sd_pool_size(void) {
    pthread_mutex_lock(&sd_pool_mutex);
    int size = sd_pool_threads;
    pthread_mutex_unlock(&sd_pool_mutex);
    return size;
}

#endif

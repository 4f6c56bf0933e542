/* Ways to read a selection's chunks from cold files and decode them, without the package: is
 * the gap between a cold read and max(disk, decode) the reader's or the machine's?
 *
 * Input (argv[1]): the reads, each "read N" then N lines "path offset size" (the stored
 * chunks of one selection, in the reader's order). Decoding is modelled: DECODE_US of CPU per
 * chunk (argv[2], measured on the real chunks by cold_report.py), so that what is measured is
 * how the I/O and the decoding overlap, not a decoder. Each timed read starts with the read's
 * files dropped from the page cache (posix_fadvise DONTNEED; cold_report.py fsyncs them).
 *
 * Prints one line per strategy: name, then the median and quartiles in ms over every read of
 * every repetition (the strategies interleaved in a shuffled order per read). With --check,
 * each strategy also sums the bytes it read and prints the sum, so a test can see that every
 * strategy reads exactly the chunks.
 *
 *   cc -O2 -pthread -o cold_strategies cold_strategies.c
 *   cold_strategies READS DECODE_US REPS THREADS [--check]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIECE (1 << 20)          /* the request size of the strategies that pick their own */
#define ADVICE_AHEAD (4 << 20)   /* how far the advising thread keeps ahead of the readers */
#define MAX_THREADS 64

typedef struct { int fd; int64_t offset, size; } Chunk;
typedef struct { Chunk *chunks; int n; } Read;
/* A run of nearby chunks of one file, for the strategies that issue their own requests. */
typedef struct { int fd; int64_t start, end; } Span;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double decode_us;
static int check;
static int n_threads;

static void decode(void) {  /* the modelled decoder: this much CPU, no sleeping */
    double end = now() + decode_us * 1e-6;
    volatile uint64_t x = 0;
    while (now() < end) x++;
}

static uint64_t byte_sum(const unsigned char *p, int64_t n) {
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += p[i];
    return s;
}

static void pread_all(int fd, char *buffer, int64_t size, int64_t offset) {
    int64_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, buffer + done, size - done, offset + done);
        if (got <= 0) { perror("pread"); exit(1); }
        done += got;
    }
}

/* ---- the state one timed read shares between its threads ---- */
static Read *current;
static atomic_int next_chunk;
static atomic_int chunks_in;        /* chunks the I/O thread has read (strategy "I/O thread") */
static atomic_int stop_helper;
static atomic_uint_fast64_t sum;
static char *ring;                  /* the read's output: every chunk's bytes in its place */
static int64_t ring_size;
static int64_t *ring_at;
static pthread_mutex_t read_lock = PTHREAD_MUTEX_INITIALIZER;
static Span *spans;
static int n_spans;

enum { PREAD_ONE, DECODE_ONLY, PREAD_DECODE, READS_ONE_AT_A_TIME, IO_THREAD,
       ADVICE_THREAD, NO_KERNEL_READ_AHEAD, N_STRATEGIES };
static const char *names[N_STRATEGIES] = {  /* as the report names them */
    "disk",                   /* one thread preads the chunks in order */
    "decode",                 /* decoding only, from memory */
    "design",                 /* each thread preads a chunk, then decodes it (the package's) */
    "one pread at a time",    /* the same, the preads of a read one at a time */
    "I/O thread",             /* an I/O thread preads in order into memory; threads decode */
    "advice 4 MiB ahead",     /* a thread asks WILLNEED, 1 MiB pieces, 4 MiB ahead */
    "no kernel read-ahead",   /* RANDOM; an I/O thread preads 1 MiB pieces ahead */
};
static int strategy;

static void *worker(void *unused) {
    (void)unused;
    Read *r = current;
    int64_t largest = 0;
    for (int i = 0; i < r->n; i++) if (r->chunks[i].size > largest) largest = r->chunks[i].size;
    char *buffer = malloc(largest > 0 ? largest : 1);
    for (;;) {
        int i = atomic_fetch_add(&next_chunk, 1);
        if (i >= r->n) break;
        Chunk *c = &r->chunks[i];
        const char *bytes = buffer;
        if (strategy == IO_THREAD) {
            while (atomic_load(&chunks_in) <= i) {
                struct timespec pause = {0, 20000};
                nanosleep(&pause, NULL);
            }
            bytes = ring + ring_at[i];
        } else if (strategy != DECODE_ONLY) {
            /* raw chunks (nothing to decode) are read into their place in the output,
               compressed ones into a buffer to decode from */
            char *target = decode_us > 0 ? buffer : ring + ring_at[i];
            if (strategy == READS_ONE_AT_A_TIME) pthread_mutex_lock(&read_lock);
            pread_all(c->fd, target, c->size, c->offset);
            if (strategy == READS_ONE_AT_A_TIME) pthread_mutex_unlock(&read_lock);
            bytes = target;
        }
        if (check && strategy != DECODE_ONLY) atomic_fetch_add(&sum, byte_sum((const unsigned char *)bytes, c->size));
        decode();
    }
    free(buffer);
    return NULL;
}

static void *io_thread(void *unused) {
    (void)unused;
    Read *r = current;
    for (int i = 0; i < r->n; i++) {
        pread_all(r->chunks[i].fd, ring + ring_at[i], r->chunks[i].size, r->chunks[i].offset);
        atomic_store(&chunks_in, i + 1);
    }
    return NULL;
}

static int64_t *chunk_position;  /* per chunk, where it starts in the spans laid end to end */

/* Where the readers are in the spans laid end to end: how far ahead a helper is. */
static int64_t position_of_readers(void) {
    int i = atomic_load(&next_chunk);
    return i >= current->n ? INT64_MAX : chunk_position[i];
}

static void *advice_thread(void *unused) {
    (void)unused;
    int64_t position = 0;
    char *piece = strategy == ADVICE_THREAD ? NULL : malloc(PIECE);
    for (int s = 0; s < n_spans && !atomic_load(&stop_helper); s++) {
        for (int64_t at = spans[s].start; at < spans[s].end && !atomic_load(&stop_helper);) {
            if (position - position_of_readers() >= ADVICE_AHEAD) {
                struct timespec pause = {0, 50000};
                nanosleep(&pause, NULL);
                continue;
            }
            int64_t n = spans[s].end - at < PIECE ? spans[s].end - at : PIECE;
            if (strategy == ADVICE_THREAD)
                posix_fadvise(spans[s].fd, at, n, POSIX_FADV_WILLNEED);
            else
                pread_all(spans[s].fd, piece, n, at);
            at += n;
            position += n;
        }
    }
    free(piece);
    return NULL;
}

static void plan_spans(Read *r) {
    free(spans);
    free(chunk_position);
    spans = malloc(sizeof(Span) * (r->n > 0 ? r->n : 1));
    chunk_position = malloc(sizeof(int64_t) * (r->n > 0 ? r->n : 1));
    n_spans = 0;
    int64_t base = 0;  /* bytes of the spans before the last one */
    for (int i = 0; i < r->n; i++) {
        Chunk *c = &r->chunks[i];
        Span *last = n_spans ? &spans[n_spans - 1] : NULL;
        if (last && last->fd == c->fd && c->offset >= last->start
                && c->offset <= last->end + (256 << 10)) {
            chunk_position[i] = base + (c->offset - last->start);
            if (c->offset + c->size > last->end) last->end = c->offset + c->size;
        } else {
            if (last) base += last->end - last->start;
            spans[n_spans++] = (Span){c->fd, c->offset, c->offset + c->size};
            chunk_position[i] = base;
        }
    }
}

static void drop(Read *r) {
    for (int i = 0; i < r->n; i++)
        if (i == 0 || r->chunks[i].fd != r->chunks[i - 1].fd)
            posix_fadvise(r->chunks[i].fd, 0, 0, POSIX_FADV_DONTNEED);
}

static double run(Read *r, int which) {
    current = r;
    strategy = which;
    atomic_store(&next_chunk, 0);
    atomic_store(&chunks_in, 0);
    atomic_store(&stop_helper, 0);
    plan_spans(r);
    int64_t total = 0;
    ring_at = realloc(ring_at, sizeof(int64_t) * (r->n > 0 ? r->n : 1));
    for (int i = 0; i < r->n; i++) { ring_at[i] = total; total += r->chunks[i].size; }
    if (which == NO_KERNEL_READ_AHEAD)
        for (int s = 0; s < n_spans; s++) posix_fadvise(spans[s].fd, 0, 0, POSIX_FADV_RANDOM);
    if (which != DECODE_ONLY) drop(r);
    double started = now();
    if (which == PREAD_ONE) {
        char *buffer = malloc(1 << 24);
        for (int i = 0; i < r->n; i++) {
            for (int64_t at = 0; at < r->chunks[i].size; at += 1 << 24) {
                int64_t n = r->chunks[i].size - at < (1 << 24) ? r->chunks[i].size - at : (1 << 24);
                pread_all(r->chunks[i].fd, buffer, n, r->chunks[i].offset + at);
                if (check) atomic_fetch_add(&sum, byte_sum((unsigned char *)buffer, n));
            }
        }
        free(buffer);
    } else {
        pthread_t threads[MAX_THREADS], helper;
        int helped = which == IO_THREAD || which == ADVICE_THREAD || which == NO_KERNEL_READ_AHEAD;
        if (helped)
            pthread_create(&helper, NULL, which == IO_THREAD ? io_thread : advice_thread, NULL);
        for (int t = 1; t < n_threads; t++) pthread_create(&threads[t], NULL, worker, NULL);
        worker(NULL);
        for (int t = 1; t < n_threads; t++) pthread_join(threads[t], NULL);
        atomic_store(&stop_helper, 1);
        if (helped) pthread_join(helper, NULL);
    }
    double elapsed = now() - started;
    if (which == NO_KERNEL_READ_AHEAD)
        for (int s = 0; s < n_spans; s++) posix_fadvise(spans[s].fd, 0, 0, POSIX_FADV_NORMAL);
    return elapsed;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static Read *load(const char *path, int *n_reads) {
    FILE *in = fopen(path, "r");
    if (!in) { perror(path); exit(1); }
    Read *reads = NULL;
    int n = 0, count, last_fd = -1;
    char name[4096], last_name[4096] = "";
    while (fscanf(in, " read %d", &count) == 1) {
        reads = realloc(reads, sizeof(Read) * (n + 1));
        reads[n].n = count;
        reads[n].chunks = malloc(sizeof(Chunk) * (count > 0 ? count : 1));
        for (int i = 0; i < count; i++) {
            long long offset, size;
            if (fscanf(in, " %4095s %lld %lld", name, &offset, &size) != 3) {
                fprintf(stderr, "%s: read %d, chunk %d: expected 'path offset size'\n", path, n, i);
                exit(1);
            }
            if (strcmp(name, last_name) != 0) {  /* a file's chunks come together */
                last_fd = open(name, O_RDONLY);
                if (last_fd < 0) { perror(name); exit(1); }
                strcpy(last_name, name);
            }
            reads[n].chunks[i] = (Chunk){last_fd, offset, size};
        }
        n++;
    }
    fclose(in);
    *n_reads = n;
    return reads;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s READS DECODE_US REPS THREADS [--check]\n", argv[0]);
        return 2;
    }
    int n_reads;
    Read *reads = load(argv[1], &n_reads);
    decode_us = atof(argv[2]);
    int reps = atoi(argv[3]);
    n_threads = atoi(argv[4]);
    check = argc > 5 && strcmp(argv[5], "--check") == 0;
    if (n_threads < 1 || n_threads > MAX_THREADS || n_reads < 1 || reps < 1) {
        fprintf(stderr, "need 1-%d threads, at least one read and one repetition\n", MAX_THREADS);
        return 2;
    }
    /* The output every strategy reads raw chunks into: allocated and touched once, before
       any timing, as a reader's reused ``out=`` is; then the caches are filled with other
       bytes, so that no strategy finds it warmer than a reader finds its output. */
    for (int r = 0; r < n_reads; r++) {
        int64_t total = 0;
        for (int i = 0; i < reads[r].n; i++) total += reads[r].chunks[i].size;
        if (total > ring_size) ring_size = total;
    }
    ring = malloc(ring_size > 0 ? ring_size : 1);
    char *flush = malloc(64 << 20);
    if (ring == NULL || flush == NULL) { perror("malloc"); return 1; }
    memset(ring, 0, ring_size);
    memset(flush, 1, 64 << 20);
    free(flush);
    int timed = reps * n_reads;
    double *times[N_STRATEGIES];
    uint64_t sums[N_STRATEGIES] = {0};
    for (int s = 0; s < N_STRATEGIES; s++) times[s] = malloc(sizeof(double) * timed);
    srand(20240611);
    int k = 0;
    for (int rep = 0; rep < reps; rep++) {
        for (int r = 0; r < n_reads; r++, k++) {
            int order[N_STRATEGIES];
            for (int s = 0; s < N_STRATEGIES; s++) order[s] = s;
            for (int s = N_STRATEGIES - 1; s > 0; s--) {
                int j = rand() % (s + 1), x = order[s];
                order[s] = order[j];
                order[j] = x;
            }
            for (int s = 0; s < N_STRATEGIES; s++) {
                atomic_store(&sum, 0);
                times[order[s]][k] = run(&reads[r], order[s]);
                if (rep == 0) sums[order[s]] += atomic_load(&sum);
            }
        }
    }
    for (int s = 0; s < N_STRATEGIES; s++) {
        qsort(times[s], timed, sizeof(double), compare);
        printf("%s\t%.4f\t%.4f\t%.4f", names[s], times[s][timed / 2] * 1e3,
               times[s][timed / 4] * 1e3, times[s][(3 * timed) / 4] * 1e3);
        if (check) printf("\t%llu", (unsigned long long)sums[s]);
        printf("\n");
    }
    return 0;
}

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Execute a read plan: pread each chunk, decode it, copy the selected part into the output.

Runs with the GIL released, on the calling thread and on workers of a persistent native
pool (``worker_pool.h``), all on the same context: tasks are handed out through an atomic
counter and every task writes a region of the output that no other task writes (each output
element belongs to exactly one chunk of one file), so no locks are needed. Scratch buffers and
the blosc decompression context are per thread, and freed when the thread exits.

Decoders: blosc (HDF5 filter 32001, Blosc1 chunks, all codecs and shuffles) through c-blosc2;
deflate through zlib-ng (bundled in the same static library); HDF5's byte shuffle through
c-blosc2's SIMD unshuffle. The plan is bounds-checked once when the context is made, and every
size is checked against the file layout before a byte is written, so corrupt input yields an
error code, never an out-of-bounds access or silently wrong values.

This module is the one home of the codec ids and error codes shared with Python
(``Codec``, ``ReadError``, ``ERROR_MESSAGES``).
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport (INT32_MIN, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t,
                           uintptr_t)
from libc.string cimport memcpy, memset
from libc.stdlib cimport free, calloc

cnp.import_array()

cdef extern from "blosc2.h" nogil:
    ctypedef struct blosc2_context:
        pass
    void blosc2_init()
    int blosc2_decompress_ctx(blosc2_context* context, const void* src, int32_t srcsize,
                              void* dest, int32_t destsize)
    int32_t blosc2_unshuffle(int32_t typesize, int32_t blocksize, const void* src, void* dest)

cdef extern from *:
    """
    #include <errno.h>
    #include <fcntl.h>
    #include <pthread.h>
    #include <sys/uio.h>
    #include <time.h>
    #include <stdint.h>
    #include <stdlib.h>
    #include <unistd.h>
    #include "blosc2.h"

    /* zlib-ng's native API, linked from libblosc2.a, which bundles zlib-ng. */
    int32_t zng_uncompress(uint8_t *dest, size_t *destLen, const uint8_t *source,
                           size_t sourceLen);
    uint32_t zng_crc32_z(uint32_t crc, const uint8_t *buf, size_t len);

    /* Per-thread state: scratch buffers and the blosc decompression context. Reached through
       a __thread pointer (fast), registered under a pthread key whose destructor frees it
       when the thread exits: threads that come and go leave no memory behind. */
    typedef struct { char *data; size_t capacity; } sd_buffer;
    typedef struct { sd_buffer buffers[3]; blosc2_context *dctx; } sd_thread_state;

    static pthread_key_t sd_state_key;
    static pthread_once_t sd_state_once = PTHREAD_ONCE_INIT;
    static __thread sd_thread_state *sd_state = NULL;

    static void sd_state_free(void *pointer) {
        sd_thread_state *state = (sd_thread_state *)pointer;
        for (int i = 0; i < 3; i++) free(state->buffers[i].data);
        if (state->dctx != NULL) blosc2_free_ctx(state->dctx);
        free(state);
        sd_state = NULL;
    }

    static void sd_state_key_create(void) { pthread_key_create(&sd_state_key, sd_state_free); }

    static sd_thread_state *sd_thread(void) {
        if (sd_state == NULL) {
            pthread_once(&sd_state_once, sd_state_key_create);
            sd_thread_state *state = (sd_thread_state *)calloc(1, sizeof(sd_thread_state));
            if (state == NULL) return NULL;
            if (pthread_setspecific(sd_state_key, state) != 0) { free(state); return NULL; }
            sd_state = state;
        }
        return sd_state;
    }

    /* A per-thread buffer of at least `size` bytes (0: compressed, 1: decoded, 2: staging). */
    static char *sd_scratch(int which, size_t size) {
        sd_thread_state *state = sd_thread();
        if (state == NULL) return NULL;
        sd_buffer *buffer = &state->buffers[which];
        if (buffer->capacity < size) {
            char *grown = (char *)realloc(buffer->data, size);
            if (grown == NULL) return NULL;
            buffer->data = grown;
            buffer->capacity = size;
        }
        return buffer->data;
    }

    static blosc2_context *sd_dctx(void) {
        sd_thread_state *state = sd_thread();
        if (state == NULL) return NULL;
        if (state->dctx == NULL) {
            blosc2_dparams params = BLOSC2_DPARAMS_DEFAULTS;
            params.nthreads = 1;
            state->dctx = blosc2_create_dctx(params);
        }
        return state->dctx;
    }

    /* A context that failed once may keep state that decodes later, valid chunks wrongly
       (seen with c-blosc2 4.x): it never decodes again. */
    static void sd_dctx_discard(void) {
        if (sd_state != NULL && sd_state->dctx != NULL) {
            blosc2_free_ctx(sd_state->dctx);
            sd_state->dctx = NULL;
        }
    }

    static int sd_thread_has_state(void) { return sd_state != NULL; }

    /* Decode a blosc chunk with this thread's context, which is discarded if it fails.
       Returns c-blosc2's status (destsize on success), or INT32_MIN without memory. */
    static int sd_blosc_decode(const void *src, int32_t srcsize, void *dest, int32_t destsize) {
        blosc2_context *context = sd_dctx();
        if (context == NULL) return INT32_MIN;
        int status = blosc2_decompress_ctx(context, src, srcsize, dest, destsize);
        if (status != destsize) sd_dctx_discard();
        return status;
    }

    /* pread all of `size` bytes; returns 0, -errno, or 1 on end of file (truncated). */
    static int sd_pread_all(int fd, char *buffer, int64_t size, int64_t offset) {
        while (size > 0) {
            ssize_t got = pread(fd, buffer, (size_t)size, (off_t)offset);
            if (got < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            if (got == 0) return 1;
            buffer += got; size -= got; offset += got;
        }
        return 0;
    }

    /* Reads what of the bytes the page cache holds right now, without waiting for the disk
       (preadv2 RWF_NOWAIT: one syscall, like pread). Returns how many bytes it read, and sets
       *miss when some were not cached: the reader's cue to read ahead. It cannot tell on
       kernels or file systems without RWF_NOWAIT (never asked again), at end of file or on
       an error: it returns 0 and the blocking pread that follows reports what is wrong. */
    static int sd_nowait_unsupported = 0;
    static int64_t sd_pread_cached(int fd, char *buffer, int64_t size, int64_t offset, int *miss) {
        *miss = 0;
    #ifdef RWF_NOWAIT
        if (size > 0 && !__atomic_load_n(&sd_nowait_unsupported, __ATOMIC_RELAXED)) {
            struct iovec vector = {buffer, (size_t)size};
            ssize_t got;
            do got = preadv2(fd, &vector, 1, (off_t)offset, RWF_NOWAIT); while (got < 0 && errno == EINTR);
            if (got > 0) {
                *miss = got < size;
                return got;
            }
            if (got < 0 && errno == EAGAIN) *miss = 1;
            else if (got < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
                __atomic_store_n(&sd_nowait_unsupported, 1, __ATOMIC_RELAXED);
        }
    #endif
        return 0;
    }

    /* Tell the kernel to start reading [offset, offset + length) into the page cache. */
    static void sd_advise_willneed(int fd, int64_t offset, int64_t length) {
        if (length > 0) posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_WILLNEED);
    }

    static int64_t sd_atomic_add(int64_t *slot, int64_t value) {
        return __atomic_add_fetch(slot, value, __ATOMIC_RELAXED);
    }
    static int sd_claim_range(int64_t *slot, int64_t expected, int64_t wanted) {
        return __atomic_compare_exchange_n(slot, &expected, wanted, 0, __ATOMIC_RELAXED,
                                           __ATOMIC_RELAXED);
    }
    static int64_t sd_atomic_load(int64_t *slot) { return __atomic_load_n(slot, __ATOMIC_RELAXED); }
    static void sd_set_flag(int *slot) { __atomic_store_n(slot, 1, __ATOMIC_RELAXED); }
    static int sd_claim_int(int *slot, int expected, int wanted) {
        return __atomic_compare_exchange_n(slot, &expected, wanted, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE);
    }
    static int sd_atomic_load_int(int *slot) { return __atomic_load_n(slot, __ATOMIC_ACQUIRE); }
    static void sd_store_int(int *slot, int value) { __atomic_store_n(slot, value, __ATOMIC_RELEASE); }
    static int sd_get_flag(int *slot) { return __atomic_load_n(slot, __ATOMIC_RELAXED); }

    static int64_t sd_now_ns(void) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }
    static int64_t sd_thread_cpu_ns(void) {
        struct timespec now;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
        return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }

    static int64_t sd_next_task(int64_t *counter) {
        return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    }

    static int sd_first_error(int *slot, int code) {
        int expected = 0;
        return __atomic_compare_exchange_n(slot, &expected, code, 0, __ATOMIC_SEQ_CST,
                                           __ATOMIC_SEQ_CST);
    }

    static int sd_load_error(int *slot) { return __atomic_load_n(slot, __ATOMIC_RELAXED); }

    /* Foreground reads in progress, process-wide. Background (prefetch) reads wait between
       chunks while it is non-zero, so a viewer's read never queues behind read-ahead. The
       wait is bounded: a long bulk read in the foreground lets read-ahead go on after a
       while rather than starve it. A forked child starts at zero: the reads counted here
       ran on threads the child does not have. */
    static int sd_foreground_reads = 0;
    #define SD_YIELD_MAX_US 100000

    static void sd_foreground_enter(void) { __atomic_add_fetch(&sd_foreground_reads, 1, __ATOMIC_SEQ_CST); }
    static void sd_foreground_leave(void) { __atomic_sub_fetch(&sd_foreground_reads, 1, __ATOMIC_SEQ_CST); }
    static int sd_foreground_count(void) { return __atomic_load_n(&sd_foreground_reads, __ATOMIC_SEQ_CST); }
    static void sd_yield_to_foreground(void) {
        for (int waited = 0; waited < SD_YIELD_MAX_US; waited += 20) {
            if (__atomic_load_n(&sd_foreground_reads, __ATOMIC_RELAXED) <= 0) return;
            usleep(20);
        }
    }
    static void sd_reader_after_fork_child(void) { sd_foreground_reads = 0; }

    static void sd_sleep_ns(int64_t ns) {
        struct timespec pause = {ns / 1000000000, ns % 1000000000};
        nanosleep(&pause, NULL);
    }

    /* Compressed block files are read through a read-only mapping of the whole file: the
       decoder reads the page cache in place, with no pread copy into scratch first. If the
       file is truncated by another program while it is mapped, touching the lost pages raises
       SIGBUS; code that reads a mapping runs under sd_call_guarded, and the handler turns
       such a fault into an error return of that call. SIGBUS anywhere else goes to the
       handler that was there before ours, then ends the process as it would without us. */
    #include <setjmp.h>
    #include <signal.h>
    #include <string.h>
    #include <sys/mman.h>

    #define SD_MAPPING_FAULTED (-1000)
    typedef int (*sd_guarded_fn)(void *);
    static __thread sigjmp_buf *sd_fault_jump = NULL;
    static struct sigaction sd_previous_bus;

    static void sd_on_bus(int signum, siginfo_t *info, void *ucontext) {
        sigjmp_buf *jump = sd_fault_jump;
        if (jump != NULL) {  /* a read of a mapping: also when re-raised by a handler on top */
            sd_fault_jump = NULL;
            siglongjmp(*jump, 1);
        }
        /* Not ours: the handler that was there before ours (faulthandler's, say), called
           directly: re-raising to it could bounce between two handlers that chain to each
           other. Then the default action: a fault repeats on return, a sent signal is
           raised again. */
        struct sigaction previous = sd_previous_bus, fallback;
        if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN) {
            sigaction(SIGBUS, &previous, NULL);
            return;
        }
        if (previous.sa_flags & SA_SIGINFO) {
            if (previous.sa_sigaction != NULL) previous.sa_sigaction(signum, info, ucontext);
        } else if (previous.sa_handler != SIG_DFL) {
            previous.sa_handler(signum);
        }
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigemptyset(&fallback.sa_mask);
        sigaction(SIGBUS, &fallback, NULL);
        if (info == NULL || info->si_code <= 0) raise(signum);
    }

    /* Install the handler unless it is in place; 0, or -errno. Called with the GIL held. */
    static int sd_guard_mappings(void) {
        struct sigaction now, ours;
        if (sigaction(SIGBUS, NULL, &now) != 0) return -errno;
        if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == sd_on_bus) return 0;
        memset(&ours, 0, sizeof ours);
        ours.sa_sigaction = sd_on_bus;
        /* SA_NODEFER: the handler leaves by siglongjmp without restoring the signal mask */
        ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&ours.sa_mask);
        if (sigaction(SIGBUS, &ours, &now) != 0) return -errno;
        sd_previous_bus = now;
        return 0;
    }

    /* fn(argument), or SD_MAPPING_FAULTED if it touched a page of a mapping that is gone. A
       blosc context interrupted mid-chunk is discarded. */
    static int sd_call_guarded(sd_guarded_fn fn, void *argument) {
        sigjmp_buf jump;
        sigjmp_buf *outer = sd_fault_jump;
        if (sigsetjmp(jump, 0) != 0) {
            sd_fault_jump = outer;
            sd_dctx_discard();
            return SD_MAPPING_FAULTED;
        }
        sd_fault_jump = &jump;
        int status = fn(argument);
        sd_fault_jump = outer;
        return status;
    }

    /* Whether all pages of [address, address + size) are in the page cache (mincore); 1 when
       it cannot tell, then the access may wait on the disk as a pread would. */
    static int sd_mapped_resident(const char *address, int64_t size) {
        static __thread unsigned char vector[256];
        static uintptr_t page = 0;  /* the same for every thread: a race writes one value */
        if (page == 0) page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t start = (uintptr_t)address & ~(page - 1);
        uintptr_t end = (uintptr_t)address + (uintptr_t)size;
        while (start < end) {
            uintptr_t pages = (end - start + page - 1) / page;
            if (pages > sizeof vector) pages = sizeof vector;
            if (mincore((void *)start, pages * page, vector) != 0) return 1;
            for (uintptr_t i = 0; i < pages; i++)
                if (!(vector[i] & 1)) return 0;
            start += pages * page;
        }
        return 1;
    }

    static uintptr_t sd_map_file(int fd, int64_t size) {
        void *address = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        return address == MAP_FAILED ? 0 : (uintptr_t)address;
    }
    static void sd_reader_register_fork_handler(void) {
        pthread_atfork(NULL, NULL, sd_reader_after_fork_child);
    }
    """
    char* sd_scratch(int which, size_t size) nogil
    blosc2_context* sd_dctx() nogil
    void sd_dctx_discard() nogil
    int sd_blosc_decode(const void* src, int32_t srcsize, void* dest, int32_t destsize) nogil
    int sd_thread_has_state() nogil
    int sd_pread_all(int fd, char* buffer, int64_t size, int64_t offset) nogil
    int64_t sd_pread_cached(int fd, char* buffer, int64_t size, int64_t offset, int* miss) nogil
    void sd_advise_willneed(int fd, int64_t offset, int64_t length) nogil
    int64_t sd_atomic_add(int64_t* slot, int64_t value) nogil
    int sd_claim_range(int64_t* slot, int64_t expected, int64_t wanted) nogil
    int64_t sd_atomic_load(int64_t* slot) nogil
    void sd_set_flag(int* slot) nogil
    int sd_claim_int(int* slot, int expected, int wanted) nogil
    int sd_atomic_load_int(int* slot) nogil
    void sd_store_int(int* slot, int value) nogil
    int sd_get_flag(int* slot) nogil
    int64_t sd_now_ns() nogil
    int64_t sd_thread_cpu_ns() nogil
    int64_t sd_next_task(int64_t* counter) nogil
    int sd_first_error(int* slot, int code) nogil
    int sd_load_error(int* slot) nogil
    void sd_foreground_enter() nogil
    void sd_foreground_leave() nogil
    int sd_foreground_count() nogil
    void sd_yield_to_foreground() nogil
    void sd_reader_register_fork_handler() nogil
    ctypedef unsigned long pthread_t
    int pthread_join(pthread_t thread, void** result) nogil
    void sd_sleep_ns(int64_t ns) nogil
    ctypedef int (*sd_guarded_fn)(void*) noexcept nogil
    int SD_MAPPING_FAULTED
    int sd_guard_mappings()
    int sd_call_guarded(sd_guarded_fn fn, void* argument) nogil
    int sd_mapped_resident(const char* address, int64_t size) nogil
    uintptr_t sd_map_file(int fd, int64_t size) nogil
    int munmap(void* address, size_t length) nogil
    int32_t zng_uncompress(uint8_t* dest, size_t* destLen, const uint8_t* source,
                           size_t sourceLen) nogil
    uint32_t zng_crc32_z(uint32_t crc, const uint8_t* buf, size_t len) nogil

cdef extern from "worker_pool.h" nogil:
    ctypedef void (*sd_job_fn)(void*) noexcept nogil
    ctypedef void* (*sd_thread_fn)(void*) noexcept nogil
    int sd_start_thread(pthread_t* thread, sd_thread_fn fn, void* arg)
    int sd_pool_run(sd_job_fn fn, void* arg, int helpers, int awake_only)
    int sd_pool_size()
    void sd_pool_wake(int helpers, int64_t spin_ns)

blosc2_init()
sd_reader_register_fork_handler()


# --- contracts with Python: defined here, once ------------------------------------------------

cpdef enum Codec:
    """How the fast path decodes a file's chunks (``FileLayout.codec``)."""
    RAW = 0
    BLOSC = 1
    DEFLATE = 2
    SHUFFLE_DEFLATE = 3
    SHUFFLE = 4
    H5PY = 99  # not decoded here: read through h5py + hdf5plugin


cpdef enum ReadError:
    """Why a read stopped (``ReadContext.error_code``); ``ERROR_MESSAGES`` says it in words."""
    READ_FAILED = 1
    TRUNCATED = 2
    BAD_BLOSC_HEADER = 3
    WRONG_DECODED_SIZE = 4
    BLOSC_FAILED = 5
    DEFLATE_FAILED = 6
    WRONG_STORED_SIZE = 7
    CHUNK_OUTSIDE_GRID = 8
    OUT_OF_MEMORY = 9
    CHUNK_NOT_INDEXED = 10
    CHUNK_OUTSIDE_FILE = 11
    CHECKSUM_MISMATCH = 12
    CHUNK_MISSING = 13
    FILE_SHRANK = 14


ERROR_MESSAGES = {
    ReadError.READ_FAILED: "reading the file failed",
    ReadError.TRUNCATED: "the file ends before the chunk (truncated file?)",
    ReadError.BAD_BLOSC_HEADER: "invalid Blosc1 header (not what the HDF5 blosc filter writes)",
    ReadError.WRONG_DECODED_SIZE: "the chunk decodes to the wrong size",
    ReadError.BLOSC_FAILED: "blosc decompression failed",
    ReadError.DEFLATE_FAILED: "deflate decompression failed",
    ReadError.WRONG_STORED_SIZE: "stored size does not match the chunk size",
    ReadError.CHUNK_OUTSIDE_GRID: "chunk index outside the file's chunk grid",
    ReadError.OUT_OF_MEMORY: "out of memory",
    ReadError.CHUNK_NOT_INDEXED: "internal error: the chunk was not looked up in the file's index",
    ReadError.CHUNK_OUTSIDE_FILE: "the chunk index points outside the file (corrupt index?)",
    ReadError.CHECKSUM_MISMATCH: (
        "checksum mismatch: the chunk's bytes, or the checksum recorded for them, changed "
        "since they were written"
    ),
    ReadError.FILE_SHRANK: (
        "the file shrank while it was being read (truncated or rewritten in place by another "
        "program?)"
    ),
    ReadError.CHUNK_MISSING: (
        "the chunk index says this chunk was never written, but our writer recorded its "
        "checksum (corrupt index?)"
    ),
}

cdef enum:
    OFFSET_UNWRITTEN = -1  # chunk_offset of a chunk never written: the fill value
    MAX_DIMS = 32
    BLOSC_HEADER_BYTES = 16
    BLOSC1_FORMAT_VERSION = 2  # what every c-blosc 1.x writes, and the only one it reads
    BLOSC1_MAX_TYPESIZE = 255
    INT32_LIMIT = 0x7FFFFFFF
    # On a page-cache miss, ask the kernel for the planned chunks of the files ahead until
    # this many bytes are on their way (and always for the next file): the disk works while
    # the cores decode. Chunks far apart are advised separately: a gap under READ_AHEAD_GAP
    # is read along rather than costing another request.
    READ_AHEAD_BYTES = 64 << 20
    READ_AHEAD_GAP = 256 << 10
    # A file read as one run this long is left to the kernel's own read-ahead even when it is
    # ahead: advised whole, it competed with the file being read for the disk (a cold full read
    # of 60 MB files was 0.73x)
    READ_AHEAD_LONG_RUN = 16 << 20
    # Raw chunks have no decoding for the disk to overlap with: the kernel's own read-ahead
    # (8 MiB windows here) keeps up with a long run, and advice for the files ahead only
    # queued in front of the file being read (cold full read of 10 MiB raw files: 963 ms
    # advised against 797 without, 2 threads). Short runs (a plane per file) still gain.
    READ_AHEAD_LONG_RUN_RAW = 2 << 20
    # The read-ahead thread keeps this much of the plan's stored bytes asked for ahead of the
    # decoders (cold full reads, interleaved, against 64 MiB / 256 MiB: within noise of both,
    # 4-16 MiB were slower than advice from the decoding threads), asks for at most
    # READ_AHEAD_PIECE of one run of chunks at a time, so the first requests go out at once,
    # and looks again every READ_AHEAD_POLL_NS when far enough ahead.
    READ_AHEAD_THREAD_BYTES = 128 << 20
    READ_AHEAD_PIECE = 4 << 20
    READ_AHEAD_POLL_NS = 100000


def wake_pool(int threads, int64_t spin_us=200):
    """A read on ``threads`` threads is coming: wake the helpers now, since waking one takes
    as long as decoding a chunk. They spin for up to ``spin_us`` waiting for it."""
    with nogil:
        sd_pool_wake(threads - 1, spin_us * 1000)


def pool_size():
    """Worker threads the native pool has started (they persist for the process)."""
    return sd_pool_size()


def foreground_reads():
    """Foreground reads in progress in this process (background reads wait for them)."""
    return sd_foreground_count()


def thread_has_state():
    """Whether the calling thread holds scratch buffers (tests: freed when threads exit)."""
    return bool(sd_thread_has_state())


def blosc_decode_unchecked(const uint8_t[::1] chunk, int64_t nbytes):
    """Tests only: decode with this thread's context and no header checks, as a chunk that
    passes them but fails in c-blosc2 would be. Returns c-blosc2's status."""
    cdef char* target = sd_scratch(1, nbytes)
    if target == NULL:
        raise MemoryError()
    return sd_blosc_decode(&chunk[0], <int32_t>chunk.shape[0], target, <int32_t>nbytes)


def map_file(int fd, int64_t size):
    """Map ``size`` bytes of the file read-only for the readers (``FileInfo.mapped``): the
    address, or 0 if it cannot be mapped (then it is read with pread). Installs the SIGBUS
    guard first (again, if another handler replaced it since)."""
    cdef uintptr_t address
    if size <= 0 or sd_guard_mappings() != 0:
        return 0
    with nogil:
        address = sd_map_file(fd, size)
    return address


def unmap_file(uintptr_t address, int64_t size):
    """Undo ``map_file`` (no read may be using the mapping)."""
    if address != 0 and munmap(<void*>address, <size_t>size) != 0:
        raise OSError("munmap failed")


def crc32(const uint8_t[::1] data, uint32_t value=0):
    """CRC-32 of ``data`` (zlib's polynomial) by zlib-ng, without the GIL: the checksum our
    writers record for every stored chunk, computed as the reader verifies it (several times
    faster than Python's zlib here)."""
    cdef size_t size = data.shape[0]
    if size == 0:
        return value
    with nogil:
        value = zng_crc32_z(value, &data[0], size)
    return value


def max_stored_bytes(int64_t chunk_nbytes):
    """The most bytes a compressed chunk of ``chunk_nbytes`` can take on disk.

    HDF5's filters keep a chunk raw (filter mask set) when compressing does not shrink it;
    blosc adds at most a 16-byte header, deflate a few bytes per 16 KiB. A larger stored size
    is a corrupt index, refused before any scratch memory grows to it.
    """
    return _max_stored_bytes(chunk_nbytes)


cdef inline int64_t _max_stored_bytes(int64_t chunk_nbytes) noexcept nogil:
    return chunk_nbytes + chunk_nbytes // 64 + 1024


cdef inline uint32_t _le32(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef int _check_blosc1_header(const uint8_t* header, int64_t stored, int64_t expected,
                              int typesize) noexcept nogil:
    """0 if the header is one c-blosc 1.x writes for this chunk, else which check failed (1-9).

    c-blosc2 also decodes the Blosc2 format and gives meaning to flag bits that Blosc1 leaves
    reserved (0x08: delta coding), so a corrupt header would decode into other values without
    an error; h5py's filter (c-blosc 1.x) would have refused it, and so do we.
    """
    cdef uint8_t flags = header[2]
    cdef int64_t nbytes = _le32(header + 4), blocksize = _le32(header + 8)
    cdef int64_t cbytes = _le32(header + 12)
    cdef int blosc_typesize = typesize if typesize <= BLOSC1_MAX_TYPESIZE else 1
    if header[0] != BLOSC1_FORMAT_VERSION:
        return 1
    if flags & 0x08:  # reserved in Blosc1
        return 2
    if (flags & 0x01) and (flags & 0x04):  # byte and bit shuffle: Blosc1 applies one
        return 3
    if (flags >> 5) > 4:  # compressor code: blosclz, lz4(hc), snappy, zlib, zstd
        return 4
    if header[3] != blosc_typesize:
        return 5
    if nbytes != expected:
        return 6
    if cbytes != stored:
        return 7
    if (flags & 0x02) and cbytes != nbytes + BLOSC_HEADER_BYTES:  # stored as a plain copy
        return 8
    if blocksize <= 0 or blocksize > nbytes or blocksize % blosc_typesize != 0:
        return 9
    return 0


cdef struct FileInfo:
    int fd
    int codec
    int typesize
    bint virtual_chunks  # contiguous dataset: edge chunks are stored short
    const int64_t* chunk_offset
    const int64_t* chunk_size
    const int64_t* chunk_mask
    const int64_t* chunk_crc  # CRC-32 of the stored bytes, -1 unknown; NULL: none at all
    int64_t n_chunks
    int64_t chunk_nbytes
    int64_t file_size
    int64_t chunk_dims[MAX_DIMS]
    int64_t grid_dims[MAX_DIMS]
    int64_t grid_stride[MAX_DIMS]
    int64_t chunk_stride[MAX_DIMS]
    int64_t first_task  # the plan's tasks of this file: [first_task, first_task + n_tasks)
    int64_t n_tasks  # (0 when they are not one run: then it is never read ahead)
    int64_t planned_bytes  # stored bytes the plan reads from this file
    const char* mapped  # the whole file mapped read-only (``map_file``), or NULL


cdef class FileDescription:
    """A file layout as the workers read it (its ``FileInfo`` but the descriptor and the
    mapping), checked once: a block file keeps one (``OpenBlockFile.description``), so a read
    across 100 files copies 100 of them instead of describing every file again (2.5 us each).
    The chunk tables are the layout's own arrays, filled in place by a lazy index."""

    cdef FileInfo info
    cdef int ndim
    cdef readonly object layout
    cdef list tables  # kept alive: ``info`` points into them

    def __init__(self, layout):
        cdef int a
        cdef object crc = layout.chunk_crc
        tables = [layout.chunk_offset, layout.chunk_size, layout.chunk_mask]
        if crc is not None:
            tables.append(crc)
        for array in tables:
            if array.dtype != np.int64 or not array.flags.c_contiguous:
                raise ValueError("chunk tables must be contiguous int64 arrays")
            if array.shape[0] != tables[0].shape[0]:
                raise ValueError("chunk tables differ in length")
        chunk_shape, chunk_grid = layout.chunk_shape, layout.chunk_grid
        if len(chunk_shape) != len(chunk_grid) or len(chunk_shape) > MAX_DIMS:
            raise ValueError(f"{layout.path}: chunk shape {chunk_shape} and grid {chunk_grid}")
        memset(&self.info, 0, sizeof(FileInfo))
        self.layout, self.tables, self.ndim = layout, tables, len(chunk_shape)
        info = &self.info
        info.fd = -1
        info.codec = int(layout.codec)
        info.typesize = layout.dtype.itemsize
        info.virtual_chunks = layout.contiguous
        info.chunk_offset = <const int64_t*>cnp.PyArray_DATA(tables[0])
        info.chunk_size = <const int64_t*>cnp.PyArray_DATA(tables[1])
        info.chunk_mask = <const int64_t*>cnp.PyArray_DATA(tables[2])
        info.chunk_crc = NULL if crc is None else <const int64_t*>cnp.PyArray_DATA(tables[3])
        info.n_chunks = tables[0].shape[0]
        info.file_size = layout.file_size
        info.chunk_nbytes = info.typesize
        expected_chunks = 1
        for a in range(self.ndim):
            if chunk_shape[a] < 1 or chunk_grid[a] < 1:
                raise ValueError(f"{layout.path}: empty chunk shape {chunk_shape} or grid {chunk_grid}")
            info.chunk_dims[a] = chunk_shape[a]
            info.grid_dims[a] = chunk_grid[a]
            info.chunk_nbytes *= chunk_shape[a]
            expected_chunks *= chunk_grid[a]
        if expected_chunks != info.n_chunks:
            raise ValueError(f"{layout.path}: {info.n_chunks} chunk entries for a grid {chunk_grid}")
        for a in range(self.ndim - 1, -1, -1):
            if a == self.ndim - 1:
                info.grid_stride[a] = 1
                info.chunk_stride[a] = info.typesize
            else:
                info.grid_stride[a] = info.grid_stride[a + 1] * chunk_grid[a + 1]
                info.chunk_stride[a] = info.chunk_stride[a + 1] * chunk_shape[a + 1]


cdef struct DecodeCall:  # the arguments of ReadContext._decode, for sd_call_guarded
    void* context
    FileInfo* info
    int64_t linear, offset, size, mask
    char* target


cdef class ReadContext:
    """One plan, one output, the files it touches: the state shared by the worker threads."""

    cdef FileInfo* files
    cdef Py_ssize_t n_files
    cdef int ndim
    cdef int64_t itemsize
    cdef char* out_data
    cdef int64_t out_stride[MAX_DIMS]
    cdef int64_t out_extent[MAX_DIMS]
    cdef const int64_t[::1] in_coords
    cdef const int64_t[::1] out_coords
    cdef const int64_t[::1] group_chunk
    # added to every task's chunk along each axis (``run_into``): one plan serves every plane
    # at the same place inside its chunk, each run told which chunk it reads
    cdef int64_t chunk_base[MAX_DIMS]
    cdef int64_t top_group_chunk[MAX_DIMS]  # the plan's largest chunk along each axis, or -1
    cdef const int64_t[::1] group_start
    cdef const int64_t[::1] group_count
    cdef const uint8_t[::1] group_contiguous
    cdef const int64_t[::1] task_file
    cdef const int64_t[:, ::1] task_groups
    cdef int64_t next_task
    cdef int _error_code
    cdef public int64_t error_task
    cdef public int64_t error_detail
    cdef public bint background  # yields to foreground reads between chunks
    cdef public bint decode_only  # benchmarks: read and decode every chunk, copy nothing
    cdef bint verify_checksums
    cdef object out_array  # kept alive: ``out_data`` points into it
    cdef object tables  # the files' chunk tables, which ``files`` points into
    cdef int out_axis[MAX_DIMS]
    cdef int n_out_axes
    cdef bint template  # made by ``as_template``: no output, never run
    cdef public bint read_ahead  # on a page-cache miss, advise the kernel of the chunks ahead
    cdef public bint read_ahead_thread  # ... from a thread of its own (else on the decoders)
    cdef public int64_t read_ahead_bytes  # how far the read-ahead thread keeps ahead
    cdef int _advisor_state  # 0: none, 1: running, 2: could not start (advise inline)
    cdef int _advisor_stop
    cdef bint _advisor_no_wait  # ``read_ahead_thread_from``: stop where the thread would wait
    cdef int64_t _advise_from  # the first task the read-ahead thread asks for
    cdef pthread_t _advisor
    cdef public bint profile  # count where the time goes (see ``timings``)
    cdef int _missed  # a chunk was not in the page cache: read ahead from now on
    cdef int64_t advised_until  # file slots below it have been advised (or passed)
    cdef int64_t ns_io, ns_copy, ns_chunks, ns_busy, ns_cpu
    cdef int64_t n_chunks, n_missed, n_threads

    def __cinit__(self):
        self.files = NULL

    def __init__(self, plan, cnp.ndarray out, files, bint verify_checksums=False):
        """``plan``: a ``ReadPlan``; ``out``: one axis per plan axis that has an output axis
        (``plan.out_axis``), any strides; ``files``: per plan file, an object with ``fd`` and
        ``layout`` (a ``FileLayout``), e.g. a ``file_cache.OpenBlockFile``.

        The plan is checked against the output and the files' chunk grids here, once: a
        malformed plan raises ``ValueError``, never writes out of bounds.
        """
        cdef int a, axis
        cdef FileInfo* info
        self.ndim = len(plan.out_axis)
        if self.ndim > MAX_DIMS:
            raise ValueError(f"at most {MAX_DIMS} dimensions are supported")
        if not out.flags.writeable:
            raise ValueError("output array is read-only")
        self.itemsize = out.dtype.itemsize
        self.out_data = <char*>cnp.PyArray_DATA(out)
        n_out_axes = 0
        for a in range(self.ndim):
            axis = plan.out_axis[a]
            self.out_axis[a] = axis
            if axis >= 0:
                if axis >= out.ndim:
                    raise ValueError(f"plan axis {a} maps to output axis {axis}, out is {out.ndim}-d")
                self.out_stride[a] = out.strides[axis]
                self.out_extent[a] = out.shape[axis]
                n_out_axes += 1
            else:  # an integer index: one position, no output axis
                self.out_stride[a] = 0
                self.out_extent[a] = 1
        if n_out_axes != out.ndim:
            raise ValueError(f"the plan has {n_out_axes} output axes, out has {out.ndim}")
        self.n_out_axes = n_out_axes
        self.in_coords = plan.in_coords
        self.out_coords = plan.out_coords
        self.group_chunk = plan.group_chunk
        self.group_start = plan.group_start
        self.group_count = plan.group_count
        self.group_contiguous = plan.group_contiguous
        self.task_file = plan.task_file
        self.task_groups = plan.task_groups
        self.n_files = len(files)
        self.files = <FileInfo*>calloc(max(self.n_files, 1), sizeof(FileInfo))
        if self.files == NULL:
            raise MemoryError()
        self.tables = [self._describe_file(&self.files[f], entry) for f, entry in enumerate(files)]
        self.out_array = out
        self._check_plan()
        self._reset(verify_checksums)

    cdef void _reset(self, bint verify_checksums) noexcept:
        memset(self.chunk_base, 0, sizeof(self.chunk_base))
        self.next_task = 0
        self._error_code = 0
        self.error_task = -1
        self.error_detail = 0
        self.background = False
        self.decode_only = False
        self.verify_checksums = verify_checksums
        self.read_ahead = True
        self.read_ahead_thread = True
        self.read_ahead_bytes = READ_AHEAD_THREAD_BYTES
        self.profile = False

    cdef ReadContext _copy(self):
        """Another context of the same plan and files (checked once, when this was made),
        without an output."""
        cdef ReadContext other = ReadContext.__new__(ReadContext)
        other.files = <FileInfo*>calloc(max(self.n_files, 1), sizeof(FileInfo))
        if other.files == NULL:
            raise MemoryError()
        memcpy(other.files, self.files, self.n_files * sizeof(FileInfo))
        other.n_files = self.n_files
        other.ndim, other.itemsize, other.n_out_axes = self.ndim, self.itemsize, self.n_out_axes
        memcpy(other.out_axis, self.out_axis, sizeof(self.out_axis))
        memcpy(other.out_extent, self.out_extent, sizeof(self.out_extent))
        memcpy(other.top_group_chunk, self.top_group_chunk, sizeof(self.top_group_chunk))
        other.in_coords, other.out_coords = self.in_coords, self.out_coords
        other.group_chunk, other.group_start = self.group_chunk, self.group_start
        other.group_count, other.group_contiguous = self.group_count, self.group_contiguous
        other.task_file, other.task_groups = self.task_file, self.task_groups
        other.tables = self.tables
        other._reset(self.verify_checksums)
        return other

    def as_template(self):
        """This plan on these files without the output: kept to make ``for_output`` contexts
        (a viewer reads the same plane of one block file after another: the plan and the
        files are checked once, not on every frame)."""
        cdef ReadContext template = self._copy()
        template.template = True
        return template

    def for_output(self, cnp.ndarray out):
        """A context of the template's plan and files that fills ``out`` (any strides), or
        None if ``out`` has not the shape and item size of the output the template was made
        for (then make a new ``ReadContext``)."""
        return self._for_output(out)

    def run_into(self, cnp.ndarray out, int threads, bint awake_only, bint background,
                 bint read_ahead, bint read_ahead_thread, chunk_base=None):
        """``for_output(out)``, these flags set, then ``run``: a kept frame's read in one call
        (after a viewer's idle pause every call from Python costs microseconds). Returns the
        context that ran (see its ``error_code``), or None as ``for_output`` does.

        ``chunk_base``: per axis, chunks to add to every task's (the plan made for a plane's
        place inside its chunk, run on the chunk the plane is in); checked against every
        file's chunk grid (``ValueError`` outside it)."""
        cdef ReadContext context = self._for_output(out)
        if context is None:
            return None
        context._set_chunk_base(chunk_base)
        context.background = background
        context.read_ahead = read_ahead
        context.read_ahead_thread = read_ahead_thread
        context._run_all(threads, awake_only)
        return context

    def rebound(self, files, cnp.ndarray out):
        """A context of the template's plan on other ``files`` that fills ``out``, as
        ``ReadContext(plan, out, files)`` would make, without checking the plan again: the
        check depends only on the files' chunk geometry, which must then be the template's
        (the next block of a recording: same chunk shape, grid and item size). None if a file
        has another geometry or ``out`` does not fit (then make a new ``ReadContext``)."""
        cdef FileInfo info
        cdef int f, a
        if len(files) != self.n_files:
            return None
        cdef ReadContext context = self._for_output(out)
        if context is None:
            return None
        tables = []
        for f, entry in enumerate(files):
            tables.append(context._describe_file(&info, entry))
            if info.typesize != self.files[f].typesize or info.n_chunks != self.files[f].n_chunks:
                return None
            for a in range(self.ndim):
                if (info.chunk_dims[a] != self.files[f].chunk_dims[a]
                        or info.grid_dims[a] != self.files[f].grid_dims[a]):
                    return None
            context.files[f] = info
        context.tables = tables
        return context

    cdef ReadContext _for_output(self, cnp.ndarray out):
        cdef int a, axis
        if not self.template:
            raise ValueError("for_output needs a template (as_template)")
        if not out.flags.writeable:
            raise ValueError("output array is read-only")
        if out.ndim != self.n_out_axes or out.dtype.itemsize != self.itemsize:
            return None
        for a in range(self.ndim):
            axis = self.out_axis[a]
            if axis >= 0 and out.shape[axis] != self.out_extent[a]:
                return None
        cdef ReadContext context = self._copy()
        for a in range(self.ndim):
            axis = self.out_axis[a]
            context.out_stride[a] = 0 if axis < 0 else out.strides[axis]
        context.out_data = <char*>cnp.PyArray_DATA(out)
        context.out_array = out
        return context

    cdef FileDescription _describe_file(self, FileInfo* info, entry):
        """Fill ``info`` for a plan file: the description the entry keeps (a block file's,
        made once), or a new one; checked against this plan's axes and item size."""
        cdef FileDescription description = getattr(entry, "description", None)
        if description is None:
            description = FileDescription(entry.layout)
        if description.ndim != self.ndim:
            raise ValueError(f"{description.layout.path}: chunks are {description.ndim}-d, "
                             f"the plan {self.ndim}-d")
        if description.info.typesize != self.itemsize:
            raise ValueError(f"{description.layout.path}: items of {description.info.typesize} "
                             f"bytes, out has {self.itemsize}")
        info[0] = description.info
        info.fd = entry.fd
        info.mapped = <const char*><uintptr_t>getattr(entry, "mapped_address", 0)
        return description

    cdef _check_plan(self):
        """Every index the workers will follow stays inside the plan's tables, the chunks and
        the output: checked here once, so the workers need no checks of their own."""
        cdef Py_ssize_t n_groups = self.group_chunk.shape[0], pool = self.in_coords.shape[0]
        cdef Py_ssize_t n_tasks = self.task_file.shape[0], g, i, t, a
        cdef int64_t start, count, f, lowest_in, highest_in, lowest_out, highest_out
        if self.out_coords.shape[0] != pool:
            raise ValueError("plan: in_coords and out_coords differ in length")
        if (self.group_start.shape[0] != n_groups or self.group_count.shape[0] != n_groups
                or self.group_contiguous.shape[0] != n_groups):
            raise ValueError("plan: group tables differ in length")
        if self.task_groups.shape[0] != n_tasks or (n_tasks and self.task_groups.shape[1] != self.ndim):
            raise ValueError("plan: task tables do not match")
        # per group: its coordinates' range inside the chunk and in the output
        in_range = np.empty((max(n_groups, 1), 2), dtype=np.int64)
        out_range = np.empty((max(n_groups, 1), 2), dtype=np.int64)
        cdef int64_t[:, ::1] in_bounds = in_range
        cdef int64_t[:, ::1] out_bounds = out_range
        for g in range(n_groups):
            start, count = self.group_start[g], self.group_count[g]
            if start < 0 or count < 1 or start + count > pool or self.group_chunk[g] < 0:
                raise ValueError(f"plan: group {g} is outside the coordinate tables")
            lowest_in = highest_in = self.in_coords[start]
            lowest_out = highest_out = self.out_coords[start]
            for i in range(start + 1, start + count):
                lowest_in = min(lowest_in, self.in_coords[i])
                highest_in = max(highest_in, self.in_coords[i])
                lowest_out = min(lowest_out, self.out_coords[i])
                highest_out = max(highest_out, self.out_coords[i])
                if self.group_contiguous[g] and (self.in_coords[i] != self.in_coords[i - 1] + 1
                                                 or self.out_coords[i] != self.out_coords[i - 1] + 1):
                    raise ValueError(f"plan: group {g} is marked contiguous but is not")
            in_bounds[g, 0], in_bounds[g, 1] = lowest_in, highest_in
            out_bounds[g, 0], out_bounds[g, 1] = lowest_out, highest_out
        for a in range(self.ndim):
            self.top_group_chunk[a] = -1
        for t in range(n_tasks):
            f = self.task_file[t]
            if f < 0 or f >= self.n_files:
                raise ValueError(f"plan: task {t} names file {f} of {self.n_files}")
            for a in range(self.ndim):
                g = self.task_groups[t, a]
                if g < 0 or g >= n_groups:
                    raise ValueError(f"plan: task {t} names group {g} of {n_groups}")
                self.top_group_chunk[a] = max(self.top_group_chunk[a], self.group_chunk[g])
                if (self.group_chunk[g] >= self.files[f].grid_dims[a]
                        or in_bounds[g, 0] < 0 or in_bounds[g, 1] >= self.files[f].chunk_dims[a]):
                    raise ValueError(f"plan: task {t} reaches outside the chunks along axis {a}")
                if out_bounds[g, 0] < 0 or out_bounds[g, 1] >= self.out_extent[a]:
                    raise ValueError(f"plan: task {t} writes outside the output along axis {a}")

    def __dealloc__(self):
        free(self.files)

    @property
    def error_code(self):
        return self._error_code

    def chunk_index(self, int64_t task):
        """Linear chunk index of a task inside its file (for error messages and fallbacks)."""
        return self._chunk_linear(task, &self.files[self.task_file[task]])

    cdef int _set_chunk_base(self, object chunk_base) except -1:
        """Run on the chunks ``chunk_base`` further along each axis (None: 0). Every task's
        chunk must stay inside every file's chunk grid: checked here, for the workers."""
        cdef int a
        cdef Py_ssize_t f
        cdef int64_t step, grid
        if chunk_base is None:  # a context starts at 0 (``_reset``)
            return 0
        if len(chunk_base) != self.ndim:
            raise ValueError(f"chunk_base has {len(chunk_base)} axes, the plan {self.ndim}")
        for a in range(self.ndim):
            step = chunk_base[a]
            if step < 0:
                raise ValueError(f"chunk_base {tuple(chunk_base)} is negative along axis {a}")
            for f in range(self.n_files):
                grid = self.files[f].grid_dims[a]
                if self.top_group_chunk[a] >= 0 and self.top_group_chunk[a] + step >= grid:
                    raise ValueError(f"chunk_base {tuple(chunk_base)} reaches past the {grid} "
                                     f"chunks of file {f} along axis {a}")
            self.chunk_base[a] = step
        return 0

    cdef ReadContext _shifted(self, object chunk_base):
        """A copy of this context run on ``chunk_base`` (``run_into``'s), for the questions
        asked before such a run."""
        cdef ReadContext shifted = self._copy()
        shifted._set_chunk_base(chunk_base)
        return shifted

    def files_to_index(self, chunk_base=None):
        """The file slots with a chunk the plan reads (with ``chunk_base`` as ``run_into``
        takes it) that a lazy index has not looked up yet: one pass over the tasks, so a
        read of files indexed already asks no file for its chunks."""
        if chunk_base is not None:
            return self._shifted(chunk_base).files_to_index()
        cdef Py_ssize_t t, n_tasks = self.task_file.shape[0]
        cdef int64_t slot, linear
        cdef FileInfo* info
        slots = []
        cdef int64_t last_added = -1
        for t in range(n_tasks):
            slot = self.task_file[t]
            if slot == last_added:
                continue
            info = &self.files[slot]
            linear = self._chunk_linear(t, info)
            # a chunk outside the grid is the run's to report (CHUNK_OUTSIDE_GRID)
            if 0 <= linear < info.n_chunks and info.chunk_offset[linear] < OFFSET_UNWRITTEN:
                if slot not in slots:
                    slots.append(slot)
                last_added = slot
        return slots

    def chunks_of_file(self, int64_t slot, chunk_base=None):
        """Linear indices of the chunks the plan decodes from file ``slot`` (with
        ``chunk_base`` as ``run_into`` takes it): exactly the ones the workers will look up
        (the lazy chunk index fills these in before ``run``)."""
        if chunk_base is not None:
            return self._shifted(chunk_base).chunks_of_file(slot)
        cdef Py_ssize_t t, n = 0, n_tasks = self.task_file.shape[0]
        for t in range(n_tasks):
            n += self.task_file[t] == slot
        chunks = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] found = chunks
        n = 0
        for t in range(n_tasks):
            if self.task_file[t] == slot:
                found[n] = self._chunk_linear(t, &self.files[slot])
                n += 1
        return chunks

    def run(self, int threads=1, bint awake_only=False):
        """Process every task on the calling thread and up to ``threads - 1`` pool workers
        (with ``awake_only``, only workers that are awake right now: for small plans).

        Returns when all tasks are done or one failed (see ``error_code``).
        """
        self._run_all(threads, awake_only)

    cdef int _run_all(self, int threads, bint awake_only) except -1:
        if self.template:
            raise ValueError("a template has no output: run a context from for_output")
        if self.read_ahead:
            self._index_files()
        self._advisor_state = 0
        self._advisor_stop = 0
        if not self.background:
            sd_foreground_enter()
        try:
            with nogil:
                sd_pool_run(_run_job, <void*>self, threads - 1, awake_only)
        finally:
            with nogil:
                self._stop_advisor()  # before the files it advises may close
            if not self.background:
                sd_foreground_leave()
        return 0

    cdef void _index_files(self) noexcept:
        """Per file, the run of tasks that reads it and the stored bytes they read: what
        ``_read_ahead`` advises. Called before the workers start (the chunk index is complete)."""
        cdef Py_ssize_t t, n_tasks = self.task_file.shape[0]
        cdef int64_t f, linear, seen
        cdef FileInfo* info
        for f in range(self.n_files):
            self.files[f].first_task = -1
            self.files[f].n_tasks = 0
            self.files[f].planned_bytes = 0
        for t in range(n_tasks):
            info = &self.files[self.task_file[t]]
            if info.first_task < 0:
                info.first_task = t
            info.n_tasks += 1
            linear = self._chunk_linear(t, info)
            if 0 <= linear < info.n_chunks and info.chunk_offset[linear] >= 0:
                info.planned_bytes += info.chunk_size[linear]
        for f in range(self.n_files):  # a file whose tasks are not one run is not read ahead
            info = &self.files[f]
            seen = 0
            for t in range(info.first_task, info.first_task + info.n_tasks):
                if t < 0 or t >= n_tasks or self.task_file[t] != f:
                    break
                seen += 1
            if seen != info.n_tasks:
                info.n_tasks = 0

    def read_ahead_from(self, int64_t slot):
        """Ask the kernel for the planned chunks ahead as a page-cache miss in file ``slot``
        would on the decoding threads (``read_ahead_thread`` off, or no thread to be had),
        without reading (the tests check what this asks for)."""
        if slot < 0 or slot >= self.n_files:
            raise IndexError(f"file slot {slot} of {self.n_files}")
        self._index_files()
        with nogil:
            self._read_ahead(slot)

    def read_ahead_thread_from(self, int64_t task, int64_t tasks_done):
        """What the read-ahead thread asks for when a miss comes at ``task`` and the decoders
        have taken ``tasks_done`` tasks (and take no more): run here, to its end, without
        reading (the tests check what it asks for)."""
        if not 0 <= task <= self.task_file.shape[0]:
            raise IndexError(f"task {task} of {self.task_file.shape[0]}")
        self._advise_from = task
        self.next_task = tasks_done
        self._advisor_stop = 0
        self._advisor_no_wait = True
        try:
            with nogil:
                self._advise_ahead()
        finally:
            self._advisor_no_wait = False
            self.next_task = 0

    def timings(self):
        """Where the time of the last ``run`` went, summed over the threads that ran it (only
        with ``profile`` set): nanoseconds waiting on pread (``io``), copying selected elements
        into the output (``copy``), handling chunks in all (``chunks``: io + decode + copy),
        inside the run loop (``busy``) and on the CPU (``cpu``); chunks handled, chunks found
        missing from the page cache (probing stops at the first: then the reader reads ahead),
        threads that joined."""
        return dict(io_ns=self.ns_io, copy_ns=self.ns_copy, chunks_ns=self.ns_chunks,
                    busy_ns=self.ns_busy, cpu_ns=self.ns_cpu, chunks=self.n_chunks,
                    missed=self.n_missed, threads=self.n_threads)

    def scatter_decoded(self, int64_t task, const uint8_t[::1] decoded):
        """Copy a chunk that was decoded elsewhere (h5py fallback) into the output."""
        if self.template:
            raise ValueError("a template has no output: run a context from for_output")
        if task < 0 or task >= self.task_file.shape[0]:
            raise IndexError(f"task {task} of {self.task_file.shape[0]}")
        cdef FileInfo* info = &self.files[self.task_file[task]]
        if decoded.shape[0] < info.chunk_nbytes:
            raise ValueError("decoded chunk buffer is too small")
        with nogil:
            self._scatter(task, info, <const char*>&decoded[0])

    cdef void _run(self) noexcept nogil:
        cdef int64_t task, n_tasks = self.task_file.shape[0], slot, previous_slot = -1
        cdef int64_t started = 0, cpu_started = 0, chunk_started = 0
        cdef int code
        cdef FileInfo* info
        if self.profile:
            started, cpu_started = sd_now_ns(), sd_thread_cpu_ns()
        while sd_load_error(&self._error_code) == 0:
            task = sd_next_task(&self.next_task)
            if task >= n_tasks:
                break
            slot = self.task_file[task]
            info = &self.files[slot]
            if info.codec == H5PY:
                continue
            if self.background:
                sd_yield_to_foreground()
            if (slot != previous_slot and sd_get_flag(&self._missed)
                    and sd_atomic_load_int(&self._advisor_state) != 1):
                self._read_ahead(slot)  # a new file: keep the disk ahead of the decoders
            previous_slot = slot
            if self.profile:
                chunk_started = sd_now_ns()
            code = self._process(task, info)
            if self.profile:
                sd_atomic_add(&self.ns_chunks, sd_now_ns() - chunk_started)
                sd_atomic_add(&self.n_chunks, 1)
            if code != 0 and sd_first_error(&self._error_code, code):
                self.error_task = task
        if self.profile:
            sd_atomic_add(&self.ns_busy, sd_now_ns() - started)
            sd_atomic_add(&self.ns_cpu, sd_thread_cpu_ns() - cpu_started)
            sd_atomic_add(&self.n_threads, 1)

    cdef int _pread(self, FileInfo* info, char* buffer, int64_t size, int64_t offset) noexcept nogil:
        """pread from the page cache if the bytes are there; if not, first ask the kernel for
        the chunks ahead (``_read_ahead``), then wait for these."""
        cdef int miss = 0, status = 0
        cdef int64_t got = 0, started = 0
        if self.profile:
            started = sd_now_ns()
        # Once a miss was seen, the files ahead are advised as the workers reach them and the
        # probe has nothing left to tell: plain preads then (a failed probe is one more syscall
        # and upsets the kernel's own read-ahead of a sequential read: measured, cold volume
        # reads 1.3-1.5x slower with a probe before every chunk)
        if self.read_ahead and not sd_get_flag(&self._missed):
            got = sd_pread_cached(info.fd, buffer, size, offset, &miss)
            if miss:
                sd_atomic_add(&self.n_missed, 1)
                sd_set_flag(&self._missed)
                self._on_first_miss(<int64_t>(info - self.files))
        if got < size:
            status = sd_pread_all(info.fd, buffer + got, size - got, offset + got)
        if self.profile:
            sd_atomic_add(&self.ns_io, sd_now_ns() - started)
        return status

    cdef void _on_first_miss(self, int64_t slot) noexcept nogil:
        """A chunk was not in the page cache: from now on, keep the disk ahead of the
        decoders. From a thread of its own where one can be started: advice from the decoding
        threads kept the disk less busy (cold full reads 1.1-1.2x faster with the thread,
        interleaved A/B; posix_fadvise waiting on a full device queue is the likely reason,
        not traced)."""
        if self.read_ahead_thread and sd_claim_int(&self._advisor_state, 0, 1):
            self._advise_from = sd_atomic_load(&self.next_task) - 1
            if self._advise_from < 0:
                self._advise_from = 0
            if sd_start_thread(&self._advisor, _advisor_main, <void*>self) == 0:
                return
            sd_store_int(&self._advisor_state, 2)
        if sd_atomic_load_int(&self._advisor_state) != 1:
            self._read_ahead(slot)

    cdef void _stop_advisor(self) noexcept nogil:
        if sd_atomic_load_int(&self._advisor_state) == 1:
            sd_set_flag(&self._advisor_stop)
            pthread_join(self._advisor, NULL)
            sd_store_int(&self._advisor_state, 0)

    cdef void _advise_ahead(self) noexcept nogil:
        """The read-ahead thread: ask the kernel for the stored bytes of the plan's chunks in
        task order, from ``_advise_from``, keeping up to ``read_ahead_bytes`` ahead of the
        chunks the decoders have taken. Nearby chunks of a file go in one request (gaps under
        READ_AHEAD_GAP are read along), of at most READ_AHEAD_PIECE."""
        cdef int64_t n_tasks = self.task_file.shape[0], first = self._advise_from, t, done
        cdef int64_t linear, offset, size, slot, run_slot = -1, run_start = 0, run_end = 0
        cdef int64_t* before = NULL  # stored bytes of the tasks from ``first`` to each task
        cdef FileInfo* info
        if first >= n_tasks:
            return
        before = <int64_t*>calloc(n_tasks - first + 1, sizeof(int64_t))
        if before == NULL:
            return
        for t in range(first, n_tasks):
            info = &self.files[self.task_file[t]]
            linear = self._chunk_linear(t, info)
            size = 0
            if info.codec != H5PY and 0 <= linear < info.n_chunks and info.chunk_offset[linear] >= 0:
                size = info.chunk_size[linear]
            before[t - first + 1] = before[t - first] + size
        t = first
        while t < n_tasks and not sd_get_flag(&self._advisor_stop):
            done = sd_atomic_load(&self.next_task)
            done = first if done < first else (n_tasks if done > n_tasks else done)
            if before[t - first] - before[done - first] >= self.read_ahead_bytes:
                if run_slot >= 0:  # what is gathered goes out before the wait
                    sd_advise_willneed(self.files[run_slot].fd, run_start, run_end - run_start)
                    run_slot = -1
                if self._advisor_no_wait:
                    break
                sd_sleep_ns(READ_AHEAD_POLL_NS)
                continue
            slot = self.task_file[t]
            t += 1
            if before[t - first] == before[t - 1 - first]:
                continue  # nothing stored to ask for
            info = &self.files[slot]
            linear = self._chunk_linear(t - 1, info)
            offset, size = info.chunk_offset[linear], info.chunk_size[linear]
            if (run_slot == slot and run_start <= offset <= run_end + READ_AHEAD_GAP
                    and offset + size - run_start <= READ_AHEAD_PIECE):
                if offset + size > run_end:
                    run_end = offset + size
                continue
            if run_slot >= 0:
                sd_advise_willneed(self.files[run_slot].fd, run_start, run_end - run_start)
            run_slot, run_start, run_end = slot, offset, offset + size
        if run_slot >= 0 and not sd_get_flag(&self._advisor_stop):
            sd_advise_willneed(self.files[run_slot].fd, run_start, run_end - run_start)
        free(before)

    cdef void _read_ahead(self, int64_t slot) noexcept nogil:
        """Advise the kernel of the planned chunks of files ``slot``, ``slot + 1``, ... until
        READ_AHEAD_BYTES are ahead; each file is advised once, by whichever thread claims it."""
        cdef int64_t advised = sd_atomic_load(&self.advised_until), claimed, ahead = 0, end, f
        claimed = advised if advised > slot else slot  # files behind are being read already
        for f in range(slot, claimed):
            ahead += self.files[f].planned_bytes
        end = claimed
        while end < self.n_files and (end <= slot + 1 or ahead < READ_AHEAD_BYTES):
            ahead += self.files[end].planned_bytes
            end += 1
        if end <= claimed:
            return
        if not sd_claim_range(&self.advised_until, advised, end):
            return  # another thread is advising them
        for f in range(claimed, end):
            # the file being read now, or a long one: the kernel's own read-ahead follows a
            # sequential read of one run of chunks; advise only scattered chunks there
            self._advise_file(&self.files[f], f == slot or self._long_run(&self.files[f]))

    cdef bint _long_run(self, FileInfo* info) noexcept nogil:
        return info.planned_bytes > (READ_AHEAD_LONG_RUN_RAW if info.codec == RAW
                                     else READ_AHEAD_LONG_RUN)

    cdef void _advise_file(self, FileInfo* info, bint scattered_only) noexcept nogil:
        """posix_fadvise(WILLNEED) the stored bytes of the file's planned chunks, nearby
        chunks merged into one request (with ``scattered_only``, nothing if that makes one)."""
        if scattered_only and self._advise_runs(info, False) <= 1:
            return
        self._advise_runs(info, True)

    cdef int64_t _advise_runs(self, FileInfo* info, bint advise) noexcept nogil:
        """The runs of nearby planned chunks of a file: counted, and advised if asked."""
        cdef int64_t t, linear, offset, size, run_start = -1, run_end = -1, runs = 0
        for t in range(info.first_task, info.first_task + info.n_tasks):
            linear = self._chunk_linear(t, info)
            if linear < 0 or linear >= info.n_chunks or info.chunk_offset[linear] < 0:
                continue
            offset, size = info.chunk_offset[linear], info.chunk_size[linear]
            if run_start >= 0 and run_start <= offset <= run_end + READ_AHEAD_GAP:
                if offset + size > run_end:
                    run_end = offset + size
                continue
            if run_start >= 0 and advise:
                sd_advise_willneed(info.fd, run_start, run_end - run_start)
            run_start, run_end = offset, offset + size
            runs += 1
        if run_start >= 0 and advise:
            sd_advise_willneed(info.fd, run_start, run_end - run_start)
        return runs

    cdef int64_t _chunk_linear(self, int64_t task, FileInfo* info) noexcept nogil:
        cdef int64_t linear = 0
        cdef int a
        for a in range(self.ndim):
            linear += ((self.group_chunk[self.task_groups[task, a]] + self.chunk_base[a])
                       * info.grid_stride[a])
        return linear

    cdef char* _direct_target(self, int64_t task, FileInfo* info) noexcept nogil:
        """Where the chunk starts in the output if it is wholly selected and lands as one
        contiguous run there (then it is decoded straight into the output), else NULL."""
        cdef int a
        cdef int64_t g, offset = 0
        for a in range(self.ndim):
            g = self.task_groups[task, a]
            if self.group_count[g] != info.chunk_dims[a] or not self.group_contiguous[g]:
                return NULL
            if self.in_coords[self.group_start[g]] != 0:
                return NULL
            if info.chunk_dims[a] > 1 and self.out_stride[a] != info.chunk_stride[a]:
                return NULL
            offset += self.out_coords[self.group_start[g]] * self.out_stride[a]
        return self.out_data + offset

    cdef int _check_crc(self, FileInfo* info, int64_t linear, const char* stored,
                        int64_t size) noexcept nogil:
        cdef int64_t expected
        if not self.verify_checksums or info.chunk_crc == NULL:
            return 0
        expected = info.chunk_crc[linear]
        if expected < 0:
            return 0
        if zng_crc32_z(0, <const uint8_t*>stored, <size_t>size) != <uint32_t>expected:
            self.error_detail = expected
            return CHECKSUM_MISMATCH
        return 0

    cdef int _read_stored(self, FileInfo* info, int64_t linear, int64_t offset, int64_t size,
                          char* target) noexcept nogil:
        """pread a chunk's stored bytes whole into ``target``, checksum checked if asked."""
        cdef int status = self._pread(info, target, size, offset)
        if status < 0:
            self.error_detail = -status
            return READ_FAILED
        if status == 1:
            return TRUNCATED
        return self._check_crc(info, linear, target, size)

    cdef int _inflate(self, const char* source, int64_t size, char* target,
                      int64_t expected) noexcept nogil:
        cdef size_t produced = <size_t>expected
        cdef int32_t status = zng_uncompress(<uint8_t*>target, &produced,
                                             <const uint8_t*>source, <size_t>size)
        if status != 0:
            self.error_detail = status
            return DEFLATE_FAILED
        if <int64_t>produced != expected:
            self.error_detail = <int64_t>produced
            return WRONG_DECODED_SIZE
        return 0

    cdef int _unblosc(self, FileInfo* info, const char* compressed, int64_t size,
                      char* target) noexcept nogil:
        cdef int64_t expected = info.chunk_nbytes
        cdef int check, status
        if size < BLOSC_HEADER_BYTES:
            self.error_detail = size
            return BAD_BLOSC_HEADER
        if size > INT32_LIMIT or expected > INT32_LIMIT:  # blosc sizes are 32-bit
            self.error_detail = size
            return WRONG_STORED_SIZE
        check = _check_blosc1_header(<const uint8_t*>compressed, size, expected, info.typesize)
        if check != 0:
            self.error_detail = check
            return BAD_BLOSC_HEADER
        status = sd_blosc_decode(compressed, <int32_t>size, target, <int32_t>expected)
        if status == INT32_MIN:
            return OUT_OF_MEMORY
        if status != expected:
            self.error_detail = status
            return BLOSC_FAILED if status < 0 else WRONG_DECODED_SIZE
        return 0

    cdef int _decode(self, FileInfo* info, int64_t linear, int64_t offset, int64_t size,
                     int64_t mask, char* target) noexcept nogil:
        """Decode one stored chunk into ``target`` (chunk_nbytes bytes)."""
        cdef int64_t expected = info.chunk_nbytes
        cdef char* compressed = NULL
        cdef char* staging
        cdef int status
        cdef bint shuffled, deflated
        cdef bint stored_raw = info.codec == RAW or (info.codec in (BLOSC, DEFLATE) and mask & 1)
        if info.codec == SHUFFLE or info.codec == SHUFFLE_DEFLATE:
            shuffled = not (mask & 1)  # HDF5 shuffle is filter 0, deflate filter 1
            deflated = info.codec == SHUFFLE_DEFLATE and not (mask & 2)
            stored_raw = not shuffled and not deflated
        else:
            shuffled = False
            deflated = info.codec == DEFLATE
        if stored_raw or (shuffled and not deflated):
            if size != expected and not (info.virtual_chunks and size <= expected):
                self.error_detail = size
                return WRONG_STORED_SIZE
        if stored_raw:
            return self._read_stored(info, linear, offset, size, target)
        if info.codec == BLOSC or deflated:
            if self._in_mapping(info, offset, size):
                compressed = <char*>info.mapped + offset  # only read: decoded from in place
                status = self._check_crc(info, linear, compressed, size)
            else:
                compressed = sd_scratch(0, size)
                if compressed == NULL:
                    return OUT_OF_MEMORY
                status = self._read_stored(info, linear, offset, size, compressed)
            if status != 0:
                return status
            if info.codec == BLOSC:
                return self._unblosc(info, compressed, size, target)
        staging = sd_scratch(2, expected) if shuffled else target
        if staging == NULL:
            return OUT_OF_MEMORY
        if deflated:
            status = self._inflate(compressed, size, staging, expected)
        else:
            status = self._read_stored(info, linear, offset, size, staging)
        if status == 0 and shuffled:
            blosc2_unshuffle(info.typesize, <int32_t>expected, staging, target)
        return status

    cdef bint _in_mapping(self, FileInfo* info, int64_t offset, int64_t size) noexcept nogil:
        """Whether to decode the chunk from the file's mapping: mapped, and (while the page
        cache is probed, i.e. with read-ahead on) its pages are in memory. A chunk that is
        not is read with pread, which waits on the disk once rather than once per page fault;
        the first such miss of a read starts read-ahead, as a pread probe's would. A mincore
        probe costs no I/O, so unlike the pread probe it goes on after a miss: a recording
        the kernel evicted a few pages of still decodes the rest in place."""
        cdef int64_t started = 0
        cdef bint resident
        if info.mapped == NULL:
            return False
        if not self.read_ahead:
            return True
        if self.profile:
            started = sd_now_ns()
        resident = sd_mapped_resident(info.mapped + offset, size)
        if not resident and not sd_get_flag(&self._missed):
            sd_atomic_add(&self.n_missed, 1)
            sd_set_flag(&self._missed)
            self._on_first_miss(<int64_t>(info - self.files))
        if self.profile:
            sd_atomic_add(&self.ns_io, sd_now_ns() - started)
        return resident

    cdef int _decode_any(self, FileInfo* info, int64_t linear, int64_t offset, int64_t size,
                         int64_t mask, char* target) noexcept nogil:
        """``_decode``, guarded against the file shrinking under its mapping meanwhile."""
        cdef DecodeCall call
        cdef int status
        if info.mapped == NULL:
            return self._decode(info, linear, offset, size, mask, target)
        call.context = <void*>self
        call.info, call.linear, call.offset, call.size = info, linear, offset, size
        call.mask, call.target = mask, target
        status = sd_call_guarded(_decode_call, &call)
        if status == SD_MAPPING_FAULTED:
            self.error_detail = offset
            return FILE_SHRANK
        return status

    cdef int _process(self, int64_t task, FileInfo* info) noexcept nogil:
        cdef int64_t linear = self._chunk_linear(task, info)
        cdef int64_t offset, size
        cdef char* target
        cdef char* decoded
        cdef int status
        if linear < 0 or linear >= info.n_chunks:
            self.error_detail = linear
            return CHUNK_OUTSIDE_GRID
        offset = info.chunk_offset[linear]
        size = info.chunk_size[linear]
        if offset < OFFSET_UNWRITTEN:  # e.g. a lazy index entry nobody looked up: never zeros
            self.error_detail = offset
            return CHUNK_NOT_INDEXED
        if offset >= 0:
            if size < 0 or offset + size > info.file_size:
                self.error_detail = offset + size
                return CHUNK_OUTSIDE_FILE
            if size > _max_stored_bytes(info.chunk_nbytes):
                self.error_detail = size
                return WRONG_STORED_SIZE
        target = NULL if self.decode_only else self._direct_target(task, info)
        if offset == OFFSET_UNWRITTEN and info.chunk_crc != NULL and info.chunk_crc[linear] >= 0:
            self.error_detail = linear  # our writers write every chunk: the index lost it
            return CHUNK_MISSING
        if offset == OFFSET_UNWRITTEN:  # HDF5's fill value, zero here (others use h5py)
            if target != NULL:
                memset(target, 0, info.chunk_nbytes)
                return 0
            decoded = sd_scratch(1, info.chunk_nbytes)
            if decoded == NULL:
                return OUT_OF_MEMORY
            memset(decoded, 0, info.chunk_nbytes)
            self._copy_out(task, info, decoded)
            return 0
        if target != NULL:
            return self._decode_any(info, linear, offset, size, info.chunk_mask[linear], target)
        decoded = sd_scratch(1, info.chunk_nbytes)
        if decoded == NULL:
            return OUT_OF_MEMORY
        if info.codec == RAW and not self.decode_only and not self.verify_checksums:
            status = self._read_selected_span(task, info, offset, size, decoded)
        else:
            status = self._decode_any(info, linear, offset, size, info.chunk_mask[linear],
                                      decoded)
        if status == 0 and not self.decode_only:
            self._copy_out(task, info, decoded)
        return status

    cdef int _read_selected_span(self, int64_t task, FileInfo* info, int64_t offset,
                                 int64_t size, char* chunk) noexcept nogil:
        """Uncompressed chunk: pread only the bytes from its first to its last selected element
        into their places in ``chunk`` (a small region of a big contiguous dataset reads only
        its rows, not whole 256 KiB virtual chunks). The rest of ``chunk`` is never looked at."""
        cdef int64_t first = 0, last = 0, g
        cdef int a, status
        if size != info.chunk_nbytes and not (info.virtual_chunks and size <= info.chunk_nbytes):
            self.error_detail = size
            return WRONG_STORED_SIZE
        for a in range(self.ndim):  # coordinates within a group are sorted
            g = self.task_groups[task, a]
            first += self.in_coords[self.group_start[g]] * info.chunk_stride[a]
            last += self.in_coords[self.group_start[g] + self.group_count[g] - 1] * info.chunk_stride[a]
        last += self.itemsize
        if last > size:
            self.error_detail = size
            return WRONG_STORED_SIZE
        status = self._pread(info, chunk + first, last - first, offset + first)
        if status < 0:
            self.error_detail = -status
            return READ_FAILED
        return TRUNCATED if status == 1 else 0

    cdef void _copy_out(self, int64_t task, FileInfo* info, const char* chunk) noexcept nogil:
        cdef int64_t started = 0
        if self.profile:
            started = sd_now_ns()
        self._scatter(task, info, chunk)
        if self.profile:
            sd_atomic_add(&self.ns_copy, sd_now_ns() - started)

    cdef void _scatter(self, int64_t task, FileInfo* info, const char* chunk) noexcept nogil:
        """Copy the task's selected elements from a decoded chunk to the output."""
        cdef int ndim = self.ndim, last = ndim - 1, a
        cdef int64_t position[MAX_DIMS]
        cdef int64_t group[MAX_DIMS]
        cdef int64_t i, count, start, itemsize = self.itemsize
        cdef int64_t in_stride, out_stride
        cdef const char* source
        cdef char* target
        cdef const int64_t* in_coords
        cdef const int64_t* out_coords
        cdef bint run
        for a in range(ndim):
            group[a] = self.task_groups[task, a]
            position[a] = 0
        start = self.group_start[group[last]]
        count = self.group_count[group[last]]
        in_coords = &self.in_coords[start]
        out_coords = &self.out_coords[start]
        in_stride = info.chunk_stride[last]
        out_stride = self.out_stride[last]
        run = self.group_contiguous[group[last]] and out_stride == itemsize
        while True:
            source = chunk
            target = self.out_data
            for a in range(last):
                source += self.in_coords[self.group_start[group[a]] + position[a]] * info.chunk_stride[a]
                target += self.out_coords[self.group_start[group[a]] + position[a]] * self.out_stride[a]
            if run:
                memcpy(target + out_coords[0] * out_stride, source + in_coords[0] * in_stride,
                       count * itemsize)
            elif itemsize == 2:
                for i in range(count):
                    (<uint16_t*>(target + out_coords[i] * out_stride))[0] = \
                        (<const uint16_t*>(source + in_coords[i] * in_stride))[0]
            elif itemsize == 4:
                for i in range(count):
                    (<uint32_t*>(target + out_coords[i] * out_stride))[0] = \
                        (<const uint32_t*>(source + in_coords[i] * in_stride))[0]
            elif itemsize == 8:
                for i in range(count):
                    (<uint64_t*>(target + out_coords[i] * out_stride))[0] = \
                        (<const uint64_t*>(source + in_coords[i] * in_stride))[0]
            else:
                for i in range(count):
                    memcpy(target + out_coords[i] * out_stride,
                           source + in_coords[i] * in_stride, itemsize)
            # odometer over the outer axes
            a = last - 1
            while a >= 0:
                position[a] += 1
                if position[a] < self.group_count[group[a]]:
                    break
                position[a] = 0
                a -= 1
            if a < 0:
                return


cdef void _run_job(void* context) noexcept nogil:
    (<ReadContext>context)._run()


cdef void* _advisor_main(void* context) noexcept nogil:
    (<ReadContext>context)._advise_ahead()
    return NULL


cdef int _decode_call(void* argument) noexcept nogil:
    cdef DecodeCall* call = <DecodeCall*>argument
    return (<ReadContext>call.context)._decode(call.info, call.linear, call.offset, call.size,
                                               call.mask, call.target)

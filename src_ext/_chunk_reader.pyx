# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Execute a read plan: pread each chunk, decode it, copy the selected part into the output.

Runs with the GIL released, on the calling thread and on workers of a persistent native
pool (``worker_pool.h``), all on the same context: tasks are handed out through an atomic
counter and every task writes a region of the output that no other task writes (each output element belongs to exactly one
chunk of one file), so no locks are needed. Scratch buffers and the blosc decompression
context are thread-local.

Decoders: blosc (HDF5 filter 32001, Blosc1 chunks, all codecs and shuffles) through c-blosc2;
deflate through zlib-ng (bundled in the same static library); HDF5's byte shuffle through
c-blosc2's SIMD unshuffle. Every size is checked against the file layout before a byte is
written, so corrupt input yields an error code, never an out-of-bounds access.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free, calloc

cnp.import_array()

cdef extern from "blosc2.h" nogil:
    ctypedef struct blosc2_context:
        pass
    void blosc2_init()
    int blosc2_cbuffer_sizes(const void* cbuffer, int32_t* nbytes, int32_t* cbytes,
                             int32_t* blocksize)
    int blosc2_decompress_ctx(blosc2_context* context, const void* src, int32_t srcsize,
                              void* dest, int32_t destsize)
    int32_t blosc2_unshuffle(int32_t typesize, int32_t blocksize, const void* src, void* dest)

cdef extern from *:
    """
    #include <errno.h>
    #include <stdint.h>
    #include <stdlib.h>
    #include <unistd.h>
    #include "blosc2.h"

    /* zlib-ng's native API, linked from libblosc2.a, which bundles zlib-ng. */
    int32_t zng_uncompress(uint8_t *dest, size_t *destLen, const uint8_t *source,
                           size_t sourceLen);

    typedef struct { char *data; size_t capacity; } sd_buffer;
    static __thread sd_buffer sd_tls_buffers[3];
    static __thread blosc2_context *sd_tls_dctx = NULL;

    /* A per-thread buffer of at least `size` bytes (0: compressed, 1: decoded, 2: staging). */
    static char *sd_scratch(int which, size_t size) {
        sd_buffer *buffer = &sd_tls_buffers[which];
        if (buffer->capacity < size) {
            char *grown = (char *)realloc(buffer->data, size);
            if (grown == NULL) return NULL;
            buffer->data = grown;
            buffer->capacity = size;
        }
        return buffer->data;
    }

    static blosc2_context *sd_dctx(void) {
        if (sd_tls_dctx == NULL) {
            blosc2_dparams params = BLOSC2_DPARAMS_DEFAULTS;
            params.nthreads = 1;
            sd_tls_dctx = blosc2_create_dctx(params);
        }
        return sd_tls_dctx;
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
       chunks while it is non-zero, so a viewer's read never queues behind read-ahead. */
    static int sd_foreground_reads = 0;

    static void sd_foreground_enter(void) { __atomic_add_fetch(&sd_foreground_reads, 1, __ATOMIC_SEQ_CST); }
    static void sd_foreground_leave(void) { __atomic_sub_fetch(&sd_foreground_reads, 1, __ATOMIC_SEQ_CST); }
    static void sd_yield_to_foreground(void) {
        while (__atomic_load_n(&sd_foreground_reads, __ATOMIC_RELAXED) > 0) usleep(20);
    }
    """
    char* sd_scratch(int which, size_t size) nogil
    blosc2_context* sd_dctx() nogil
    int sd_pread_all(int fd, char* buffer, int64_t size, int64_t offset) nogil
    int64_t sd_next_task(int64_t* counter) nogil
    int sd_first_error(int* slot, int code) nogil
    int sd_load_error(int* slot) nogil
    void sd_foreground_enter() nogil
    void sd_foreground_leave() nogil
    void sd_yield_to_foreground() nogil
    int32_t zng_uncompress(uint8_t* dest, size_t* destLen, const uint8_t* source,
                           size_t sourceLen) nogil

cdef extern from "worker_pool.h" nogil:
    ctypedef void (*sd_job_fn)(void*) noexcept nogil
    int sd_pool_run(sd_job_fn fn, void* arg, int helpers, int awake_only)
    int sd_pool_size()
    void sd_pool_wake(int helpers, int64_t spin_ns)

blosc2_init()


def wake_pool(int threads, int64_t spin_us=200):
    """A read on ``threads`` threads is coming: wake the helpers now, since waking one takes
    as long as decoding a chunk. They spin for up to ``spin_us`` waiting for it."""
    with nogil:
        sd_pool_wake(threads - 1, spin_us * 1000)


def pool_size():
    """Worker threads the native pool has started (they persist for the process)."""
    return sd_pool_size()

DEF MAX_DIMS = 32

# Codec ids: keep in sync with split_dataset.file_layout.Codec.
cdef enum:
    CODEC_RAW = 0
    CODEC_BLOSC = 1
    CODEC_DEFLATE = 2
    CODEC_SHUFFLE_DEFLATE = 3
    CODEC_SHUFFLE = 4
    CODEC_H5PY = 99

# Error codes reported to Python (split_dataset.reader turns them into messages).
ERROR_NAMES = {
    1: "reading the file failed",
    2: "the file ends before the chunk (truncated file?)",
    3: "invalid blosc header",
    4: "the chunk decodes to the wrong size",
    5: "blosc decompression failed",
    6: "deflate decompression failed",
    7: "stored size does not match the chunk size",
    8: "chunk index outside the file's chunk grid",
    9: "out of memory",
}

cdef struct FileInfo:
    int fd
    int codec
    int typesize
    bint virtual_chunks  # contiguous dataset: edge chunks are stored short
    const int64_t* chunk_offset
    const int64_t* chunk_size
    const int64_t* chunk_mask
    int64_t n_chunks
    int64_t chunk_nbytes
    int64_t chunk_dims[MAX_DIMS]
    int64_t grid_stride[MAX_DIMS]
    int64_t chunk_stride[MAX_DIMS]


cdef class ReadContext:
    """One plan, one output, the files it touches: the state shared by the worker threads."""

    cdef FileInfo* files
    cdef Py_ssize_t n_files
    cdef int ndim
    cdef int64_t itemsize
    cdef char* out_data
    cdef int64_t out_stride[MAX_DIMS]
    cdef const int64_t[::1] in_coords
    cdef const int64_t[::1] out_coords
    cdef const int64_t[::1] group_chunk
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
    cdef object keep_alive

    def __cinit__(self):
        self.files = NULL

    def __init__(self, plan, cnp.ndarray out, out_strides, file_table):
        """``out_strides``: bytes per step of each *array* axis in ``out`` (0: integer index).

        ``file_table``: per plan file, ``(fd, codec, typesize, virtual_chunks, chunk_shape,
        chunk_grid, chunk_offset, chunk_size, chunk_mask)``.
        """
        cdef int a
        cdef FileInfo* info
        cdef cnp.ndarray offsets, sizes, masks
        self.ndim = len(out_strides)
        if self.ndim > MAX_DIMS:
            raise ValueError(f"at most {MAX_DIMS} dimensions are supported")
        if not out.flags.writeable:
            raise ValueError("output array is read-only")
        self.itemsize = out.dtype.itemsize
        self.out_data = <char*>cnp.PyArray_DATA(out)
        for a in range(self.ndim):
            self.out_stride[a] = out_strides[a]
        self.in_coords = plan.in_coords
        self.out_coords = plan.out_coords
        self.group_chunk = plan.group_chunk
        self.group_start = plan.group_start
        self.group_count = plan.group_count
        self.group_contiguous = plan.group_contiguous
        self.task_file = plan.task_file
        self.task_groups = plan.task_groups
        self.n_files = len(file_table)
        self.files = <FileInfo*>calloc(max(self.n_files, 1), sizeof(FileInfo))
        if self.files == NULL:
            raise MemoryError()
        keep = [out]
        for f, entry in enumerate(file_table):
            fd, codec, typesize, virtual, chunk_shape, chunk_grid, offsets, sizes, masks = entry
            for array in (offsets, sizes, masks):
                if array.dtype != np.int64 or not array.flags.c_contiguous:
                    raise ValueError("chunk tables must be contiguous int64 arrays")
            keep.extend((offsets, sizes, masks))
            info = &self.files[f]
            info.fd = fd
            info.codec = codec
            info.typesize = typesize
            info.virtual_chunks = virtual
            info.chunk_offset = <const int64_t*>cnp.PyArray_DATA(offsets)
            info.chunk_size = <const int64_t*>cnp.PyArray_DATA(sizes)
            info.chunk_mask = <const int64_t*>cnp.PyArray_DATA(masks)
            info.n_chunks = offsets.shape[0]
            info.chunk_nbytes = self.itemsize
            for a in range(self.ndim):
                info.chunk_dims[a] = chunk_shape[a]
                info.chunk_nbytes *= chunk_shape[a]
            for a in range(self.ndim - 1, -1, -1):
                if a == self.ndim - 1:
                    info.grid_stride[a] = 1
                    info.chunk_stride[a] = self.itemsize
                else:
                    info.grid_stride[a] = info.grid_stride[a + 1] * chunk_grid[a + 1]
                    info.chunk_stride[a] = info.chunk_stride[a + 1] * chunk_shape[a + 1]
        self.keep_alive = keep
        self.next_task = 0
        self._error_code = 0
        self.error_task = -1
        self.error_detail = 0
        self.background = False
        self.decode_only = False

    def __dealloc__(self):
        free(self.files)

    @property
    def error_code(self):
        return self._error_code

    def chunk_index(self, int64_t task):
        """Linear chunk index of a task inside its file (for error messages and fallbacks)."""
        return self._chunk_linear(task, &self.files[self.task_file[task]])

    def run(self, int threads=1, bint awake_only=False):
        """Process every task on the calling thread and up to ``threads - 1`` pool workers
        (with ``awake_only``, only workers that are awake right now: for small plans).

        Returns when all tasks are done or one failed (see ``error_code``).
        """
        if not self.background:
            sd_foreground_enter()
        try:
            with nogil:
                sd_pool_run(_run_job, <void*>self, threads - 1, awake_only)
        finally:
            if not self.background:
                sd_foreground_leave()

    def scatter_decoded(self, int64_t task, const uint8_t[::1] decoded):
        """Copy a chunk that was decoded elsewhere (h5py fallback) into the output."""
        cdef FileInfo* info = &self.files[self.task_file[task]]
        if decoded.shape[0] < info.chunk_nbytes:
            raise ValueError("decoded chunk buffer is too small")
        with nogil:
            self._scatter(task, info, <const char*>&decoded[0])

    cdef void _run(self) noexcept nogil:
        cdef int64_t task, n_tasks = self.task_file.shape[0]
        cdef int code
        cdef FileInfo* info
        while sd_load_error(&self._error_code) == 0:
            task = sd_next_task(&self.next_task)
            if task >= n_tasks:
                return
            info = &self.files[self.task_file[task]]
            if info.codec == CODEC_H5PY:
                continue
            if self.background:
                sd_yield_to_foreground()
            code = self._process(task, info)
            if code != 0 and sd_first_error(&self._error_code, code):
                self.error_task = task

    cdef int64_t _chunk_linear(self, int64_t task, FileInfo* info) noexcept nogil:
        cdef int64_t linear = 0
        cdef int a
        for a in range(self.ndim):
            linear += self.group_chunk[self.task_groups[task, a]] * info.grid_stride[a]
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

    cdef int _read_raw(self, FileInfo* info, int64_t offset, int64_t size, char* target,
                       int64_t expected) noexcept nogil:
        cdef int status
        if size != expected and not (info.virtual_chunks and size <= expected):
            self.error_detail = size
            return 7
        status = sd_pread_all(info.fd, target, size, offset)
        if status < 0:
            self.error_detail = -status
            return 1
        return 2 if status == 1 else 0

    cdef int _inflate(self, const char* source, int64_t size, char* target,
                      int64_t expected) noexcept nogil:
        cdef size_t produced = <size_t>expected
        cdef int32_t status = zng_uncompress(<uint8_t*>target, &produced,
                                             <const uint8_t*>source, <size_t>size)
        if status != 0:
            self.error_detail = status
            return 6
        if <int64_t>produced != expected:
            self.error_detail = <int64_t>produced
            return 4
        return 0

    cdef int _decode(self, FileInfo* info, int64_t offset, int64_t size, int64_t mask,
                     char* target) noexcept nogil:
        """Decode one stored chunk into ``target`` (chunk_nbytes bytes)."""
        cdef int64_t expected = info.chunk_nbytes
        cdef char* compressed
        cdef char* staging
        cdef int32_t nbytes = 0, cbytes = 0, blocksize = 0
        cdef int status
        cdef bint shuffled, deflated
        if info.codec == CODEC_RAW or (info.codec in (CODEC_BLOSC, CODEC_DEFLATE) and mask & 1):
            return self._read_raw(info, offset, size, target, expected)
        if size <= 0 or size > 0x7FFFFFFF:
            self.error_detail = size
            return 7
        if info.codec == CODEC_BLOSC or info.codec == CODEC_DEFLATE:
            compressed = sd_scratch(0, size)
            if compressed == NULL:
                return 9
            status = self._read_raw(info, offset, size, compressed, size)
            if status != 0:
                return status
            if info.codec == CODEC_DEFLATE:
                return self._inflate(compressed, size, target, expected)
            if size < 16 or blosc2_cbuffer_sizes(compressed, &nbytes, &cbytes, &blocksize) < 0:
                return 3
            if nbytes != expected:
                self.error_detail = nbytes
                return 4
            if cbytes > size:
                self.error_detail = cbytes
                return 3
            status = blosc2_decompress_ctx(sd_dctx(), compressed, <int32_t>size, target,
                                           <int32_t>expected)
            if status != expected:
                self.error_detail = status
                return 5 if status < 0 else 4
            return 0
        # HDF5 shuffle (filter 0), optionally followed by deflate (filter 1) at write time.
        shuffled = not (mask & 1)
        deflated = info.codec == CODEC_SHUFFLE_DEFLATE and not (mask & 2)
        if not shuffled and not deflated:
            return self._read_raw(info, offset, size, target, expected)
        staging = sd_scratch(2, expected) if shuffled else target
        if staging == NULL:
            return 9
        if deflated:
            compressed = sd_scratch(0, size)
            if compressed == NULL:
                return 9
            status = self._read_raw(info, offset, size, compressed, size)
            if status == 0:
                status = self._inflate(compressed, size, staging, expected)
        else:
            status = self._read_raw(info, offset, size, staging, expected)
        if status != 0 or not shuffled:
            return status
        blosc2_unshuffle(info.typesize, <int32_t>expected, staging, target)
        return 0

    cdef int _process(self, int64_t task, FileInfo* info) noexcept nogil:
        cdef int64_t linear = self._chunk_linear(task, info)
        cdef int64_t offset, size
        cdef char* target
        cdef char* decoded
        cdef int status
        if linear < 0 or linear >= info.n_chunks:
            self.error_detail = linear
            return 8
        offset = info.chunk_offset[linear]
        size = info.chunk_size[linear]
        target = NULL if self.decode_only else self._direct_target(task, info)
        if offset < 0:  # never written: HDF5's fill value, zero here (others use h5py)
            if target != NULL:
                memset(target, 0, info.chunk_nbytes)
                return 0
            decoded = sd_scratch(1, info.chunk_nbytes)
            if decoded == NULL:
                return 9
            memset(decoded, 0, info.chunk_nbytes)
            self._scatter(task, info, decoded)
            return 0
        if target != NULL:
            return self._decode(info, offset, size, info.chunk_mask[linear], target)
        decoded = sd_scratch(1, info.chunk_nbytes)
        if decoded == NULL:
            return 9
        if info.codec == CODEC_RAW and not self.decode_only:
            status = self._read_selected_span(task, info, offset, size, decoded)
            if status == 0:
                self._scatter(task, info, decoded)
            return status
        status = self._decode(info, offset, size, info.chunk_mask[linear], decoded)
        if status == 0 and not self.decode_only:
            self._scatter(task, info, decoded)
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
            return 7
        for a in range(self.ndim):  # coordinates within a group are sorted
            g = self.task_groups[task, a]
            first += self.in_coords[self.group_start[g]] * info.chunk_stride[a]
            last += self.in_coords[self.group_start[g] + self.group_count[g] - 1] * info.chunk_stride[a]
        last += self.itemsize
        if last > size:
            self.error_detail = size
            return 7
        status = sd_pread_all(info.fd, chunk + first, last - first, offset + first)
        if status < 0:
            self.error_detail = -status
            return 1
        return 2 if status == 1 else 0

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

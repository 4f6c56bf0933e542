# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The writers' per-chunk loops, one call per block with the GIL released.

``compress_block``: compress each chunk of a block with c-blosc 1.x's ``blosc_compress_ctx``
(numcodecs' copy: the Blosc1 format every reader of these files knows), keep a chunk that does
not shrink raw, as HDF5's blosc filter does, and hash what is stored (zlib-ng's CRC-32).
``write_chunks``: hand the stored chunks to HDF5's ``H5Dwrite_chunk`` (h5py's own library),
one after the other; the caller holds h5py's lock.

Called per chunk from Python, every chunk cost a GIL hand-over between the threads of the
writer (and each one a wake-up on a busy machine). The C functions are looked up by the
Python side in the libraries numcodecs and h5py loaded and passed here as addresses: this
module links neither, so it always uses exactly the code those packages use.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    uint32_t zng_crc32_z(uint32_t crc, const uint8_t *buf, size_t len);
    typedef int (*sd_blosc_compress_ctx)(int clevel, int doshuffle, size_t typesize,
                                         size_t nbytes, const void *src, void *dest,
                                         size_t destsize, const char *compressor,
                                         size_t blocksize, int numinternalthreads);
    typedef int (*sd_h5d_write_chunk)(int64_t dset_id, int64_t dxpl_id, uint32_t filters,
                                      const uint64_t *offset, size_t data_size,
                                      const void *buf);
    """
    uint32_t zng_crc32_z(uint32_t crc, const uint8_t* buf, size_t len) nogil
    ctypedef int (*sd_blosc_compress_ctx)(int, int, size_t, size_t, const void*, void*,
                                          size_t, const char*, size_t, int) noexcept nogil
    ctypedef int (*sd_h5d_write_chunk)(int64_t, int64_t, uint32_t, const uint64_t*, size_t,
                                       const void*) noexcept nogil

# c-blosc 1.x's BLOSC_MAX_OVERHEAD: a compressed buffer is at most this much larger
cdef int64_t MAX_OVERHEAD = 16
BLOSC_MAX_OVERHEAD = MAX_OVERHEAD


def compress_block(
    uintptr_t compress_ctx,
    const uint8_t[::1] block,
    const int64_t[::1] starts,
    const int64_t[::1] lengths,
    int64_t chunk_bytes,
    int clevel,
    int shuffle,
    int typesize,
    bytes cname,
    uint8_t[::1] stored,
    int64_t[::1] offsets,
    int64_t[::1] sizes,
    uint8_t[::1] masks,
    uint32_t[::1] crcs,
):
    """Compress chunk ``i`` (``block[starts[i]:starts[i] + lengths[i]]``, zero-padded to
    ``chunk_bytes``) into ``stored``, packed one after the other: ``offsets[i]``,
    ``sizes[i]``, ``masks[i]`` (1: kept raw, HDF5's "filter 0 skipped") and ``crcs[i]``.

    ``stored`` must hold ``n * (chunk_bytes + BLOSC_MAX_OVERHEAD)`` bytes. Returns -1, or the
    index of the chunk that c-blosc failed to compress.
    """
    cdef sd_blosc_compress_ctx compress = <sd_blosc_compress_ctx>compress_ctx
    cdef Py_ssize_t n = starts.shape[0], i
    cdef int64_t cursor = 0, capacity = stored.shape[0], status
    cdef const char* compressor = cname
    cdef const uint8_t* source
    cdef uint8_t* target
    cdef uint8_t* padded = NULL
    cdef Py_ssize_t failed = -1
    if lengths.shape[0] != n or offsets.shape[0] < n or sizes.shape[0] < n \
            or masks.shape[0] < n or crcs.shape[0] < n:
        raise ValueError("compress_block: tables of different lengths")
    if capacity < n * (chunk_bytes + MAX_OVERHEAD):
        raise ValueError("compress_block: the output cannot hold every chunk")
    for i in range(n):
        if starts[i] < 0 or lengths[i] < 0 or lengths[i] > chunk_bytes \
                or starts[i] + lengths[i] > block.shape[0]:
            raise ValueError(f"compress_block: chunk {i} lies outside the block")
    if chunk_bytes == 0 or n == 0:
        return -1
    padded = <uint8_t*>calloc(<size_t>chunk_bytes, 1)
    if padded == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                source = &block[0] + starts[i]
                if lengths[i] < chunk_bytes:  # an edge chunk: its bytes, then zeros
                    memcpy(padded, source, <size_t>lengths[i])
                    memset(padded + lengths[i], 0, <size_t>(chunk_bytes - lengths[i]))
                    source = padded
                target = &stored[0] + cursor
                status = compress(clevel, shuffle, <size_t>typesize, <size_t>chunk_bytes,
                                  source, target, <size_t>(chunk_bytes + MAX_OVERHEAD),
                                  compressor, 0, 1)
                if status <= 0:
                    failed = i
                    break
                if status < chunk_bytes:
                    sizes[i], masks[i] = status, 0
                else:
                    memcpy(target, source, <size_t>chunk_bytes)
                    sizes[i], masks[i] = chunk_bytes, 1
                offsets[i] = cursor
                crcs[i] = zng_crc32_z(0, target, <size_t>sizes[i])
                cursor += sizes[i]
    finally:
        free(padded)
    return failed


def write_chunks(
    uintptr_t write_chunk,
    int64_t dataset_id,
    const uint64_t[:, ::1] origins,
    const uint8_t[::1] stored,
    const int64_t[::1] offsets,
    const int64_t[::1] sizes,
    const uint8_t[::1] masks,
):
    """``H5Dwrite_chunk`` for each chunk, in order; the caller holds h5py's lock. Returns -1,
    or the index of the chunk HDF5 refused."""
    cdef sd_h5d_write_chunk write = <sd_h5d_write_chunk>write_chunk
    cdef Py_ssize_t n = origins.shape[0], i
    cdef Py_ssize_t failed = -1
    if offsets.shape[0] < n or sizes.shape[0] < n or masks.shape[0] < n:
        raise ValueError("write_chunks: tables of different lengths")
    for i in range(n):
        if offsets[i] < 0 or sizes[i] < 0 or offsets[i] + sizes[i] > stored.shape[0]:
            raise ValueError(f"write_chunks: chunk {i} lies outside the stored bytes")
    if n == 0:
        return -1
    with nogil:
        for i in range(n):
            if write(dataset_id, 0, masks[i], &origins[i, 0], <size_t>sizes[i],
                     &stored[0] + offsets[i]) < 0:
                failed = i
                break
    return failed

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the planner (see split_dataset/planning.py for the reference version).

Inputs are canonical: sorted non-negative int64 coordinates, positive sizes. Validation and
every error message live in Python.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t

cnp.import_array()


cdef int64_t _count_groups(const int64_t[::1] coords, int64_t block_size, int64_t n_blocks,
                           int64_t chunk_size) noexcept nogil:
    cdef Py_ssize_t i, n = coords.shape[0]
    cdef int64_t groups = 0, block, chunk, last_block = -1, last_chunk = -1
    for i in range(n):
        block = coords[i] // block_size
        if block > n_blocks - 1:
            block = n_blocks - 1
        chunk = (coords[i] - block * block_size) // chunk_size
        if block != last_block or chunk != last_chunk:
            groups += 1
            last_block = block
            last_chunk = chunk
    return groups


cdef void _fill_groups(const int64_t[::1] coords, const int64_t[::1] positions,
                       int64_t block_size, int64_t n_blocks, int64_t chunk_size,
                       int64_t[::1] group_block, int64_t[::1] group_chunk,
                       int64_t[::1] group_start, int64_t[::1] group_count,
                       uint8_t[::1] group_contiguous, int64_t[::1] in_chunk) noexcept nogil:
    cdef Py_ssize_t i, n = coords.shape[0]
    cdef Py_ssize_t g = -1
    cdef int64_t block, chunk, local, last_block = -1, last_chunk = -1
    for i in range(n):
        block = coords[i] // block_size
        if block > n_blocks - 1:
            block = n_blocks - 1
        local = coords[i] - block * block_size
        chunk = local // chunk_size
        in_chunk[i] = local - chunk * chunk_size
        if block != last_block or chunk != last_chunk:
            g += 1
            group_block[g] = block
            group_chunk[g] = chunk
            group_start[g] = i
            group_count[g] = 1
            group_contiguous[g] = 1
            last_block = block
            last_chunk = chunk
        else:
            group_count[g] += 1
            if in_chunk[i] != in_chunk[i - 1] + 1 or positions[i] != positions[i - 1] + 1:
                group_contiguous[g] = 0


def group_axis(const int64_t[::1] coords, const int64_t[::1] positions, int64_t block_size,
               int64_t n_blocks, int64_t chunk_size):
    """Runs of sorted coordinates sharing (block, chunk), and each coordinate inside its chunk.

    Returns ``(block, chunk, start, count, contiguous, in_chunk)`` arrays, like the reference.
    """
    cdef int64_t n_groups
    with nogil:
        n_groups = _count_groups(coords, block_size, n_blocks, chunk_size)
    group_block = np.empty(n_groups, dtype=np.int64)
    group_chunk = np.empty(n_groups, dtype=np.int64)
    group_start = np.empty(n_groups, dtype=np.int64)
    group_count = np.empty(n_groups, dtype=np.int64)
    group_contiguous = np.empty(n_groups, dtype=np.uint8)
    in_chunk = np.empty(coords.shape[0], dtype=np.int64)
    cdef int64_t[::1] block_view = group_block, chunk_view = group_chunk
    cdef int64_t[::1] start_view = group_start, count_view = group_count, in_view = in_chunk
    cdef uint8_t[::1] contiguous_view = group_contiguous
    with nogil:
        _fill_groups(coords, positions, block_size, n_blocks, chunk_size, block_view,
                     chunk_view, start_view, count_view, contiguous_view, in_view)
    return group_block, group_chunk, group_start, group_count, group_contiguous, in_chunk


def build_tasks(const int64_t[:, :, ::1] group_ranges):
    """Every combination of one group per axis for each file, C order: rows (file, g0, g1...)."""
    cdef Py_ssize_t n_files = group_ranges.shape[0], ndim = group_ranges.shape[1]
    cdef Py_ssize_t f, a, row = 0
    cdef int64_t total = 0, product
    for f in range(n_files):
        product = 1
        for a in range(ndim):
            product *= group_ranges[f, a, 1] - group_ranges[f, a, 0]
        total += product
    tasks = np.empty((total, ndim + 1), dtype=np.int64)
    cdef int64_t[:, ::1] out = tasks
    cdef int64_t[::1] current = np.empty(max(ndim, 1), dtype=np.int64)
    with nogil:
        for f in range(n_files):
            product = 1
            for a in range(ndim):
                product *= group_ranges[f, a, 1] - group_ranges[f, a, 0]
                current[a] = group_ranges[f, a, 0]
            if product == 0:
                continue
            while True:
                out[row, 0] = f
                for a in range(ndim):
                    out[row, a + 1] = current[a]
                row += 1
                # odometer: advance the last axis, carry into earlier ones
                a = ndim - 1
                while a >= 0:
                    current[a] += 1
                    if current[a] < group_ranges[f, a, 1]:
                        break
                    current[a] = group_ranges[f, a, 0]
                    a -= 1
                if a < 0:
                    break
    return tasks

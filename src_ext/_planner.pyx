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


# --- whole-plan kernels: the compiled planner proper ----------------------------------------

cdef enum:
    TERM_INT = 0
    TERM_SLICE = 1
    TERM_VECTOR = 2


def axis_selections(list terms, const int64_t[::1] block_shape, const int64_t[::1] blocks_grid):
    """Stage 1. ``terms``: per axis ``(kind, start, step, count, reverse, coords)``.

    Returns ``(coords, positions, files)``: per axis the selected coordinates sorted (stable)
    with each one's output position, and the linear indices of the blocks touched, C order.
    """
    cdef Py_ssize_t ndim = len(terms), a, i, n
    cdef int64_t kind, start, step, count, reverse
    cdef int64_t[::1] c_view, p_view
    cdef int64_t block, last_block
    coords_list = []
    positions_list = []
    blocks_per_axis = []
    cdef Py_ssize_t n_files = 1
    for a in range(ndim):
        kind, start, step, count, reverse, vector = terms[a]
        if kind == TERM_VECTOR:
            coords = np.ascontiguousarray(vector, dtype=np.int64)
            positions = np.arange(coords.shape[0], dtype=np.int64)
            c_view = coords
            n = c_view.shape[0]
            for i in range(1, n):
                if c_view[i] < c_view[i - 1]:
                    order = np.argsort(coords, kind="stable")
                    coords = coords[order]
                    positions = positions[order]
                    break
        else:
            coords = np.empty(count, dtype=np.int64)
            positions = np.empty(count, dtype=np.int64)
            c_view = coords
            p_view = positions
            for i in range(count):
                c_view[i] = start + step * i
                p_view[i] = count - 1 - i if reverse else (0 if kind == TERM_INT else i)
        coords_list.append(coords)
        positions_list.append(positions)
        # blocks touched along this axis, increasing
        c_view = coords
        n = c_view.shape[0]
        touched = []
        last_block = -1
        for i in range(n):
            block = c_view[i] // block_shape[a]
            if block > blocks_grid[a] - 1:
                block = blocks_grid[a] - 1
            if block != last_block:
                touched.append(block)
                last_block = block
        blocks_per_axis.append(touched)
        n_files *= len(touched)
    files = np.empty(n_files, dtype=np.int64)
    cdef int64_t[::1] files_view = files
    cdef Py_ssize_t f
    cdef int64_t linear, remainder, stride
    cdef list sizes = [len(b) for b in blocks_per_axis]
    for f in range(n_files):
        remainder = f
        linear = 0
        stride = 1
        for a in range(ndim - 1, -1, -1):
            i = remainder % sizes[a]
            remainder //= sizes[a]
            linear += (<int64_t>blocks_per_axis[a][i]) * stride
            stride *= blocks_grid[a]
        files_view[f] = linear
    return coords_list, positions_list, files


cdef Py_ssize_t _lower_bound(const int64_t[::1] values, Py_ssize_t lo, Py_ssize_t hi,
                             int64_t target) noexcept nogil:
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def chunk_tasks(list coords_list, list positions_list, const int64_t[::1] block_shape,
                const int64_t[::1] blocks_grid, const int64_t[::1] files,
                const int64_t[:, ::1] chunk_shapes):
    """Stage 2: groups per (axis, chunk size) variant and the task table, like the reference.

    Returns ``(in_coords, out_coords, group_chunk, group_start, group_count,
    group_contiguous, task_file, task_groups)``.
    """
    cdef Py_ssize_t ndim = len(coords_list), n_files = files.shape[0], a, f, v
    cdef dict variants = {}  # (axis, chunk size) -> variant number
    cdef list variant_keys = []
    # pass 1: discover variants in order of first use (files, then axes)
    for f in range(n_files):
        for a in range(ndim):
            key = (a, chunk_shapes[f, a])
            if key not in variants:
                variants[key] = len(variant_keys)
                variant_keys.append(key)
    cdef Py_ssize_t n_variants = len(variant_keys)
    variant_group_first = np.empty(n_variants + 1, dtype=np.int64)
    variant_pool_first = np.empty(n_variants + 1, dtype=np.int64)
    cdef int64_t[::1] group_first = variant_group_first, pool_first = variant_pool_first
    cdef int64_t axis, chunk_size
    group_first[0] = 0
    pool_first[0] = 0
    for v in range(n_variants):
        axis, chunk_size = variant_keys[v]
        group_first[v + 1] = group_first[v] + _count_groups(
            coords_list[axis], block_shape[axis], blocks_grid[axis], chunk_size)
        pool_first[v + 1] = pool_first[v] + (<cnp.ndarray>coords_list[axis]).shape[0]
    cdef Py_ssize_t n_groups = group_first[n_variants], pool_size = pool_first[n_variants]
    in_coords = np.empty(pool_size, dtype=np.int64)
    out_coords = np.empty(pool_size, dtype=np.int64)
    group_block = np.empty(n_groups, dtype=np.int64)
    group_chunk = np.empty(n_groups, dtype=np.int64)
    group_start = np.empty(n_groups, dtype=np.int64)
    group_count = np.empty(n_groups, dtype=np.int64)
    group_contiguous = np.empty(n_groups, dtype=np.uint8)
    cdef int64_t[::1] block_view = group_block, start_view = group_start
    cdef Py_ssize_t first_group, first_pool, n_axis, i
    for v in range(n_variants):
        axis, chunk_size = variant_keys[v]
        first_group, first_pool = group_first[v], pool_first[v]
        n_axis = pool_first[v + 1] - first_pool
        _fill_groups(coords_list[axis], positions_list[axis], block_shape[axis],
                     blocks_grid[axis], chunk_size,
                     group_block[first_group:group_first[v + 1]],
                     group_chunk[first_group:group_first[v + 1]],
                     group_start[first_group:group_first[v + 1]],
                     group_count[first_group:group_first[v + 1]],
                     group_contiguous[first_group:group_first[v + 1]],
                     in_coords[first_pool:first_pool + n_axis])
        out_coords[first_pool:first_pool + n_axis] = positions_list[axis]
        for i in range(first_group, group_first[v + 1]):
            start_view[i] += first_pool
    # pass 2: group ranges of every file along every axis
    ranges = np.empty((n_files, ndim, 2), dtype=np.int64)
    cdef int64_t[:, :, ::1] range_view = ranges
    cdef int64_t remainder, block
    cdef Py_ssize_t lo, hi
    cdef int64_t[::1] variant_of = np.empty(ndim, dtype=np.int64)
    for f in range(n_files):
        for a in range(ndim):
            variant_of[a] = variants[(a, chunk_shapes[f, a])]
        with nogil:
            remainder = files[f]
            for a in range(ndim - 1, -1, -1):
                block = remainder % blocks_grid[a]
                remainder = remainder // blocks_grid[a]
                v = variant_of[a]
                lo = _lower_bound(block_view, group_first[v], group_first[v + 1], block)
                hi = _lower_bound(block_view, lo, group_first[v + 1], block + 1)
                range_view[f, a, 0] = lo
                range_view[f, a, 1] = hi
    tasks = build_tasks(ranges)
    return (in_coords, out_coords, group_chunk, group_start, group_count, group_contiguous,
            np.ascontiguousarray(tasks[:, 0]), np.ascontiguousarray(tasks[:, 1:]))

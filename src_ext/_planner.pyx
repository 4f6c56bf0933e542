# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the planner (see split_dataset/planning.py for the reference version).

Inputs are canonical: sorted non-negative int64 coordinates, positive sizes. Validation and
every error message live in Python.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t

cnp.import_array()


cdef inline const int64_t* _data(object array):
    return <const int64_t*>cnp.PyArray_DATA(<cnp.ndarray>array)


cdef int64_t _count_groups(const int64_t* coords, Py_ssize_t n, int64_t block_size,
                           int64_t n_blocks, int64_t chunk_size) noexcept nogil:
    cdef Py_ssize_t i
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


cdef void _fill_groups(const int64_t* coords, const int64_t* positions, Py_ssize_t n,
                       int64_t block_size, int64_t n_blocks, int64_t chunk_size,
                       int64_t pool_first, int64_t* group_block, int64_t* group_chunk,
                       int64_t* group_start, int64_t* group_count, uint8_t* group_contiguous,
                       int64_t* in_chunk, int64_t* out_coords) noexcept nogil:
    """Runs of sorted coordinates sharing (block, chunk); each coordinate inside its chunk."""
    cdef Py_ssize_t i
    cdef Py_ssize_t g = -1
    cdef int64_t block, chunk, local, last_block = -1, last_chunk = -1
    for i in range(n):
        block = coords[i] // block_size
        if block > n_blocks - 1:
            block = n_blocks - 1
        local = coords[i] - block * block_size
        chunk = local // chunk_size
        in_chunk[i] = local - chunk * chunk_size
        out_coords[i] = positions[i]
        if block != last_block or chunk != last_chunk:
            g += 1
            group_block[g] = block
            group_chunk[g] = chunk
            group_start[g] = pool_first + i
            group_count[g] = 1
            group_contiguous[g] = 1
            last_block = block
            last_chunk = chunk
        else:
            group_count[g] += 1
            if in_chunk[i] != in_chunk[i - 1] + 1 or positions[i] != positions[i - 1] + 1:
                group_contiguous[g] = 0


cdef tuple _build_tasks(const int64_t[:, :, ::1] group_ranges):
    """Every combination of one group per axis for each file, C order: (task_file, groups)."""
    cdef Py_ssize_t n_files = group_ranges.shape[0], ndim = group_ranges.shape[1]
    cdef Py_ssize_t f, a, row = 0
    cdef int64_t total = 0, product
    cdef int64_t current[32]
    for f in range(n_files):
        product = 1
        for a in range(ndim):
            product *= group_ranges[f, a, 1] - group_ranges[f, a, 0]
        total += product
    task_file = np.empty(total, dtype=np.int64)
    task_groups = np.empty((total, ndim), dtype=np.int64)
    cdef int64_t* file_out = <int64_t*>cnp.PyArray_DATA(task_file)
    cdef int64_t* groups_out = <int64_t*>cnp.PyArray_DATA(task_groups)
    with nogil:
        for f in range(n_files):
            product = 1
            for a in range(ndim):
                product *= group_ranges[f, a, 1] - group_ranges[f, a, 0]
                current[a] = group_ranges[f, a, 0]
            if product == 0:
                continue
            while True:
                file_out[row] = f
                for a in range(ndim):
                    groups_out[row * ndim + a] = current[a]
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
    return task_file, task_groups


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


cdef Py_ssize_t _lower_bound(const int64_t* values, Py_ssize_t lo, Py_ssize_t hi,
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
    cdef Py_ssize_t ndim = len(coords_list), n_files = files.shape[0], a, f, v, n_variants = 0
    cdef Py_ssize_t MAX_VARIANTS = 64
    cdef int64_t variant_axis[64]
    cdef int64_t variant_chunk[64]
    cdef int64_t group_first[65]
    cdef int64_t pool_first[65]
    cdef int64_t axis_length[64]
    cdef const int64_t* axis_coords[64]
    cdef const int64_t* axis_positions[64]
    if ndim > 32:
        raise ValueError("at most 32 dimensions are supported")
    for a in range(ndim):
        axis_coords[a] = _data(coords_list[a])
        axis_positions[a] = _data(positions_list[a])
        axis_length[a] = (<cnp.ndarray>coords_list[a]).shape[0]
    # variants in order of first use (files, then axes); few, so a linear search is fastest
    ranges = np.empty((n_files, ndim, 2), dtype=np.int64)
    cdef int64_t[:, :, ::1] range_view = ranges
    with nogil:
        for f in range(n_files):
            for a in range(ndim):
                for v in range(n_variants):
                    if variant_axis[v] == a and variant_chunk[v] == chunk_shapes[f, a]:
                        break
                else:
                    v = n_variants
                    if v == MAX_VARIANTS:
                        break
                    variant_axis[v] = a
                    variant_chunk[v] = chunk_shapes[f, a]
                    n_variants += 1
                range_view[f, a, 0] = v  # variant for now; group range below
    if n_variants == MAX_VARIANTS:
        raise ValueError("too many distinct chunk shapes among the files of one read")
    group_first[0] = 0
    pool_first[0] = 0
    for v in range(n_variants):
        a = variant_axis[v]
        group_first[v + 1] = group_first[v] + _count_groups(
            axis_coords[a], axis_length[a], block_shape[a], blocks_grid[a], variant_chunk[v])
        pool_first[v + 1] = pool_first[v] + axis_length[a]
    cdef Py_ssize_t n_groups = group_first[n_variants], pool_size = pool_first[n_variants]
    pools = np.empty((2, pool_size), dtype=np.int64)
    groups = np.empty((4, n_groups), dtype=np.int64)
    group_contiguous = np.empty(n_groups, dtype=np.uint8)
    cdef int64_t* in_coords = <int64_t*>cnp.PyArray_DATA(pools)
    cdef int64_t* out_coords = in_coords + pool_size
    cdef int64_t* group_block = <int64_t*>cnp.PyArray_DATA(groups)
    cdef int64_t* group_chunk = group_block + n_groups
    cdef int64_t* group_start = group_chunk + n_groups
    cdef int64_t* group_count = group_start + n_groups
    cdef uint8_t* contiguous = <uint8_t*>cnp.PyArray_DATA(group_contiguous)
    cdef int64_t remainder, block
    cdef Py_ssize_t lo, hi
    with nogil:
        for v in range(n_variants):
            a = variant_axis[v]
            _fill_groups(axis_coords[a], axis_positions[a], axis_length[a], block_shape[a],
                         blocks_grid[a], variant_chunk[v], pool_first[v],
                         group_block + group_first[v], group_chunk + group_first[v],
                         group_start + group_first[v], group_count + group_first[v],
                         contiguous + group_first[v], in_coords + pool_first[v],
                         out_coords + pool_first[v])
        # the group range of every file along every axis
        for f in range(n_files):
            remainder = files[f]
            for a in range(ndim - 1, -1, -1):
                block = remainder % blocks_grid[a]
                remainder = remainder // blocks_grid[a]
                v = range_view[f, a, 0]
                lo = _lower_bound(group_block, group_first[v], group_first[v + 1], block)
                hi = _lower_bound(group_block, lo, group_first[v + 1], block + 1)
                range_view[f, a, 0] = lo
                range_view[f, a, 1] = hi
    task_file, task_groups = _build_tasks(range_view)
    return (pools[0], pools[1], groups[1], groups[2], groups[3], group_contiguous,
            task_file, task_groups)

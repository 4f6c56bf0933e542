# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the planner (see split_dataset/planning.py for the reference version).

Inputs are canonical: sorted non-negative int64 coordinates, positive sizes. Validation and
every error message live in Python.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

cnp.import_array()


cdef inline int64_t _block_of(int64_t coord, int64_t block_size,
                              int64_t blocks_along_axis) noexcept nogil:
    """``blocks.block_of`` of one coordinate: the last block also owns a padding-length tail."""
    cdef int64_t block = coord // block_size
    return blocks_along_axis - 1 if block > blocks_along_axis - 1 else block


cdef inline int64_t _group_end(int64_t coord, int64_t block_size, int64_t blocks_along_axis,
                               int64_t chunk_size, int64_t* block, int64_t* chunk) noexcept nogil:
    """The (block, chunk) holding ``coord``, and the first coordinate past that chunk.

    Divisions cost tens of cycles; with the end known, the coordinates that follow in the
    same chunk need none (a plane's 512 x 512 coordinates take two divisions per chunk).
    """
    block[0] = _block_of(coord, block_size, blocks_along_axis)
    cdef int64_t block_start = block[0] * block_size
    chunk[0] = (coord - block_start) // chunk_size
    cdef int64_t end = block_start + (chunk[0] + 1) * chunk_size
    if block[0] < blocks_along_axis - 1 and end > block_start + block_size:
        end = block_start + block_size
    return end


cdef int64_t _count_groups(const int64_t* coords, Py_ssize_t n, int64_t block_size,
                           int64_t blocks_along_axis, int64_t chunk_size) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef int64_t groups = 0, block, chunk, end
    while i < n:
        end = _group_end(coords[i], block_size, blocks_along_axis, chunk_size, &block, &chunk)
        groups += 1
        while i < n and coords[i] < end:
            i += 1
    return groups


cdef void _fill_groups(const int64_t* coords, const int64_t* positions, Py_ssize_t n,
                       int64_t block_size, int64_t blocks_along_axis, int64_t chunk_size,
                       int64_t pool_first, int64_t* group_block, int64_t* group_chunk,
                       int64_t* group_start, int64_t* group_count, uint8_t* group_contiguous,
                       int64_t* in_chunk, int64_t* out_coords) noexcept nogil:
    """Runs of sorted coordinates sharing (block, chunk); each coordinate inside its chunk."""
    cdef Py_ssize_t i = 0, first
    cdef Py_ssize_t g = -1
    cdef int64_t block, chunk, end, chunk_start
    cdef bint contiguous
    while i < n:
        end = _group_end(coords[i], block_size, blocks_along_axis, chunk_size, &block, &chunk)
        chunk_start = block * block_size + chunk * chunk_size
        g += 1
        first = i
        contiguous = True
        while i < n and coords[i] < end:
            in_chunk[i] = coords[i] - chunk_start
            out_coords[i] = positions[i]
            if i > first and (coords[i] != coords[i - 1] + 1 or positions[i] != positions[i - 1] + 1):
                contiguous = False
            i += 1
        group_block[g] = block
        group_chunk[g] = chunk
        group_start[g] = pool_first + first
        group_count[g] = i - first
        group_contiguous[g] = contiguous


cdef tuple _build_tasks(const int64_t* group_ranges, Py_ssize_t n_files, Py_ssize_t ndim):
    """Every combination of one group per axis for each file, C order: (task_file, groups).

    ``group_ranges[(f * ndim + a) * 2 + {0, 1}]``: the group range of file f along axis a.
    """
    cdef Py_ssize_t f, a, row = 0
    cdef int64_t total = 0, product
    cdef int64_t current[32]
    for f in range(n_files):
        product = 1
        for a in range(ndim):
            product *= _range_hi(group_ranges, f, a, ndim) - _range_lo(group_ranges, f, a, ndim)
        total += product
    task_file = _empty(total)
    task_groups = _empty(total * ndim).reshape(total, ndim)
    cdef int64_t* file_out = <int64_t*>cnp.PyArray_DATA(task_file)
    cdef int64_t* groups_out = <int64_t*>cnp.PyArray_DATA(task_groups)
    with nogil:
        for f in range(n_files):
            product = 1
            for a in range(ndim):
                product *= _range_hi(group_ranges, f, a, ndim) - _range_lo(group_ranges, f, a, ndim)
                current[a] = _range_lo(group_ranges, f, a, ndim)
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
                    if current[a] < _range_hi(group_ranges, f, a, ndim):
                        break
                    current[a] = _range_lo(group_ranges, f, a, ndim)
                    a -= 1
                if a < 0:
                    break
    return task_file, task_groups


cdef inline int64_t _range_lo(const int64_t* ranges, Py_ssize_t f, Py_ssize_t a,
                              Py_ssize_t ndim) noexcept nogil:
    return ranges[(f * ndim + a) * 2]


cdef inline int64_t _range_hi(const int64_t* ranges, Py_ssize_t f, Py_ssize_t a,
                              Py_ssize_t ndim) noexcept nogil:
    return ranges[(f * ndim + a) * 2 + 1]


cdef cnp.ndarray _empty(Py_ssize_t n, int typenum=cnp.NPY_INT64):
    """A new 1-d array, without np.empty's argument parsing (this runs on every read)."""
    cdef cnp.npy_intp size = n
    return cnp.PyArray_EMPTY(1, &size, typenum, 0)


cdef int _read_shape(tuple values, int64_t* target, Py_ssize_t ndim) except -1:
    if len(values) != ndim:
        raise ValueError(f"expected {ndim} sizes, got {len(values)}")
    for a in range(ndim):
        target[a] = values[a]
        if target[a] <= 0:
            raise ValueError(f"sizes must be positive, got {values}")
    return 0


cdef const int64_t* _int64_data(object array, str name) except NULL:
    """The data of a C-contiguous int64 array (checked: the kernels trust it)."""
    if not isinstance(array, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>array) != cnp.NPY_INT64 \
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>array):
        raise TypeError(f"{name} must be a C-contiguous int64 array")
    return <const int64_t*>cnp.PyArray_DATA(<cnp.ndarray>array)


# --- whole-plan kernels: the compiled planner proper ----------------------------------------

cpdef enum TermKind:
    """How a canonical term reaches the compiled planner (``planning._term_spec``)."""
    INTEGER_TERM = 0
    SLICE_TERM = 1
    VECTOR_TERM = 2


def axis_selections(list terms, tuple block_shape, tuple blocks_grid):
    """Stage 1. ``terms``: per axis ``(kind, start, step, count, reverse, coords)``.

    Returns ``(coords, positions, files)``: per axis the selected coordinates sorted (stable)
    with each one's output position, and the linear indices of the blocks touched, C order.
    """
    cdef Py_ssize_t ndim = len(terms), a, i, n
    cdef int64_t kind, start, step, count, reverse
    cdef int64_t* c_data
    cdef int64_t* p_data
    cdef const int64_t* sorted_coords
    cdef int64_t block, block_end
    cdef int64_t block_size[32]
    cdef int64_t blocks_along_axis[32]
    if ndim > 32:
        raise ValueError("at most 32 dimensions are supported")
    _read_shape(block_shape, block_size, ndim)
    _read_shape(blocks_grid, blocks_along_axis, ndim)
    coords_list = []
    positions_list = []
    blocks_per_axis = []
    cdef Py_ssize_t n_files = 1
    for a in range(ndim):
        kind, start, step, count, reverse, vector = terms[a]
        if kind == VECTOR_TERM:
            coords = np.ascontiguousarray(vector, dtype=np.int64)
            positions = np.arange(coords.shape[0], dtype=np.int64)
            c_data = <int64_t*>cnp.PyArray_DATA(coords)
            n = coords.shape[0]
            for i in range(1, n):
                if c_data[i] < c_data[i - 1]:
                    order = np.argsort(coords, kind="stable")
                    coords = coords[order]
                    positions = positions[order]
                    break
        else:
            coords = _empty(count)
            positions = _empty(count)
            c_data = <int64_t*>cnp.PyArray_DATA(coords)
            p_data = <int64_t*>cnp.PyArray_DATA(positions)
            for i in range(count):
                c_data[i] = start + step * i
                p_data[i] = count - 1 - i if reverse else (0 if kind == INTEGER_TERM else i)
        coords_list.append(coords)
        positions_list.append(positions)
        # blocks touched along this axis, increasing
        sorted_coords = <const int64_t*>cnp.PyArray_DATA(coords)
        n = coords.shape[0]
        touched = []
        i = 0
        while i < n:  # one division per block touched, not per coordinate
            block = sorted_coords[i] // block_size[a]
            if block >= blocks_along_axis[a] - 1:
                touched.append(blocks_along_axis[a] - 1)
                break
            touched.append(block)
            block_end = (block + 1) * block_size[a]
            while i < n and sorted_coords[i] < block_end:
                i += 1
        blocks_per_axis.append(touched)
        n_files *= len(touched)
    files = _empty(n_files)
    cdef int64_t* files_data = <int64_t*>cnp.PyArray_DATA(files)
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
            stride *= blocks_along_axis[a]
        files_data[f] = linear
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


def chunk_tasks(list coords_list, list positions_list, tuple block_shape, tuple blocks_grid,
                object files, list chunk_shapes):
    """Stage 2: groups per (axis, chunk size) variant and the task table, like the reference.

    ``files``: int64 array of linear block indices; ``chunk_shapes``: a tuple per file.
    Returns ``(in_coords, out_coords, group_chunk, group_start, group_count,
    group_contiguous, task_file, task_groups)``.
    """
    cdef Py_ssize_t ndim = len(coords_list), a, f, v, n_variants = 0
    cdef Py_ssize_t MAX_VARIANTS = 64
    cdef int64_t variant_axis[64]
    cdef int64_t variant_chunk[64]
    cdef int64_t group_first[65]
    cdef int64_t pool_first[65]
    cdef int64_t axis_length[32]
    cdef int64_t block_size[32]
    cdef int64_t blocks_along_axis[32]
    cdef int64_t file_chunk[32]
    cdef const int64_t* axis_coords[32]
    cdef const int64_t* axis_positions[32]
    if ndim > 32:
        raise ValueError("at most 32 dimensions are supported")
    _read_shape(block_shape, block_size, ndim)
    _read_shape(blocks_grid, blocks_along_axis, ndim)
    cdef const int64_t* file_index = _int64_data(files, "files")
    cdef Py_ssize_t n_files = len(files)
    if len(chunk_shapes) != n_files:
        raise ValueError("one chunk shape per file is needed")
    for a in range(ndim):
        axis_coords[a] = _int64_data(coords_list[a], "coords")
        axis_positions[a] = _int64_data(positions_list[a], "positions")
        axis_length[a] = len(coords_list[a])
        if len(positions_list[a]) != axis_length[a]:
            raise ValueError("coords and positions differ in length")
    # group range of each file along each axis; holds the variant index until filled below
    cdef int64_t* ranges = <int64_t*>malloc(max(n_files * ndim * 2, 1) * sizeof(int64_t))
    if ranges == NULL:
        raise MemoryError()
    try:
        # variants in order of first use (files, then axes); few, so a linear search is fastest
        for f in range(n_files):
            _read_shape(chunk_shapes[f], file_chunk, ndim)
            for a in range(ndim):
                for v in range(n_variants):
                    if variant_axis[v] == a and variant_chunk[v] == file_chunk[a]:
                        break
                else:
                    v = n_variants
                    if v == MAX_VARIANTS:
                        raise ValueError("too many distinct chunk shapes among the files of one read")
                    variant_axis[v] = a
                    variant_chunk[v] = file_chunk[a]
                    n_variants += 1
                ranges[(f * ndim + a) * 2] = v
        group_first[0] = 0
        pool_first[0] = 0
        for v in range(n_variants):
            a = variant_axis[v]
            group_first[v + 1] = group_first[v] + _count_groups(
                axis_coords[a], axis_length[a], block_size[a], blocks_along_axis[a], variant_chunk[v])
            pool_first[v + 1] = pool_first[v] + axis_length[a]
        n_groups = group_first[n_variants]
        pool_size = pool_first[n_variants]
        in_coords_array = _empty(pool_size)
        out_coords_array = _empty(pool_size)
        group_block_array = _empty(n_groups)
        group_chunk_array = _empty(n_groups)
        group_start_array = _empty(n_groups)
        group_count_array = _empty(n_groups)
        contiguous_array = _empty(n_groups, cnp.NPY_UINT8)
        _fill_plan(ndim, n_files, n_variants, file_index, variant_axis, variant_chunk,
                   group_first, pool_first, axis_coords, axis_positions, axis_length,
                   block_size, blocks_along_axis, ranges,
                   <int64_t*>cnp.PyArray_DATA(in_coords_array),
                   <int64_t*>cnp.PyArray_DATA(out_coords_array),
                   <int64_t*>cnp.PyArray_DATA(group_block_array),
                   <int64_t*>cnp.PyArray_DATA(group_chunk_array),
                   <int64_t*>cnp.PyArray_DATA(group_start_array),
                   <int64_t*>cnp.PyArray_DATA(group_count_array),
                   <uint8_t*>cnp.PyArray_DATA(contiguous_array))
        task_file, task_groups = _build_tasks(ranges, n_files, ndim)
    finally:
        free(ranges)
    return (in_coords_array, out_coords_array, group_chunk_array, group_start_array,
            group_count_array, contiguous_array, task_file, task_groups)


cdef void _fill_plan(Py_ssize_t ndim, Py_ssize_t n_files, Py_ssize_t n_variants,
                     const int64_t* file_index, const int64_t* variant_axis,
                     const int64_t* variant_chunk, const int64_t* group_first,
                     const int64_t* pool_first, const int64_t** axis_coords,
                     const int64_t** axis_positions, const int64_t* axis_length,
                     const int64_t* block_size, const int64_t* blocks_along_axis, int64_t* ranges,
                     int64_t* in_coords, int64_t* out_coords, int64_t* group_block,
                     int64_t* group_chunk, int64_t* group_start, int64_t* group_count,
                     uint8_t* contiguous) noexcept nogil:
    """Groups of every variant, then each file's group range per axis (replacing the
    variant index that ``ranges`` held)."""
    cdef Py_ssize_t v, f, a, lo, hi
    cdef int64_t remainder, block
    for v in range(n_variants):
        a = variant_axis[v]
        _fill_groups(axis_coords[a], axis_positions[a], axis_length[a], block_size[a],
                     blocks_along_axis[a], variant_chunk[v], pool_first[v],
                     group_block + group_first[v], group_chunk + group_first[v],
                     group_start + group_first[v], group_count + group_first[v],
                     contiguous + group_first[v], in_coords + pool_first[v],
                     out_coords + pool_first[v])
    for f in range(n_files):
        remainder = file_index[f]
        for a in range(ndim - 1, -1, -1):
            block = remainder % blocks_along_axis[a]
            remainder = remainder // blocks_along_axis[a]
            v = ranges[(f * ndim + a) * 2]
            lo = _lower_bound(group_block, group_first[v], group_first[v + 1], block)
            hi = _lower_bound(group_block, lo, group_first[v + 1], block + 1)
            ranges[(f * ndim + a) * 2] = lo
            ranges[(f * ndim + a) * 2 + 1] = hi


# --- a viewer's frame: integers that fall in one block -------------------------------------

def plain_in_block(object key, tuple shape, tuple block_shape, tuple blocks_grid):
    """``ds[t]``, ``ds[t, z]``, ``ds[t, z, :, :]``...: integers (Python's or NumPy's, not
    bools) on some leading axes, fewer than all, then nothing or whole slices (``:``, as a
    viewer sends for the axes it shows), where every axis past the integers is one block.

    Returns ``(linear block, block-local integers)``, the same block and offsets as
    ``planning.block_local_selection`` with the remaining axes whole; None for any other key,
    an integer out of range included (the general path then reads it, or raises NumPy's
    error). What a viewer asks for every frame, parsed without building a selection."""
    cdef tuple items
    if type(key) is tuple:
        items = <tuple>key
    else:
        items = (key,)
    cdef Py_ssize_t n = 0, n_items = len(items), ndim = len(shape), a
    while n < n_items and type(items[n]) is not slice:
        n += 1
    if n == 0 or n >= ndim or n_items > ndim:
        return None
    for a in range(n, n_items):
        item = items[a]
        if type(item) is not slice or not (
            (<slice>item).start is None and (<slice>item).stop is None
            and (<slice>item).step is None
        ):
            return None
    for a in range(n, ndim):
        if <int64_t>blocks_grid[a] != 1:
            return None
    cdef int64_t index, size, block_size, blocks_along_axis, block, linear = 0
    cdef list local = []
    for a in range(n):
        item = items[a]
        if type(item) is not int and (type(item) is bool or not isinstance(item, np.integer)):
            return None
        value = int(item)  # compared as Python ints: no overflow for any NumPy integer
        size = shape[a]
        if value < -size or value >= size:
            return None
        index = value + size if value < 0 else value
        block_size = block_shape[a]
        blocks_along_axis = blocks_grid[a]
        block = _block_of(index, block_size, blocks_along_axis)
        linear = linear * blocks_along_axis + block
        local.append(index - block * block_size)
    return linear, tuple(local)

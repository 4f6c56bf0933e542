"""Streaming writer: append frames as they are acquired, blocks are compressed in the background.

    with SplitDatasetWriter("recording/original", frame_shape=(20, 512, 512), dtype="uint16",
                            frames_per_block=10, resolution=(1.0, 5.0, 0.6, 0.6),
                            frequency=2.0) as writer:
        for volume in camera:
            writer.append(volume)        # returns after a copy; waits only if the disk falls behind

The files look exactly like those of ``save_to_split_dataset`` (and of flammkuchen/PyTables):
``{:04d}.h5`` from 0000, one array per file under ``stack_{N}D``, blosc filter 32001 with byte
shuffle and small row-band chunks, the last block truncated, and ``stack_metadata.json``.

How a block travels:

1. ``append`` copies frames into the current block buffer (the caller may reuse its array as
   soon as ``append`` returns). A full buffer is handed to a pool of worker threads. At most
   ``max_pending_blocks`` blocks are in flight (handed over, not yet committed); beyond that
   ``append`` waits (back-pressure), so memory stays bounded by ``max_pending_blocks + 1``
   block buffers (which are reused).
2. A worker splits the block into inner chunks and compresses each one as a Blosc1 buffer with
   numcodecs (c-blosc 1.x, which runs without the GIL, so workers compress in parallel); a
   chunk that blosc cannot shrink is kept raw with the filter-skipped bit set, like the HDF5
   blosc filter does. Blosc chunks are one frame deep (the default), so the frames of a block
   are compressed as they arrive, in runs of about ``RUN_BYTES``: a block of many frames is
   not left to one worker once it is full, and closing waits only for the last run. The block
   buffer is then free for reuse. One store thread writes the chunks with HDF5's direct chunk
   write into ``0003.h5.tmp`` (HDF5 serializes its calls, so workers that wrote themselves
   would wait for each other). Memory: at most ``max_pending_blocks`` blocks in flight, each
   as a buffer or as its compressed chunks, plus the buffer being filled.
3. One committer thread publishes the written blocks strictly in order, over the contiguous
   prefix of finished blocks, so that compression workers never wait for the disk: it fsyncs
   ``0003.h5.tmp``, replaces ``stack_metadata.json`` atomically with ``shape_full[0]``
   counting the block, then renames ``0003.h5.tmp`` to ``0003.h5`` (the folder is fsynced
   after each of the two steps, so their order also holds after a power cut). Blocks that
   finished while it was busy are published together (group commit: one JSON rewrite and two
   folder fsyncs for all of them), so the commit chain keeps up with the compressors. A block
   that finished before its predecessor stays a ``.tmp`` file until the predecessor is there.

The JSON therefore never describes fewer frames than the ``.h5`` files hold (the reader refuses
more files than the JSON's grid), and when it describes more (a crash between the two steps)
the reader opens the files that are there, with an ``IncompleteDatasetWarning``.

So after a crash at any moment the folder holds block files ``0000.h5 ...`` without a gap, every
one of them complete, and opens with ``SplitDataset`` with all committed blocks; unfinished
blocks are only ``.tmp`` files, which readers ignore. The JSON is written when the writer starts,
so before the first block is committed the folder opens as an empty dataset.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import destination as destinations
from .block_file import (
    BlockEncoding,
    CompressedChunks,
    PreparedBlock,
    StoredBuffers,
    compressed_by_frames,
    default_chunk_shape,
    fsync_path,
    prepare_block,
)
from .errors import BlockWriteError
from .metadata import METADATA_SUFFIX, StackMetadata, write_json_metadata
from .threads import effective_threads

# Frames are handed to the compressing workers in runs of about this many bytes: a run is
# worth a task (a few ms of compression), and a block of many frames is spread over them.
RUN_BYTES = 4 << 20


@dataclass(eq=False)
class _BlockByFrames:
    """A block whose runs of frames are compressed as they arrive; shared with the workers
    under the writer's lock. The last run to finish, or the hand-over if it comes later,
    sends the block on to be stored."""

    index: int
    buffer: np.ndarray
    runs: dict[int, list[CompressedChunks]] = field(default_factory=dict)  # by first frame
    running: int = 0  # runs handed to the workers, not finished
    frames: int | None = None  # the frames it holds, once handed over whole
    failed: bool = False


class SplitDatasetWriter:
    """Write a split dataset frame by frame, compressing blocks on background threads.

    ``path``: the dataset folder (created). ``frame_shape``, ``dtype``: of one frame; frames are
    stacked along a new first axis, blocks hold ``frames_per_block`` frames. ``compression``:
    ``"blosc"`` (blosclz), ``"blosc:lz4"``, ``"blosc:zstd"``, ``("blosc:lz4", level)``, ``None``
    (uncompressed, contiguous) or ``"zlib"`` (compressed by HDF5 itself, serially);
    ``compression_level`` defaults to 9 as in flammkuchen. ``threads``: compression workers
    (default: the package's thread default, at most ``max_pending_blocks``), plus one thread
    that fsyncs and publishes blocks. ``chunk_shape``: inner chunks of a block (default
    ``default_chunk_shape``: one row band of one plane; ignored when uncompressed).
    ``durable=False`` skips every fsync: a killed process still leaves whole blocks and
    consistent metadata (renames are atomic), but a power cut or an OS crash may lose the
    latest ones; it writes at page-cache speed.

    ``append`` copies the frames and returns; when ``max_pending_blocks`` blocks are in flight
    (handed over, not yet durably published) it waits for one. A failure (disk full,
    permission) is raised by the next ``append`` or ``close`` as ``BlockWriteError`` naming the
    file; every block committed before stays readable. ``close`` writes the partial last block
    and the final metadata: always close the writer (or use it as a context manager), the
    frames of an unclosed writer's last block are lost.

    Note: sets ``numcodecs.blosc.use_threads = False`` (process-wide) so that numcodecs never
    uses c-blosc's global, mutex-serialized context: each worker compresses on its own thread
    without the GIL.
    """

    def __init__(
        self,
        path: str | Path,
        frame_shape: Sequence[int] | int,
        dtype: Any,
        frames_per_block: int,
        compression: Any = "blosc",
        compression_level: int | None = None,
        resolution: Sequence[float] | None = None,
        frequency: float | None = None,
        axis_order: str | None = None,
        overwrite: bool = False,
        threads: int | None = None,
        max_pending_blocks: int = 4,
        chunk_shape: Sequence[int] | None = None,
        durable: bool = True,
    ) -> None:
        if isinstance(frame_shape, (int, np.integer)):
            frame_shape = (int(frame_shape),)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        if any(s < 1 for s in self.frame_shape):
            raise ValueError(f"frame_shape must have positive entries, got {self.frame_shape}")
        self.dtype = np.dtype(dtype)
        if self.dtype.hasobject or self.dtype.itemsize == 0:
            raise ValueError(f"dtype {self.dtype} cannot be stored")
        self.frames_per_block = int(frames_per_block)
        self.durable = bool(durable)
        if self.frames_per_block < 1:
            raise ValueError(f"frames_per_block must be at least 1, got {frames_per_block}")
        if int(max_pending_blocks) < 1:
            raise ValueError(f"max_pending_blocks must be at least 1, got {max_pending_blocks}")
        self.max_pending_blocks = int(max_pending_blocks)
        self.ndim = 1 + len(self.frame_shape)
        self.shape_block = (self.frames_per_block,) + self.frame_shape

        if chunk_shape is None:
            chunks = default_chunk_shape(self.shape_block, self.dtype.itemsize)
        else:
            chunks = tuple(int(c) for c in chunk_shape)
            if len(chunks) != self.ndim or any(c < 1 for c in chunks):
                raise ValueError(
                    f"chunk_shape must have {self.ndim} positive entries, got {tuple(chunk_shape)}"
                )
        chunks = tuple(min(c, s) for c, s in zip(chunks, self.shape_block))
        self._encoding = BlockEncoding.for_compression(
            compression, compression_level, f"stack_{self.ndim}D", chunks
        )
        if self._encoding.kind == "blosc" and self.dtype.itemsize > 255:
            raise ValueError(f"blosc cannot compress items of {self.dtype.itemsize} bytes")

        if resolution is None:
            resolution_values: tuple[float | None, ...] = (None,) * self.ndim
        else:
            resolution_values = tuple(None if r is None else float(r) for r in resolution)
            if len(resolution_values) != self.ndim:
                raise ValueError(
                    f"resolution has {len(resolution_values)} entries for a {self.ndim}-d dataset "
                    f"(time first, then the {len(self.frame_shape)} axes of a frame)"
                )
        if axis_order is not None and len(axis_order) != self.ndim:
            raise ValueError(
                f"axis_order {axis_order!r} has {len(axis_order)} letters for a "
                f"{self.ndim}-d dataset"
            )
        zeros = (0,) * self.ndim
        self._metadata = StackMetadata(
            shape_full=(0,) + self.frame_shape,
            shape_block=self.shape_block,
            padding=zeros,
            resolution=resolution_values,
            axis_order=axis_order,
            frequency=None if frequency is None else float(frequency),
            files=None,
            crop_start=zeros,
            crop_end=zeros,
            dtype=self.dtype.str,
        )

        self.path = Path(path)
        self._destination = destinations.prepare(self.path, overwrite)
        # From the first moment on, the folder opens as a (still empty) dataset. A dataset it
        # replaces is exchanged with it now (a live recording must be at its path) and deleted
        # when the writer closes.
        write_json_metadata(self._destination.folder, self._metadata, durable=self.durable)
        if self._destination.aside:
            self._destination.swap(self.durable)
        self._folder_fd = os.open(self.path, os.O_RDONLY)

        # state shared with the workers, under _lock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # wakes the committer
        self._slots = threading.Semaphore(self.max_pending_blocks)
        self._pending = 0  # blocks holding a slot: handed over, not committed nor dropped
        self._max_pending_seen = 0
        self._stopping = False
        self._free_buffers: list[np.ndarray] = []
        self._stored = StoredBuffers()  # compressed chunks' memory, reused block after block
        self._finished: dict[int, int] = {}  # block index -> frames, written as .tmp, not committed
        self._next_commit = 0
        self._frames_committed = 0
        self._error: BaseException | None = None  # the first failure, raised to the caller
        self._failed_index: int | None = None  # blocks from here on can never be published
        self._error_reported = False

        # main-thread state
        self._buffer: np.ndarray | None = None
        self._fill = 0
        self._by_frames = compressed_by_frames(self._encoding, self.frame_shape)
        self._frame_bytes = int(np.prod(self.frame_shape)) * self.dtype.itemsize
        self._filling: _BlockByFrames | None = None  # the buffer's block, once a run is handed
        self._handed = 0  # frames of the buffer handed to the workers
        self._next_block = 0
        self._frames_appended = 0
        self._closed = False
        self.threads = max(1, min(effective_threads(threads), self.max_pending_blocks))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="split_dataset_writer")
        # HDF5 serializes every call: one thread writes the files, compression never waits
        self._store = ThreadPoolExecutor(1, thread_name_prefix="split_dataset_store")
        self._committer = threading.Thread(
            target=self._run_committer, name="split_dataset_committer", daemon=True
        )
        self._committer.start()

    # --- folder ------------------------------------------------------------------------------

    def _block_name(self, index: int) -> str:
        return f"{index:04d}.h5"

    # --- public state ------------------------------------------------------------------------

    @property
    def frames_appended(self) -> int:
        """Frames given to ``append`` so far."""
        return self._frames_appended

    @property
    def frames_written(self) -> int:
        """Frames in committed blocks: durably on disk under their final names."""
        with self._lock:
            return self._frames_committed

    @property
    def blocks_written(self) -> int:
        """Committed block files."""
        with self._lock:
            return self._next_commit

    @property
    def pending_blocks(self) -> int:
        """Blocks handed to the workers and not yet committed (at most ``max_pending_blocks``)."""
        with self._lock:
            return self._pending

    @property
    def max_pending_seen(self) -> int:
        with self._lock:
            return self._max_pending_seen

    def __len__(self) -> int:
        return self._frames_appended

    def __repr__(self) -> str:
        return (
            f"SplitDatasetWriter('{self.path}', frame_shape={self.frame_shape}, "
            f"dtype={self.dtype}, frames_per_block={self.frames_per_block}, "
            f"appended={self._frames_appended}, written={self.frames_written})"
        )

    # --- appending ---------------------------------------------------------------------------

    def append(self, frames: Any) -> None:
        """Append one frame (``frame_shape``) or a stack of frames (``(n, *frame_shape)``)."""
        if self._closed:
            raise ValueError(f"{self.path}: the writer is closed")
        self._raise_worker_error()
        frames = np.asarray(frames)
        if frames.dtype != self.dtype:
            raise ValueError(
                f"frames have dtype {frames.dtype}, expected {self.dtype} "
                f"(the writer's dtype; convert before appending)"
            )
        if frames.shape == self.frame_shape:
            frames = frames[np.newaxis]
        elif frames.shape[1:] != self.frame_shape or frames.ndim != self.ndim:
            raise ValueError(
                f"frames have shape {frames.shape}, expected one frame of shape "
                f"{self.frame_shape} or a stack of shape (n, *{self.frame_shape})"
            )
        position, count = 0, frames.shape[0]
        while position < count:
            if self._buffer is None:
                self._buffer = self._new_buffer()
                self._fill = 0
            take = min(self.frames_per_block - self._fill, count - position)
            self._buffer[self._fill : self._fill + take] = frames[position : position + take]
            self._fill += take
            position += take
            self._frames_appended += take
            if self._fill == self.frames_per_block:
                self._submit_buffer()
            elif self._by_frames and (self._fill - self._handed) * self._frame_bytes >= RUN_BYTES:
                self._hand_run()

    def _hand_run(self) -> None:
        """Hand the frames appended since the last run to the workers to compress."""
        assert self._buffer is not None
        first, end = self._handed, self._fill
        if end == first:
            return
        if self._filling is None:
            self._filling = _BlockByFrames(self._next_block, self._buffer)
        block = self._filling
        with self._lock:
            block.running += 1
        self._handed = end
        self._pool.submit(self._compress_run, block, first, end)

    def _new_buffer(self) -> np.ndarray:
        """A block buffer: one a worker has finished with, or a new one. At most
        ``max_pending_blocks + 1`` ever exist (in flight, being filled, or free), and reusing
        them spares the page faults of fresh memory on every block."""
        with self._lock:
            if self._free_buffers:
                return self._free_buffers.pop()
        return np.empty(self.shape_block, self.dtype)

    def _submit_buffer(self) -> None:
        """Hand the current buffer (its filled frames) to the workers; no reference stays here."""
        assert self._buffer is not None
        by_frames = None
        if self._by_frames:
            self._hand_run()  # the frames not handed yet
            by_frames, self._filling, self._handed = self._filling, None, 0
        frames = self._fill
        block = self._buffer if self._fill == self.frames_per_block else self._buffer[: self._fill]
        self._buffer, self._fill = None, 0
        self._slots.acquire()  # back-pressure: wait while max_pending_blocks are in flight
        with self._lock:
            failed = self._error is not None
            if not failed:
                self._pending += 1
                self._max_pending_seen = max(self._max_pending_seen, self._pending)
        if failed:  # failed while we waited: these frames cannot be committed anymore
            self._slots.release()
            self._raise_worker_error()
        index = self._next_block
        self._next_block += 1
        if by_frames is not None:
            with self._lock:
                by_frames.frames = frames
                complete = by_frames.running == 0
            if complete:
                self._finish_by_frames(by_frames)
            return
        holder = [block]  # the worker empties it: no reference outlives the block's work
        del block
        try:
            self._pool.submit(self._work, index, holder)
        except BaseException:
            self._release_slot()
            raise

    def _release_slot(self) -> None:
        with self._lock:
            self._pending -= 1
        self._slots.release()

    # --- workers -----------------------------------------------------------------------------

    def _work(self, index: int, holder: list) -> None:
        """Compress one block (other encodings: write its ``NNNN.h5.tmp``), free its buffer,
        and queue it for the store thread."""
        block = holder.pop()
        frames = block.shape[0]
        temporary = self._temporary(index)
        prepared = None
        try:
            if self._publishable(index):  # else a block before it failed: it can never be
                prepared = prepare_block(
                    temporary,
                    block,
                    self._encoding,
                    block_start=self._block_start(index),
                    buffers=self._stored,
                )
        except BaseException as error:  # noqa: BLE001 - reported in the caller's thread
            self._fail(error, temporary, index)
        finally:
            self._keep_buffer(block, frames)
            del block
        if prepared is None:
            self._release_slot()
            return
        self._store.submit(self._store_block, index, frames, prepared)

    def _compress_run(self, block: _BlockByFrames, first: int, end: int) -> None:
        """Compress frames ``first:end`` of a block; the last run to finish of a block handed
        over whole sends it on."""
        chunks = None
        temporary = self._temporary(block.index)
        try:
            if self._publishable(block.index):
                # a run is compressed as a block of its own would be (compressed_by_frames:
                # always compressed, never written to the block's file by this call)
                run = block.buffer[first:end]
                prepared = prepare_block(temporary, run, self._encoding, buffers=self._stored)
                if prepared.stored is None:  # a run not compressed: its frames would be lost
                    raise RuntimeError(f"frames {first}:{end} of the block were not compressed")
                chunks = [part.starting_at(first) for part in prepared.stored]
        except BaseException as error:  # noqa: BLE001 - reported in the caller's thread
            self._fail(error, temporary, block.index)
        with self._lock:
            if chunks is None:
                block.failed = True
            else:
                block.runs[first] = chunks
            block.running -= 1
            complete = block.frames is not None and block.running == 0
        if complete:
            self._finish_by_frames(block)

    def _finish_by_frames(self, block: _BlockByFrames) -> None:
        """Every run of a block handed over is compressed: free its buffer, queue it for the
        store thread (or give its slot back if it cannot be published)."""
        frames = block.frames
        assert frames is not None
        self._keep_buffer(block.buffer, frames)
        runs = [part for first in sorted(block.runs) for part in block.runs[first]]
        block.runs.clear()
        if block.failed or not self._publishable(block.index):
            self._release_slot()
            return
        prepared = PreparedBlock(
            self._temporary(block.index),
            (frames,) + self.frame_shape,
            self.dtype,
            self._encoding,
            runs,
            self._block_start(block.index),
            self._stored,
        )
        self._store.submit(self._store_block, block.index, frames, prepared)

    def _temporary(self, index: int) -> Path:
        return self.path / (self._block_name(index) + ".tmp")

    def _block_start(self, index: int) -> tuple[int, ...]:
        return (index * self.frames_per_block,) + (0,) * len(self.frame_shape)

    def _keep_buffer(self, buffer: np.ndarray, frames: int) -> None:
        """A block's buffer, compressed or written: reused for a later block if the block was
        whole (the partial last one comes at close) and the writer goes on."""
        with self._lock:
            if frames == self.frames_per_block and not self._closed:
                self._free_buffers.append(buffer)

    def _store_block(self, index: int, frames: int, prepared: PreparedBlock) -> None:
        """Write a compressed block's ``NNNN.h5.tmp``, then leave it to the committer."""
        written = False
        try:
            if self._publishable(index):
                prepared.store()
                written = True
        except BaseException as error:  # noqa: BLE001 - reported in the caller's thread
            self._fail(error, prepared.temporary, index)
        finally:
            with self._changed:
                handed = written and self._publishable_locked(index)
                if handed:
                    self._finished[index] = frames
                    self._changed.notify()
            if not handed:
                self._release_slot()

    def _publishable(self, index: int) -> bool:
        with self._lock:
            return self._publishable_locked(index)

    def _publishable_locked(self, index: int) -> bool:
        return self._failed_index is None or index < self._failed_index

    def _fail(self, error: BaseException, path: Path, index: int) -> None:
        """Record a failure of block ``index``: blocks before it are still published."""
        wrapped = BlockWriteError.for_block(error, path, index)
        with self._changed:
            if self._error is None:
                self._error = wrapped
            if self._failed_index is None or index < self._failed_index:
                self._failed_index = index
            self._changed.notify()

    # --- committer ---------------------------------------------------------------------------

    def _run_committer(self) -> None:
        """Publish finished blocks in order; after a failure, drop the ones left waiting.

        Group commit: the blocks that have finished while the previous publication ran are
        published together, with one JSON rewrite and two folder fsyncs, so that the commit
        chain keeps up with the compressors when blocks are small or the disk is slow.
        """
        while True:
            with self._changed:
                while True:
                    dropped = [i for i in self._finished if not self._publishable_locked(i)]
                    for index in dropped:  # after a failure: free the slots of the blocks
                        del self._finished[index]  # that can never be published
                        self._pending -= 1
                        self._slots.release()
                    if self._next_commit in self._finished:
                        break
                    if self._stopping:  # all workers are done: nothing more will come
                        return
                    self._changed.wait()
                batch = []  # (index, frames) of the contiguous finished blocks, in order
                index = self._next_commit
                while index in self._finished:
                    batch.append((index, self._finished[index]))
                    index += 1
                committed = self._frames_committed
            published = self._publish(batch, committed)
            with self._lock:
                for index, frames in batch[:published]:
                    del self._finished[index]
                    self._frames_committed += frames
                    self._next_commit = index + 1
                self._pending -= published
            for _ in range(published):
                self._slots.release()

    def _publish(self, batch: list[tuple[int, int]], committed: int) -> int:
        """Make the blocks of ``batch`` durable and visible; returns how many were published
        (all of them, or the ones before a failure, which is then recorded)."""
        names = [self._block_name(index) for index, _ in batch]
        failure: tuple[BaseException, Path, int] | None = None
        ready = 0  # blocks fsynced (or not to be), in order
        for (index, _), name in zip(batch, names):
            try:
                if self.durable:
                    fsync_path(self.path / (name + ".tmp"))
            except BaseException as error:  # noqa: BLE001 - reported in the caller's thread
                failure = (error, self.path / (name + ".tmp"), index)
                break
            ready += 1
        published = 0
        if ready:
            total = committed + sum(frames for _, frames in batch[:ready])
            current, index = self.path / METADATA_SUFFIX, batch[0][0]
            try:
                # JSON first: it may announce more frames than the files hold, which the reader
                # accepts, never fewer (the reader refuses more files than the JSON's grid).
                # Then the renames that publish the blocks, in order. The folder is fsynced
                # after each step, so that this order also holds after a power cut.
                write_json_metadata(
                    self.path,
                    self._metadata.with_shape_full((total,) + self.frame_shape),
                    durable=self.durable,
                )
                if self.durable:
                    os.fsync(self._folder_fd)
                for name in names[:ready]:
                    current = self.path / name
                    os.replace(self.path / (name + ".tmp"), current)
                    published += 1
                current, index = self.path, batch[ready - 1][0] + 1
                if self.durable:
                    os.fsync(self._folder_fd)
            except BaseException as error:  # noqa: BLE001
                failure = (error, current, index)  # the first failure in the order of blocks
        if failure is not None:
            self._fail(*failure)
        return published

    def _raise_worker_error(self, again: bool = True) -> None:
        """Raise a worker's failure: on every ``append`` (the writer cannot go on), and on
        ``close`` only if no ``append`` has raised it yet."""
        with self._lock:
            error = self._error
        if error is not None and (again or not self._error_reported):
            self._error_reported = True
            raise error

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Write the partial last block, wait for the workers, write the final metadata."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._buffer is not None and self._fill and self._error is None:
                self._submit_buffer()  # the partial last block, stored truncated
            self._buffer, self._filling = None, None
        finally:
            self._pool.shutdown(wait=True)  # every block is compressed (or failed)...
            self._store.shutdown(wait=True)  # ...written (or failed)...
            with self._changed:
                self._stopping = True
                self._changed.notify()
            self._committer.join()  # ...and published (or dropped)
            self._free_buffers.clear()
            self._stored.clear()
            try:
                if self._error is not None:
                    self._remove_uncommitted()
            finally:
                os.close(self._folder_fd)
                self._destination.remove_replaced()
        self._raise_worker_error(again=False)

    def _remove_uncommitted(self) -> None:
        """After a failure, blocks after the failed one can never be committed: remove them."""
        for index in range(self._next_commit, self._next_block):
            with contextlib.suppress(OSError):
                self._temporary(index).unlink()

    def __enter__(self) -> SplitDatasetWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        # On an exception in the caller's loop the frames appended so far are still written;
        # a worker error already raised by append is not raised a second time.
        self.close()

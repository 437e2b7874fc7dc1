"""The offload's threads and memory settings: a reader ahead of the parse, a Parquet writer behind it."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import queue
import threading
from typing import Iterator

import pyarrow as pa


@contextlib.contextmanager
def offload_memory() -> Iterator[None]:
    """Memory settings for the length of an offload, restored after it.

    - Arrow allocates from jemalloc, which keeps freed pages for reuse a little while: the same
      buffers come round every batch, and the default pool hands them back to the OS and faults them
      in again, which cost about a fifth of the offload's time.
    - The cyclic garbage collector is paused: every consumed record is a tracked object, so it ran
      thousands of times per hour, holding the GIL the three threads share. The offload's objects are
      freed by reference counting; one collection at the end clears anything left.
    - At most two malloc arenas instead of one per thread and core, and the freed heap is handed back
      to the OS once, at the end. (Trimming after every batch kept RSS 45 MB lower but made the
      process fault its pages in again six times as often.)
    """
    previous_pool = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
        pass
    if _LIBC is not None:
        _LIBC.mallopt(-8, 2)  # M_ARENA_MAX
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
        gc.collect()
        pa.set_memory_pool(previous_pool)
        if _LIBC is not None:
            _LIBC.malloc_trim(0)


def _load_libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return None


_LIBC = _load_libc()


_DONE = object()


class Worker:
    """Calls `fn` on a background thread, in submission order, at most `depth` calls waiting. An error
    in `fn` is raised to the submitter (on its next call or on leaving the block); leaving the block
    waits for every call to finish."""

    def __init__(self, fn, depth: int = 2, name: str = "worker"):
        self.fn, self.error = fn, None
        self.q: queue.Queue = queue.Queue(depth)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while (args := self.q.get()) is not _DONE:
            if self.error is None:
                try:
                    self.fn(*args)
                except BaseException as exc:  # handed to the submitter
                    self.error = exc

    def __call__(self, *args) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(args)

    def __enter__(self) -> "Worker":
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.q.put(_DONE)
        self.thread.join()
        if exc_type is None and self.error is not None:
            raise self.error


def prefetched(batches: Iterator, depth: int = 2) -> Iterator:
    """Consume the next batches in a background thread while the caller decodes and writes this one
    (Arrow's JSON parser and the Parquet writer release the GIL); at most `depth` batches wait."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the caller
            q.put(exc)

    thread = threading.Thread(target=pump, name="offload-reader", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)

"""The offload's threads: a reader ahead of the parse, a Parquet writer behind it."""

from __future__ import annotations

import queue
import threading
from typing import Iterator

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

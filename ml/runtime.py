"""Process tuning: the garbage collector, the GIL, memory allocators and thread priorities.

Library code never changes process-wide state on its own: the entry points apply these settings
explicitly. `serving_tuning()` is for the sidecar (its own process, so it may keep the settings until it
exits). `offload_tuning` is a context manager an entry point hands to `offload_hour(tuning=...)`, which
holds it around the read, parse and write of the records: inside an Airflow worker the process outlives
the task, so everything changed is put back when the block ends. `limit_malloc_arenas()` cannot be undone
and belongs in a process that exits when its offload ends (`continuum-offload`). Every `Tuning` also
works as a context manager that puts back what it changed.
Why each value is what it is, with the measurements: bench/README.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)

# the young generation is collected every GC_YOUNG allocations instead of 700: every consumed record is a
# tracked object freed by reference counting, and the collector otherwise ran several times per batch
GC_YOUNG = 100_000
# ... and the scoring loop collects it itself once this many objects piled up: XGBoost leaves cyclic
# garbage behind every predict call, freed a few dozen at a time between batches instead of in one long pause
GC_IDLE_YOUNG = 1_000
# a waiting thread gets the GIL after this instead of Python's 5 ms: scorers give it up for each Arrow and
# XGBoost call and need it back at once
SWITCH_INTERVAL_S = 0.0005
# scoring threads run this many nice levels below the loop's thread, which sets the pipeline's pace
SCORER_NICE = 10
# the sidecar's HTTP port process runs this many nice levels below the sidecar (the lowest priority there is,
# below its scoring threads' SCORER_NICE): when both want the cores the stream gets them, and a flood of
# requests slows the answers instead of the scoring
PORT_NICE = 19
# malloc arenas while an offload runs, instead of one per thread and core
OFFLOAD_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter
_PR_SET_PDEATHSIG = 1  # Linux's prctl option


class Tuning:
    """Settings applied when made. `restore()`, or leaving a `with` block, puts back what they changed,
    in reverse order; without either they stay until the process exits."""

    def __init__(self) -> None:
        self._undo = contextlib.ExitStack()

    def restore(self) -> None:
        self._undo.close()

    def __enter__(self) -> "Tuning":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def serving_tuning() -> Tuning:
    """For a process that streams, applied once start-up is done (modules, models and clients made):
    freeze what exists out of the collector's reach, collect the young generation every GC_YOUNG
    allocations, and hand the GIL to a waiting thread every SWITCH_INTERVAL_S. Restoring puts back the
    thresholds and the switch interval and unfreezes (every frozen object, also any frozen before)."""
    tuning = Tuning()
    gc.collect()
    gc.freeze()
    tuning._undo.callback(gc.unfreeze)
    threshold = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *threshold[1:])
    tuning._undo.callback(gc.set_threshold, *threshold)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    tuning._undo.callback(sys.setswitchinterval, interval)
    return tuning


def offload_tuning() -> Tuning:
    """Memory settings for the length of an offload's pipeline; use it as a context manager.

    - Arrow allocates from jemalloc, which keeps freed pages for reuse a little while: the same buffers
      come round every batch, and the default pool hands them back to the OS and faults them in again.
    - The cyclic garbage collector is paused: every consumed record is a tracked object, and the
      offload's objects are freed by reference counting; one collection at the end clears anything left.
    On exit the collector is enabled again if it was, Arrow's previous default pool is back, and the
    freed heap is handed back to the OS once (not after every batch: pages would fault in again).
    """
    import pyarrow as pa

    tuning = Tuning()
    previous_pool = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
        pass
    collecting = gc.isenabled()
    gc.disable()

    def undo() -> None:
        if collecting:
            gc.enable()
        gc.collect()
        pa.set_memory_pool(previous_pool)
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)
    tuning._undo.callback(undo)
    return tuning


def limit_malloc_arenas(arenas: int = OFFLOAD_ARENAS) -> None:
    """At most `arenas` malloc arenas for the rest of the process (glibc; elsewhere nothing happens).

    This cannot be restored, so only a process that ends with its offload sets it, never a worker: glibc
    cannot report the limit in force, refuses 0 (its default, one arena per thread and core), and keeps
    every arena it made until exit.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, arenas)


def lower_priority(levels: int = SCORER_NICE) -> int:
    """Lower the calling thread's CPU priority by `levels` nice levels (at most to 19); returns the new nice
    value, or the unchanged one where threads have no priority of their own (not Linux) or it is refused.
    A thread pool's initializer: it touches only the pool's own threads, which end with the pool."""
    if sys.platform != "linux":  # elsewhere PRIO_PROCESS with a thread id would renice the whole process
        return os.getpriority(os.PRIO_PROCESS, 0)
    tid = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, tid)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(current + levels, 19))
    except OSError as exc:  # e.g. a sandbox that forbids it: scoring still runs, at the same priority
        log.warning("scoring thread priority unchanged (%s)", exc)
    return os.getpriority(os.PRIO_PROCESS, tid)


def collect_young() -> int:
    """Collect the youngest generation if GC_IDLE_YOUNG objects have piled up in it, and an older one
    when its turn has come, as the automatic collector would; returns the generation collected or -1.
    For a loop with the young generation's threshold raised (`serving_tuning`): called between batches,
    each pause is short instead of one long one at GC_YOUNG."""
    young, middle, old = gc.get_count()
    if young < GC_IDLE_YOUNG or not gc.isenabled():
        return -1
    _, every_middle, every_old = gc.get_threshold()
    generation = 0
    if middle + 1 >= every_middle:
        generation = 2 if old + 1 >= every_old else 1
    gc.collect(generation)
    return generation


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the thread of `parent` that started it ends (Linux's
    PR_SET_PDEATHSIG), and exit now if `parent` is already gone: for a child that must not outlive its
    parent (the sidecar's HTTP port process, which at the lowest priority on busy cores can take seconds
    to notice). Elsewhere only the check is made."""
    libc = _libc() if sys.platform == "linux" else None
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(0)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None

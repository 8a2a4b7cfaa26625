"""Handing the memory a search freed back to the system between trials.

glibc keeps what a thread frees inside that thread's arena, and keeps blocks below its mmap
threshold (which grows to 32 MB after the first large block is freed) on the heap. Folds fit
on pool threads, each with an arena of its own, so on a large table the matrices and models
of finished trials stay resident and the next trial's peak starts from there (an
experiment that called ``malloc_trim`` every quarter second through a ``--budget 60`` run on
military, 1.06 M rows, took its peak from 2,068 to 1,783 MB). A trim walks every arena,
so it runs after a trial, and only once resident memory has grown by ``GROWTH_BYTES`` since
the last one: a small table's trials seldom grow it that much. A trim costs milliseconds
(military at 60 s: 14 trims, 49 ms in all, 812 MB handed back; diamonds at 30 s: 6 trims,
14 ms). At 256 MB the trims came too seldom, and a trial's peak started from the memory
earlier trials had freed (military at 60 s: peak 1,029 MB; 941 MB at 32).

pandas keeps string columns in Arrow buffers, which Arrow allocates from its own pool
(mimalloc), and mimalloc holds pages that a search's column conversions freed: the same trim
asks that pool to give them back too (military at 60 s: 25 MB of the 167 MB it held).

CatBoost links a mimalloc of its own, which no call from here reaches: it returns a freed
page only once a delay has passed *and* the thread that freed it allocates again, and its
pool threads sleep after a fit, so a fit's working memory stayed resident for the rest of
the process (military's depth-8 fit: 128 MB). :func:`purge_promptly` sets mimalloc's
documented ``MIMALLOC_PURGE_DELAY`` to 0 before CatBoost is first imported, and freed pages
go back at once (that fit: 10 MB left; its time 1.90 -> 1.97 s). Only for large tables
(:data:`PROMPT_PURGE_ROWS`): on small ones a fit's memory is small and purging costs time, as
CatBoost's target statistics allocate and free all the time (ames_housing, 2,197 rows, 74
columns: a 5-fold CatBoost trial 59 s with the default delay, 101 s without one).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable

__all__ = ["GROWTH_BYTES", "PROMPT_PURGE_ROWS", "purge_promptly", "release_freed_memory",
           "resident_bytes"]

#: Growth of resident memory since the last trim that makes the next one worth its cost.
GROWTH_BYTES = 32 * 2**20
#: Training rows from which freed pages are worth returning at once (see the module's doc).
PROMPT_PURGE_ROWS = 50_000

_lock = threading.Lock()
_after_last_trim: int | None = None  # resident bytes after the last trim (or first look)


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (Linux); None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # glibc only (not musl)
            trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
            return trim
    return None


def purge_promptly(rows: int) -> bool:
    """For a table of ``rows`` training rows from :data:`PROMPT_PURGE_ROWS` on, have mimalloc
    instances loaded from now on (CatBoost's) return freed pages at once, unless the user
    set ``MIMALLOC_PURGE_DELAY`` already; whether it is set now. One loaded before keeps its
    setting: mimalloc reads it when it starts."""
    if rows < PROMPT_PURGE_ROWS:
        return False
    os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")
    return os.environ["MIMALLOC_PURGE_DELAY"] == "0"


def _release_arrow_pool() -> None:
    arrow = sys.modules.get("pyarrow")  # only a process that already uses Arrow has a pool
    if arrow is not None:
        with contextlib.suppress(AttributeError, NotImplementedError):
            arrow.default_memory_pool().release_unused()


def release_freed_memory(min_growth: int = GROWTH_BYTES) -> bool:
    """Return freed heap memory to the system if resident memory grew by ``min_growth``
    bytes since the last trim. True when a trim ran."""
    global _after_last_trim
    trim = _malloc_trim()
    now = resident_bytes()
    if trim is None or now is None:
        return False
    with _lock:
        if _after_last_trim is None:  # the first look sets where growth is counted from
            _after_last_trim = now
        if now - _after_last_trim < min_growth:
            return False
        trim(0)
        _release_arrow_pool()
        _after_last_trim = resident_bytes() or now
    return True

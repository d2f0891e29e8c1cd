"""Returning freed memory to the kernel at the few points where it matters.

A worker maps every resident page of the master it forks from, free ones included, and
they all count in its RSS; a worker's own first config load also frees more than it keeps
(the decompressed snapshot, the build's temporaries). CPython gives empty pymalloc arenas
back by itself, but glibc keeps freed heap pages until ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import gc

__all__ = ["release"]

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):   # not glibc: nothing to trim
    _malloc_trim = None


def release() -> None:
    """Collect garbage, then hand glibc's free heap pages back (a few ms; cold paths only:
    start-up, before forking workers, after a worker's first table)."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)

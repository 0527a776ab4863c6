"""Hand memory a departed client used back to the operating system.

When a client that had megabytes of replies queued leaves (or is cut off for not reading),
Python frees those buffers at once: nothing of the session stays referenced. But glibc's
allocator keeps freed heap pages for reuse, so the process's resident size stays up by about
what was queued. ``malloc_trim(0)`` returns those pages; on a heap of a few hundred MB it takes
about a millisecond, so the gateway calls it only after a session whose queue grew past
``TRIM_AFTER`` bytes. Elsewhere (macOS, Windows, musl) there is nothing to call: those
allocators, or the lack of one, decide on their own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["TRIM_AFTER", "give_back_freed_memory"]

#: A session whose queued replies reached this many bytes gets its memory trimmed when it ends.
TRIM_AFTER = 4 << 20


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # no libc to load, or not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


def give_back_freed_memory() -> bool:
    """Return the allocator's free pages to the OS; False where that cannot be done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

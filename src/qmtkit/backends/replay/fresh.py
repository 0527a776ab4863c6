"""Large arrays in memory mapped for them alone, in base pages, populated in one call.

A replay lays out every record of every code once (a whole market: ~0.9 GB). numpy asks
the kernel for transparent huge pages on arrays that large; on a virtual machine the first
touch of fresh huge pages has cost 0.2 to 1.7 s of system time for that layout, where the
same memory in base pages, populated by the mapping call itself, costs a steady ~0.3 s.
"""

from __future__ import annotations

import mmap
from typing import Any, Final

import numpy as np
import numpy.typing as npt

#: Below this an array is numpy's own (numpy asks for huge pages only from 4 MiB on).
MAPPED_FROM: Final = 1 << 22

_FLAGS: Final = (
    getattr(mmap, "MAP_PRIVATE", 0)
    | getattr(mmap, "MAP_ANONYMOUS", 0)
    | getattr(mmap, "MAP_POPULATE", 0)
)


def empty(count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised 1-d array of ``count`` values of ``dtype``, to be written in full."""
    if count < 0:
        raise ValueError(f"bad array length {count}: expected >= 0")
    nbytes = count * dtype.itemsize
    if nbytes < MAPPED_FROM or not getattr(mmap, "MAP_ANONYMOUS", 0):
        return np.empty(count, dtype=dtype)
    # The array keeps the mapping alive; it is unmapped when the last view is gone.
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=_FLAGS), dtype=dtype)

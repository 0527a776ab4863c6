"""Replacing small files atomically and durably (manifests, ids, sidecars).

A reader sees the old content or the new, never half of either, and after a crash the file
holds one of them: the new bytes go to a temporary file beside the target, are forced to disk,
renamed over the target, and the rename itself is made durable by syncing the directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` by a file holding ``data``, atomically and durably.

    ``data`` is the bytes, or a function that writes them into the open file (for content
    written in pieces, such as a cache shard's arrays, which are never joined in memory).
    """
    # Unique per writer, so two processes replacing the same file never share a temp file.
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


__all__ = ["fsync_dir", "write_atomically"]

"""Small files are replaced whole: the old content or the new, never a mix, and no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmtkit.atomicfile import write_atomically


def test_a_file_is_created_and_then_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "id"
    write_atomically(path, b"first\n")
    assert path.read_bytes() == b"first\n"
    write_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["id"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "id"
    write_atomically(path, b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["id"]

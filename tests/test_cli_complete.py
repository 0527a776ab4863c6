"""The qmtkit command is complete: version, instruments, help everywhere, hints on empty results."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from qmtkit import __version__
from qmtkit.cli import build_parser, main


def parsers(
    parser: argparse.ArgumentParser, name: str = "qmtkit"
) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                out += parsers(sub, f"{name} {sub_name}")
    return out


def test_every_option_and_argument_has_help_text() -> None:
    missing = [
        f"{name}: {action.dest}"
        for name, parser in parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not (action.help or "").strip()
    ]
    assert not missing, missing


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"qmtkit {__version__}"


def test_instruments_lists_code_name_board_and_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    assert main(["instruments", "--board", "star", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "code" in out and "up_limit" in out and "down_limit" in out
    rows = [line for line in out.splitlines() if ".SH" in line]
    assert rows and all("688" in r or "689" in r for r in rows)
    assert all("star" in r for r in rows)


def test_instruments_of_a_sector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    assert main(["instruments", "--sector", "上证A股", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "600000.SH" in out and ".SZ" not in out


def test_instruments_of_an_unknown_sector_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    assert main(["instruments", "--sector", "nope", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown sector 'nope'" in err and "上证A股" in err


def test_bars_of_a_code_never_downloaded_fail_with_the_download_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bars", "600000.SH", "--home", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "qmtkit download 600000.SH --period 1d" in captured.err


def test_import_datadir_of_an_empty_folder_fails_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import-datadir", str(empty), "--home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err and "userdata_mini/datadir" in err


def test_a_repeated_download_says_nothing_new_came(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path / "elsewhere"))  # --home must win
    args = ["download", "600000.SH", "--start", "20240101", "--home", str(tmp_path)]
    assert main(args) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert first.startswith("fetched ") and first != "fetched 0 bars"
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "fetched 0 bars: the cache already had them"
    )
    assert (tmp_path / "sim").is_dir() and not (tmp_path / "elsewhere").exists()


async def test_an_unlisted_code_points_at_the_instruments_command(tmp_path: Path) -> None:
    import qmtkit
    from qmtkit.errors import InvalidCode

    async with qmtkit.connect("sim://", home=tmp_path) as qk:
        with pytest.raises(InvalidCode, match="`qmtkit instruments` lists what is"):
            await qk.data.dividends("600001.SH")

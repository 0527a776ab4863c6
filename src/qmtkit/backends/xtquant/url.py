"""The ``xtquant://`` URL and the words used when MiniQMT cannot be reached (pure, no I/O)."""

from __future__ import annotations

import re
from pathlib import PureWindowsPath
from typing import Final
from urllib.parse import parse_qsl, unquote

from qmtkit.errors import InvalidArgument

#: The largest session id xtquant accepts.
MAX_SESSION: Final = 2**31 - 1

INSTALL_HINT: Final = (
    "install xtquant on the Windows machine running MiniQMT (pip install xtquant), "
    "or use qmtkit://HOST:PORT to reach a qmtkit gateway that runs there"
)


# --------------------------------------------------------------------------- URL


def parse_url(url: str) -> tuple[str, int | None]:
    """Split ``xtquant://<userdata_mini path>?session=N`` into (path, session or None).

    Windows paths may be written with either slash (``xtquant://D:/qmt/userdata_mini``,
    ``xtquant:///D:/qmt/userdata_mini``) and come back with backslashes; percent-escapes are
    decoded.
    """
    if not isinstance(url, str) or not url.lower().startswith("xtquant://"):
        raise InvalidArgument(
            f"not an xtquant URL: {url!r}; expected xtquant://<userdata_mini path>?session=N, "
            "e.g. xtquant://D:/qmt/userdata_mini?session=123456"
        )
    rest = url[len("xtquant://") :]
    raw_path, _, query = rest.partition("?")
    path = unquote(raw_path)
    if re.match(r"^/[A-Za-z]:", path):
        path = path[1:]
    if re.match(r"^[A-Za-z]:", path):
        path = str(PureWindowsPath(path))  # MiniQMT gets the folder in Windows spelling
    if not path.strip("/\\"):
        raise InvalidArgument(
            f"xtquant URL {url!r} names no folder: give the path of MiniQMT's userdata_mini "
            "folder, e.g. xtquant://D:/qmt/userdata_mini?session=123456"
        )
    session: int | None = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "session":
            raise InvalidArgument(
                f"unknown parameter {key!r} in xtquant URL {url!r}; the only one is session=N"
            )
        session = check_session(value, url)
    return path, session


def check_session(value: object, where: object) -> int:
    try:
        session = int(str(value))
    except ValueError:
        session = 0
    if not 1 <= session <= MAX_SESSION:
        raise InvalidArgument(
            f"bad session id {value!r} in {where!r}: expected a whole number from 1 to "
            f"{MAX_SESSION}, different from every other xtquant program's"
        )
    return session


def connect_error_message(path: str, session: int, result: object) -> str:
    """What ``XtQuantTrader.connect()`` failing means and what to check, for the error."""
    tail = PureWindowsPath(path).name
    wrong_folder = (
        f" (this path ends in {tail!r}, not 'userdata_mini')"
        if tail.lower() not in ("userdata_mini", "userdata")
        else ""
    )
    return (
        f"MiniQMT refused the xtquant connection: XtQuantTrader({path!r}, {session}).connect() "
        f"returned {result!r}. The documented causes, to check in this order:\n"
        "  1. the MiniQMT terminal is not running or not logged in with minimal / independent "
        "trading mode (极简模式) ticked on its login screen;\n"
        "  2. the path does not point at the terminal's userdata_mini folder (e.g. "
        f"D:\\qmt\\userdata_mini){wrong_folder};\n"
        "  3. this process cannot write into that folder (a terminal installed under C:\\ "
        "needs the program run as administrator; creating a file there tells you: a "
        "PermissionError means no);\n"
        f"  4. session id {session} is in use by another program or was used less than 3 s ago "
        "- pass another one (xtquant://...?session=N);\n"
        "  5. if the folder holds no up_queue_xtquant file, the broker has not enabled "
        "trading through xtquant for the account - ask the broker."
    )

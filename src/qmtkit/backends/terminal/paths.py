"""Where a local terminal lives: its directory, socket, host lock and markers; what names it.

A terminal is named by ``(home, terminal)`` and lives in ``<home>/sim/<terminal>/`` (the
simulator's own state directory, which holds its journal). That directory is made ``0700``:
only the user who owns it can reach the socket inside, which is the whole of local access
control on a Unix socket (the TCP channel adds a token file: ``backends.terminal.channel``).
A socket path must fit ``sun_path`` (about 107 bytes); a longer one is placed in a
private per-user directory (``$XDG_RUNTIME_DIR`` or the temp directory, ``qmtkit-<uid>``,
``0700`` and owned by the user) under a hash of the terminal directory, so every program
computes the same place.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from qmtkit.backends.sim.backend import DEFAULT_TERMINAL, default_home, terminal_name
from qmtkit.backends.sim.universe import DEFAULT_SEED
from qmtkit.errors import InvalidArgument

#: ``sun_path`` holds 108 bytes on Linux (104 on macOS), NUL included; stay well below both.
MAX_SOCKET_PATH = 100
#: The simulator URL options that change what the terminal is (compared on attach).
IDENTITY = ("seed", "clock", "clock_start", "speed", "cash", "step")
_DEFAULTS = {"seed": float(DEFAULT_SEED), "cash": 1_000_000.0}


@dataclass(frozen=True)
class TerminalPaths:
    """The files of one local terminal."""

    home: Path
    terminal: str

    @property
    def directory(self) -> Path:
        """``<home>/sim/<terminal>``: the simulator's state directory, private to the user."""
        return self.home / "sim" / self.terminal

    @property
    def lock(self) -> Path:
        """Held (``flock``) by the process hosting the terminal, for as long as it hosts."""
        return self.directory / "terminal.lock"

    @property
    def stopped(self) -> Path:
        """Present after ``qmtkit terminal stop``: attached programs do not start a new host."""
        return self.directory / "terminal.stopped"

    @property
    def port_file(self) -> Path:
        """``PORT TOKEN`` of the loopback TCP channel (where there are no Unix sockets)."""
        return self.directory / "terminal.port"

    @property
    def sessions(self) -> Path:
        """Where the xtquant session ids in use hold their leases."""
        return self.directory / "sessions"

    @property
    def socket(self) -> Path:
        """The Unix domain socket the host listens on."""
        direct = self.directory / "terminal.sock"
        if len(os.fsencode(direct)) <= MAX_SOCKET_PATH:
            return direct
        digest = hashlib.sha256(os.fsencode(self.directory.resolve())).hexdigest()[:24]
        return runtime_dir() / f"{digest}.sock"

    def prepare(self) -> None:
        """Make the terminal directory (``0700``) and, if used, the private socket directory."""
        private_dir(self.directory)
        if self.socket.parent != self.directory:
            private_dir(self.socket.parent)


def runtime_dir() -> Path:
    """The per-user directory for sockets whose natural path would be too long."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(base) / f"qmtkit-{uid}"


def private_dir(path: Path) -> None:
    """Make ``path`` (and parents) and restrict it to its owner; refuse one owned by another."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name != "posix":
        return
    st = path.stat()
    if st.st_uid != os.getuid():
        raise InvalidArgument(
            f"the terminal directory {path} belongs to uid {st.st_uid}, not to you "
            f"(uid {os.getuid()}): choose a QMTKIT_HOME of your own"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


def paths_of(url: str) -> TerminalPaths:
    """The terminal a ``sim://`` URL names (its ``home`` and ``terminal`` options)."""
    query = dict(parse_qsl(urlsplit(url).query))
    home = Path(query["home"]).expanduser() if query.get("home") else default_home()
    return TerminalPaths(home, terminal_name(query.get("terminal", DEFAULT_TERMINAL)))


def identity(url: str) -> dict[str, str]:
    """The options that make a terminal what it is, normalised (defaults left out).

    Two programs with the same home and terminal but different identities would disagree
    about prices or time, so a program whose identity differs from the host's is refused.
    """
    query = dict(parse_qsl(urlsplit(url).query))
    out: dict[str, str] = {}
    for name in IDENTITY:
        if name not in query:
            continue
        raw = query[name].strip()
        if name == "clock":
            if raw != "session":
                out[name] = raw
            continue
        if name == "clock_start":
            out[name] = raw
            continue
        try:
            value = float(raw)
        except ValueError:
            raise InvalidArgument(f"bad {name}={raw!r} in {url!r}: expected a number") from None
        if value != _DEFAULTS.get(name):
            out[name] = repr(value)
    return out


__all__ = [
    "IDENTITY",
    "MAX_SOCKET_PATH",
    "TerminalPaths",
    "identity",
    "paths_of",
    "private_dir",
    "runtime_dir",
]

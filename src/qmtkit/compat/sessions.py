"""XtQuantTrader session ids: one live holder per id and terminal, as MiniQMT allows.

MiniQMT refuses a ``connect()`` whose session id is already in use on that terminal (its FAQ
adds that two processes connecting with the same id must be about 3 seconds apart). On the
shared simulator terminal a session id is a lease: a lock file ``sessions/<id>.lock`` in the
terminal directory, held from ``connect()`` until ``stop()`` or the holder's exit (the system
releases it even after a crash), so a live id is refused in this process and in any other,
and a released one may be used again at once.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from qmtkit.backends.terminal.paths import paths_of, private_dir
from qmtkit.recordlog import FileLock


def lease_session(url: str, session: int) -> FileLock | None:
    """Hold ``session`` on the terminal ``url`` names; ``JournalLocked`` if it is in use.

    Only the simulator's terminals are leased here (None for other backends: a real MiniQMT
    enforces its own rule, a gateway's venue its own).
    """
    if urlsplit(url).scheme != "sim":
        return None
    paths = paths_of(url)
    private_dir(paths.sessions)
    lock = FileLock(
        paths.sessions / f"{int(session)}.lock",
        what=f"XtQuantTrader session {session} of the terminal {paths.directory}",
        hint="use another session id (MiniQMT refuses a session id that is in use)",
    )
    lock.acquire()
    return lock


__all__ = ["lease_session"]

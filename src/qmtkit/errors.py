"""One exception hierarchy for qmtkit.

Every message says what was wrong, quotes the offending value and says what would be right.
"""

from __future__ import annotations


class QmtkitError(Exception):
    """Base class of every error qmtkit raises on purpose."""


class InvalidArgument(QmtkitError, ValueError):
    """A public entry point was given a value it cannot accept."""


class InvalidCode(InvalidArgument):
    """A security code that does not parse (expected e.g. ``600000.SH``)."""


class InvalidPeriod(InvalidArgument):
    """A K-line period qmtkit does not know (expected one of ``tick 1m 5m ... 1mon``)."""


class UnknownAccount(InvalidArgument):
    """An account request named an account the venue does not hold (nothing was created)."""


class BackendError(QmtkitError):
    """The backend failed to serve a request."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or was closed."""


class Unsupported(BackendError):
    """The backend in use cannot serve this request at all."""


class JournalLocked(QmtkitError):
    """Another process holds the simulator journal."""


class JournalMismatch(QmtkitError):
    """A report journal belongs to another venue's history than the one being served."""


class CacheError(QmtkitError):
    """The local data cache is missing, truncated or corrupted."""


class ClosedError(QmtkitError):
    """An object was used after the context that owns it was closed."""


class JournalDamaged(CacheError):
    """A journal or record log is damaged before its end (not a torn last write)."""

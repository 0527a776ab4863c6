"""``qmtkit run SCRIPT [ARGS]``: run an unchanged xtquant script on qmtkit.

The script runs as ``__main__`` with its own ``sys.argv``, after ``install()`` made
``import xtquant`` resolve to the shim. Its stdout is untouched; qmtkit's own messages go to
stderr. Ctrl-C ends it cleanly (exit code 130 unless the script's blocking loop returned).
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from qmtkit.compat import install
from qmtkit.errors import QmtkitError

__all__ = ["main", "run_script"]

log = logging.getLogger("qmtkit.compat")


def _log_to_stderr() -> None:
    root = logging.getLogger("qmtkit")
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("qmtkit %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


#: Environment variable that makes ``qmtkit run`` print full tracebacks (as ``--debug``).
DEBUG_ENV = "QMTKIT_DEBUG"
_COMPAT_HINT = (
    "qmtkit run: the script imports xtquant's data functions, whose answers are pandas "
    "objects, and pandas is not installed: pip install 'qmtkit[compat]'"
)


def run_script(
    path: str | os.PathLike[str],
    args: Sequence[str] = (),
    backend: str | None = None,
    *,
    debug: bool = False,
) -> int:
    """Run the xtquant script at ``path`` with ``args`` on ``backend``; returns an exit code.

    0 when the script ends normally, its ``sys.exit`` code, 1 on an uncaught exception, 2 when
    the script cannot be found, 130 on Ctrl-C. A qmtkit error (``QmtkitError``) or a missing
    ``compat`` extra is told in one line on stderr; any other exception, or every one with
    ``debug`` (or ``$QMTKIT_DEBUG=1``), prints its traceback.
    """
    debug = debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    script = Path(path)
    if not script.is_file():
        print(f"qmtkit run: no such script {str(path)!r}", file=sys.stderr)
        return 2
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        print(f"qmtkit run: script arguments must be strings, got {args!r}", file=sys.stderr)
        return 2
    _log_to_stderr()
    try:
        install(backend)
    except Exception as exc:
        print(f"qmtkit run: {exc}", file=sys.stderr)
        return 2
    saved_argv = sys.argv[:]
    script_dir = str(script.resolve().parent)
    sys.argv = [str(script), *args]
    sys.path.insert(0, script_dir)
    code = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        print("qmtkit run: interrupted", file=sys.stderr)
        code = 130
    except BaseException as exc:
        _report(exc, debug)
        code = 1
    finally:
        sys.stdout.flush()
        _close()
        sys.argv = saved_argv
        if script_dir in sys.path:
            sys.path.remove(script_dir)
    return code


def _report(exc: BaseException, debug: bool) -> None:
    """Tell an uncaught exception: one line for what qmtkit knows, else the traceback."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    elif isinstance(exc, ModuleNotFoundError) and exc.name == "pandas":
        print(_COMPAT_HINT, file=sys.stderr)
    elif isinstance(exc, QmtkitError):
        text = " ".join(str(exc).split())
        print(
            f"qmtkit run: {type(exc).__name__}: {text} (traceback: --debug or {DEBUG_ENV}=1)",
            file=sys.stderr,
        )
    else:
        traceback.print_exc(file=sys.stderr)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _close() -> None:
    """Close every connection the script left open (its journals are flushed)."""
    from qmtkit.compat._bridge import bridge

    try:
        bridge().shutdown()
    except Exception:
        log.exception("closing qmtkit connections failed")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qmtkit.compat.runner [--debug] [--backend URL] SCRIPT [ARGS...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    backend = None
    debug = False
    if argv and argv[0] == "--debug":
        debug, argv = True, argv[1:]
    if len(argv) >= 2 and argv[0] == "--backend":
        backend, argv = argv[1], argv[2:]
    if not argv:
        print(
            "usage: python -m qmtkit.compat.runner [--debug] [--backend URL] SCRIPT [ARGS...]",
            file=sys.stderr,
        )
        return 2
    return run_script(argv[0], argv[1:], backend, debug=debug)


if __name__ == "__main__":
    sys.exit(main())

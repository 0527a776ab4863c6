"""Developer sessions: tests, every supported Python, lint (ruff + mypy --strict), bench, demo."""

from __future__ import annotations

import glob
import os

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"
# An interpreter that is not installed skips its session instead of failing the run.
nox.options.error_on_missing_interpreters = False

#: The Pythons pyproject.toml declares; `nox -s pythons` runs the suite on each one present.
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
# pyenv keeps every version under ~/.pyenv/versions, but its shims answer only for the
# selected ones: put each installed version's own bin first so nox finds it by name.
for _bin in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin"))):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=list(SUPPORTED))
def pythons(session: nox.Session) -> None:
    """The suite on every supported Python present; a warning raised from qmtkit fails it."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-W", "error:::qmtkit", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on src/."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks")
    session.run("mypy", "--strict", "src/qmtkit")


@nox.session
def stress(session: nox.Session) -> None:
    """The long crash, damage and hostile-client probes (tests/stress/; not run by .ci/run)."""
    session.install("-e", ".[test]")
    session.env["QMTKIT_STRESS"] = "1"
    session.run("pytest", "-q", "tests/stress", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark and rewrite the tables in docs/benchmarks.md."""
    session.install("-e", ".[test]", "backtrader>=1.9.78")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main demo: an async strategy on the embedded simulator."""
    session.install("-e", ".")
    session.run("qmtkit", "demo", *session.posargs)

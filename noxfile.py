"""Developer sessions: tests, lint (ruff + mypy --strict), bench, demo."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on src/."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks")
    session.run("mypy", "--strict", "src/qmtkit")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark and rewrite the tables in docs/benchmarks.md."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main demo: an async strategy on the embedded simulator."""
    session.install("-e", ".")
    session.run("qmtkit", "demo", *session.posargs)

"""The ``qmtkit serve`` command-line options, kept apart from the server so that building the
``qmtkit`` command's parser does not load the gateway (TLS, certificates) for every command."""

from __future__ import annotations

import argparse

from qmtkit.wire.protocol import DEFAULT_PORT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``qmtkit serve`` options to ``parser``."""
    parser.add_argument("--backend", default=None, help="backend URL to serve (default sim://)")
    parser.add_argument(
        "--listen", default=f"127.0.0.1:{DEFAULT_PORT}", help="HOST:PORT to listen on"
    )
    parser.add_argument(
        "--token", default=None, help="shared token, 32+ characters (default $QMTKIT_TOKEN)"
    )
    parser.add_argument(
        "--gen-token", action="store_true", help="print a fresh random token and exit"
    )
    parser.add_argument("--tls-cert", default=None, help="PEM certificate chain for TLS")
    parser.add_argument("--tls-key", default=None, help="PEM private key for TLS")
    parser.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME)")
    parser.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="serve without a token (loopback addresses only)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain TCP (no TLS) on a non-loopback address: tokens and orders in clear",
    )
    parser.add_argument(
        "--client-buffer-mb",
        type=int,
        default=32,
        metavar="MB",
        help="replies queued for one client before it is disconnected as not reading (default 32)",
    )
    parser.add_argument(
        "--busy-poll",
        metavar="MICROSECONDS",
        default="0",
        help="poll this long before sleeping after activity: lower latency, more CPU "
        "(0..100000; default 0 = off)",
    )


__all__ = ["add_arguments"]

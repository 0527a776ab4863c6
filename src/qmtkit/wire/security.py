"""Authentication and TLS helpers for the gateway and its clients."""

from __future__ import annotations

import hmac
import secrets
import ssl
from pathlib import Path

from qmtkit.errors import InvalidArgument

#: Tokens shorter than this are refused: they could be guessed.
MIN_TOKEN_LENGTH = 32


def generate_token(nbytes: int = 32) -> str:
    """A fresh random token, URL-safe (43 characters), for ``qmtkit serve --token``."""
    return secrets.token_urlsafe(nbytes)


def check_token_value(token: object) -> str:
    """Validate a token chosen for a gateway and return it."""
    if not isinstance(token, str):
        raise InvalidArgument(f"token must be a string, got {type(token).__name__} {token!r}")
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidArgument(
            f"token {token[:2]!r}... is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
            "(`qmtkit serve --gen-token` prints a fresh one)"
        )
    return token


def token_matches(expected: str, given: str) -> bool:
    """Compare a presented token with the expected one in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def server_tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side TLS context from a PEM certificate chain and its private key."""
    for label, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise InvalidArgument(f"TLS {label} file {str(path)!r} does not exist")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise InvalidArgument(
            f"cannot load TLS certificate {str(cert)!r} with key {str(key)!r}: {exc}"
        ) from None
    return ctx


def client_tls_context(cafile: str | Path | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A client-side TLS context trusting ``cafile`` (or the system store when None).

    ``verify=False`` turns off certificate and host-name checks: the link is still encrypted but
    anyone in the middle can read it, so use it only to debug.
    """
    if cafile is not None and not Path(cafile).is_file():
        raise InvalidArgument(f"TLS CA file {str(cafile)!r} does not exist")
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


__all__ = [
    "MIN_TOKEN_LENGTH",
    "check_token_value",
    "client_tls_context",
    "generate_token",
    "server_tls_context",
    "token_matches",
]

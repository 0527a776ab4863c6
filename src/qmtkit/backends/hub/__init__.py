"""Serving one Backend to many clients over the gateway's wire (the hub under ``qmtkit serve``).

``hub.gateway.Gateway`` multiplexes subscriptions and accounts, journals reports
(``hub.journal``) and runs each connection (``hub.session``, logins paced by ``hub.guard``).
Its two users listen for it: ``qmtkit serve`` (``gateway.server``: TCP/TLS, tokens, risk at the
venue, the command line) and the shared local terminal (``backends.terminal``).
"""

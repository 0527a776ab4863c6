"""The gateway's wire, shared by both ends: framed protocol, asyncio fast stream, TLS and tokens.

It sits below both the gateway server (``qmtkit.gateway``) and the remote backend
(``qmtkit.backends.remote``), so neither end imports the other.
"""

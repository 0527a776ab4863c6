"""Test double of the xtquant package (see ../README.md). Not the real thing."""

__version__ = "fake-250807"

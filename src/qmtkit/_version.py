"""The package version, in a leaf module: any layer may name it without loading the client."""

__version__ = "0.1.0"

"""The fake package's shared state (as in the real package's ``baostock.common``)."""

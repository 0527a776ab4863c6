"""Shared fakes and builders for the suite; imported as ``support.<name>``, they hold no tests."""

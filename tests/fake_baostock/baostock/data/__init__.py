"""Result objects."""

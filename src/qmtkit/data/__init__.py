"""The data layer: columnar cache, sources, calendar, adjustment and resampling."""

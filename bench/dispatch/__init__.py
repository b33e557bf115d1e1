"""Benchmark of the dispatch queries: nearest units by distance and by drive time."""

"""Benchmark of the closure statistics (town x month x platform from the event log)."""

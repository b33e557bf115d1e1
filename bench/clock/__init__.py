"""Benchmark of the event-log guard and the cut-off stored facts (issue #23)."""

"""Benchmark of the planner tools (bulk re-assignment, village redraw)."""

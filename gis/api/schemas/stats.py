"""Reply bodies of the statistics endpoints (JSON; the same rows are served as CSV)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class StatsTable(BaseModel):
    """A table of figures: one row per group, columns in ``columns`` order.

    Definitions of every figure are in docs/workflow.md; rates are fractions (0.998 = 99.8 %)
    and null where the denominator is zero.
    """

    start: datetime = Field(description="The cohort: cases received at or after this time…")
    end: datetime = Field(description="…and before this time")
    as_of: datetime = Field(description="Outcomes are read from the events up to this time")
    group_by: list[str]
    columns: list[str]
    rows: list[dict[str, Any]]

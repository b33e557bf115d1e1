"""Replies about background jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class JobRead(BaseModel):
    """A background job: how far it is, and where its result is once it has succeeded."""

    id: int
    kind: str = Field(description="redistricting, camera_siting or station_siting")
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    progress: float = Field(ge=0, le=1, description="Share of the work done, 0–1")
    message: str = Field(description="What the job is doing (or how it ended)")
    cancel_requested: bool
    result_url: str | None = Field(
        None, description="Where the result is (a draft plan, or the job's result)"
    )
    error: str | None = Field(None, description="Why it failed: 'code: reason'")
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

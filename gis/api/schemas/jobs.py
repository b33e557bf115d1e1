"""Replies about background jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gis.api.schemas.types import PLATFORMS, Omittable, StrictInt, Time, one_of
from gis.services import siting, stations

TimeLimit = Annotated[
    float,
    Field(
        ge=siting.TIME_LIMIT_S.low, le=siting.TIME_LIMIT_S.high, description="Solver time limit (s)"
    ),
]


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


class RedistrictingCreate(BaseModel):
    """Ask for a redistricting suggestion of a village (or each village of a town)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["village"]}, {"required": ["town"]}],
            "example": {
                "village": "330803114001",
                "weights": {"households": 1, "population": 0, "incidents_12m": 2},
            },
        },
    )

    village: Omittable[str] = Field(None, max_length=12, description="Village code")
    town: Omittable[str] = Field(None, max_length=12, description="Town code (every village)")
    grids: Omittable[StrictInt] = Field(
        None, ge=2, le=200, description="Grids per village (default: as many as now)"
    )
    weights: Omittable[dict[str, Annotated[float, Field(ge=0, le=1e6)]]] = Field(
        None,
        max_length=3,
        description="Weight of each workload column: households, population, incidents_12m "
        "(default 1 each)",
    )
    cell_m: Omittable[float] = Field(
        None, ge=25, le=2000, description="Building-block cell size in metres (default: auto)"
    )
    method: Omittable[str] = Field(
        None,
        description="balance (default), azp, maxp or skater",
        json_schema_extra=one_of(["balance", "azp", "maxp", "skater"]),
    )
    seed: Omittable[StrictInt] = Field(None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _one_scope(self) -> RedistrictingCreate:
        if (self.village is None) == (self.town is None):
            raise ValueError("give exactly one of village or town")
        return self


class CameraSitingCreate(BaseModel):
    """Ask where k new cameras would see the most cases today's cameras miss."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"town": "330803114000", "k": 10, "range_m": 150}},
    )

    town: str = Field(max_length=12, description="Town code")
    k: StrictInt = Field(ge=siting.K.low, le=siting.K.high, description="New cameras")
    range_m: float = Field(
        siting.DEFAULT_RANGE_M,
        ge=siting.RANGE_M.low,
        le=siting.RANGE_M.high,
        description="How far a new camera sees (m)",
    )
    spacing_m: float = Field(
        siting.DEFAULT_SPACING_M,
        ge=siting.SPACING_M.low,
        le=siting.SPACING_M.high,
        description="Candidate sites every … m of road",
    )
    since: Time | None = Field(None, description="Cases from (default: a year before until)")
    until: Time | None = Field(None, description="…until before (default: now)")
    time_limit_s: TimeLimit = siting.DEFAULT_TIME_LIMIT_S


class StationSitingCreate(BaseModel):
    """Ask where k units of a platform should stand for the shortest drives to its cases."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"town": "330803114000", "platform": "market", "k": 2}},
    )

    town: str = Field(max_length=12, description="Town code")
    platform: str = Field(
        max_length=20,
        description="The platform whose units are sited (its cases are the demand)",
        json_schema_extra=one_of(PLATFORMS),
    )
    k: StrictInt = Field(ge=stations.K.low, le=stations.K.high, description="Units to place")
    since: Time | None = Field(None, description="Cases from (default: a year before until)")
    until: Time | None = Field(None, description="…until before (default: now)")
    max_candidates: StrictInt = Field(
        stations.DEFAULT_MAX_CANDIDATES,
        ge=stations.CANDIDATES.low,
        le=stations.CANDIDATES.high,
        description="Road nodes kept as candidate sites (thinned above)",
    )
    time_limit_s: TimeLimit = siting.DEFAULT_TIME_LIMIT_S

"""Replies of the dispatch queue, the unit board and a case's responders."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gis.api.schemas.dispatch import NearestRead, SuggestedUnitsRead, UnitFields
from gis.api.schemas.types import read_from
from gis.layers.base import point_lonlat
from gis.services.dispatch import CaseResponders, ExcludedUnit, Exclusion
from gis.services.queue import Bucket, QueueItem


class QueueItemRead(QueueItem):
    """A case of the queue and the buckets it is in."""

    model_config = ConfigDict(from_attributes=True)

    buckets: list[Bucket] = Field(description="Why the case needs a person")  # type: ignore[assignment]


class QueueRead(BaseModel):
    """A town's dispatch queue."""

    town_code: str
    now: datetime = Field(description="The time the buckets were judged at (overdue, newest)")
    after: int = Field(
        description="The live feed id this answer is as of: pass it to GET /events/stream?after="
    )
    counts: dict[Bucket, int] = Field(description="Cases per bucket (all of them, not only listed)")
    total: int = Field(description="Cases in at least one bucket")
    items: list[QueueItemRead]


class BoardUnitRead(UnitFields):
    """A unit on the board."""

    unit_type_zh: str = Field(description="The unit type's Chinese name (派出所…)")
    unit_type_en: str = Field(description="The unit type's English name (police station…)")
    lon: float
    lat: float
    updated_at: datetime
    last_fix_at: datetime | None = Field(description="When its newest AVL fix was taken")
    open_cases: int = Field(description="Active cases it holds")


class BoardRead(BaseModel):
    """Every unit of a town."""

    town_code: str
    jurisdiction: list[str] = Field(
        description="Whose units serve the town (the town and its county): these a dispatcher "
        "of the town may change (PATCH /units/{id}); the others only stand in it"
    )
    units: list[BoardUnitRead]


class ExcludedUnitRead(UnitFields):
    """A nearby unit of the case's type that is not offered, and why."""

    lon: float
    lat: float
    distance_m: float
    reason: Exclusion

    @classmethod
    def of(cls, excluded: ExcludedUnit) -> ExcludedUnitRead:
        """The reply item for a service result."""
        lon, lat = point_lonlat(excluded.unit.geom)
        return cls(
            **UnitFields.model_validate(excluded.unit).model_dump(),
            lon=lon,
            lat=lat,
            distance_m=round(excluded.distance_m, 2),
            reason=excluded.reason,
        )


class RespondersRead(SuggestedUnitsRead):
    """Who can go to a case: offered units by drive time, and the nearby ones left out."""

    jurisdiction: list[str] | None = Field(
        description="The jurisdictions whose units are offered: the case's town and county"
    )
    excluded: list[ExcludedUnitRead]

    @classmethod
    def of_case(cls, found: CaseResponders) -> RespondersRead:
        """The reply for a service result."""
        incident = found.incident
        return read_from(
            cls,
            NearestRead.of(found.result),
            found,
            incident,
            incident_id=incident.id,
            current_unit_id=incident.unit_id,
            excluded=[ExcludedUnitRead.of(e) for e in found.excluded],
        )

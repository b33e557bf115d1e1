"""Camera coverage of a grid: how much of its area and roads online cameras see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gis.api.deps import SessionDep, StaleReadOk
from gis.api.schemas.cameras import CoverageRead
from gis.api.security import Watcher
from gis.services.cameras import grid_coverage

router = APIRouter(tags=["cameras"], dependencies=[StaleReadOk])


@router.get("/grids/{code}/coverage", response_model=CoverageRead)
def coverage(
    session: SessionDep,
    _: Watcher,
    code: Annotated[
        str,
        Path(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.\-]+$", description="Grid code"),
    ],
) -> CoverageRead:
    """Share of the grid's area and road length inside an online camera view, and the blind
    spots (the uncovered part) as GeoJSON; measured in metres in the grid's UTM zone."""
    return CoverageRead.of(grid_coverage(session, code))

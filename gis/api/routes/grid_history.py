"""Every dated version of a grid, with who brought it into force and who retired it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from gis.api.deps import SessionDep, StaleReadOk
from gis.api.geojson import geometry_json
from gis.api.schemas.plans import GridVersionRead
from gis.api.schemas.types import read_from
from gis.api.security import PLAN, WATCH, allow, check_town
from gis.services import grid_versions
from gis.services.access import Principal

router = APIRouter(tags=["layers"], dependencies=[StaleReadOk])

Reader = Annotated[Principal | None, Depends(allow(*PLAN, *WATCH, public=True))]


@router.get("/grids/{code}/history", response_model=list[GridVersionRead])
def grid_history(
    session: SessionDep,
    principal: Reader,
    code: Annotated[str, Path(min_length=1, max_length=20, description="Grid code")],
    geometry: Annotated[bool, Query(description="Include each version's boundary")] = False,
) -> list[GridVersionRead]:
    """All versions of grid ``code``, oldest first (``valid_to`` null = in force now)."""
    history = grid_versions.grid_history(session, code, with_geometry=geometry)
    check_town(principal, history[-1].grid.town_code, f"grid with code {code!r}")
    return [
        read_from(
            GridVersionRead, v, v.grid, geometry=geometry_json(v.geojson) if geometry else None
        )
        for v in history
    ]

"""Every dated version of a grid, with who brought it into force and who retired it."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from geoalchemy2 import Geography

from gis.api.deps import SessionDep
from gis.api.geojson import geometry_json
from gis.api.schemas.plans import GridVersionRead
from gis.api.security import PLAN, WATCH, allow, check_town
from gis.errors import NotFoundError
from gis.layers.grids import Grid
from gis.layers.plans import GridChange, GridChangeKind
from gis.services.access import Principal

router = APIRouter(tags=["layers"])

Reader = Annotated[Principal | None, Depends(allow(*PLAN, *WATCH, public=True))]


@router.get("/grids/{code}/history", response_model=list[GridVersionRead])
def grid_history(
    session: SessionDep,
    principal: Reader,
    code: Annotated[str, Path(min_length=1, max_length=20, description="Grid code")],
    geometry: Annotated[bool, Query(description="Include each version's boundary")] = False,
) -> list[GridVersionRead]:
    """All versions of grid ``code``, oldest first (``valid_to`` null = in force now)."""
    area = sa.func.ST_Area(sa.cast(Grid.geom, Geography)).label("area_m2")
    shape_json = (sa.func.ST_AsGeoJSON(Grid.geom, 9) if geometry else sa.null()).label("geojson")
    rows = session.execute(
        sa.select(Grid, area, shape_json).where(Grid.code == code).order_by(Grid.version)
    ).all()
    if not rows:
        raise NotFoundError(f"no grid with code {code!r}")
    check_town(principal, rows[-1][0].town_code, f"grid with code {code!r}")
    changes = session.scalars(sa.select(GridChange).where(GridChange.code == code)).all()
    created = {c.grid_id: c for c in changes if c.change == GridChangeKind.CREATED.value}
    retired = {c.grid_id: c for c in changes if c.change == GridChangeKind.RETIRED.value}
    by_version = {row[0].version: row[0] for row in rows}
    history = []
    for row in rows:
        grid: Grid = row[0]
        gone = retired.get(grid.id)
        retired_by = gone.actor if gone is not None else None
        if retired_by is None and grid.valid_to is not None:
            # Versions retired before the change log existed: the next version's author.
            successor = by_version.get(grid.version + 1)
            if successor is not None and successor.valid_from == grid.valid_to:
                retired_by = successor.created_by
        made = created.get(grid.id)
        history.append(
            GridVersionRead(
                code=grid.code,
                version=grid.version,
                name=grid.name,
                village_code=grid.village_code,
                town_code=grid.town_code,
                households=grid.households,
                population=grid.population,
                area_m2=round(float(row.area_m2), 1),
                valid_from=grid.valid_from,
                valid_to=grid.valid_to,
                created_by=grid.created_by,
                created_at=grid.created_at,
                retired_by=retired_by,
                plan_id=made.plan_id if made is not None else None,
                retired_by_plan_id=gone.plan_id if gone is not None else None,
                note=grid.note,
                geometry=geometry_json(row.geojson) if geometry else None,
            )
        )
    return history

"""Spatial statistics for the command room: Gi* hotspots, emerging hotspots, recurring problems.

The same readers and the same town scope as /stats. Replies are GeoJSON whose features carry a
``colour`` and a ``label``, ready for a map layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from shapely.geometry import mapping

from gis.api.deps import PlatformDep, SessionDep, StaleReadOk
from gis.api.errors import CATEGORY, ERROR_RESPONSES, domain_errors
from gis.api.geojson import Feature
from gis.api.routes.jobs import owner_of, start_job
from gis.api.routes.stats import Watcher, towns_in_scope
from gis.api.schemas.analytics import (
    EmergingCollection,
    EmergingProperties,
    HotspotCollection,
    HotspotProperties,
    RecurringCollection,
    RecurringProperties,
)
from gis.api.schemas.jobs import (
    CameraSitingCreate,
    JobRead,
    RedistrictingCreate,
    StationSitingCreate,
)
from gis.api.schemas.types import Time, read_from
from gis.api.security import PLAN, WATCH, allow, check_town
from gis.errors import UnknownCodeError, ValidationError
from gis.layers.plans import PlanScope
from gis.services import hotspots, planning, recurring, redistricting, siting, stations
from gis.services.access import Principal

# What the statistics refuse beyond the schema (gis.services.hotspots, gis.services.recurring).
ANALYTICS_ERRORS = {
    **ERROR_RESPONSES,
    **domain_errors(
        CATEGORY,
        (UnknownCodeError, "the platform or town is not known"),
        (
            ValidationError,
            "too few cases or grids (or cells) for inference, a period that is empty or outside "
            "1970–2100, too few time slices, too many cells, band_m without distance weights, "
            "or a radius, count or window out of range",
        ),
    ),
}


router = APIRouter(prefix="/analytics", tags=["analytics"], dependencies=[StaleReadOk])

TownQuery = Annotated[str, Query(max_length=12, description="The town (code)")]
SinceQuery = Annotated[
    Time | None, Query(description="Cases reported from (default: 30 days before until)")
]
UntilQuery = Annotated[Time | None, Query(description="…until before (default: now)")]
CategoryQuery = Annotated[str | None, Query(max_length=50, description="Only this category")]
PermutationsQuery = Annotated[
    int,
    Query(
        ge=9,
        le=hotspots.MAX_PERMUTATIONS,
        description="Random permutations for the p-values (99 % after FDR needs many)",
    ),
]
SeedQuery = Annotated[int | None, Query(ge=0, description="Fix the permutations (repeatable)")]


def hotspot_query(
    principal: Watcher,
    town: TownQuery,
    since: SinceQuery = None,
    until: UntilQuery = None,
    platform: PlatformDep = None,
    category: CategoryQuery = None,
    permutations: PermutationsQuery = hotspots.DEFAULT_PERMUTATIONS,
    seed: SeedQuery = None,
) -> hotspots.HotspotQuery:
    """The town (within the caller's jurisdiction), period, filters and inference asked for."""
    (town_code,) = towns_in_scope(principal, town) or (town,)
    return hotspots.HotspotQuery(
        town_code,
        since,
        until,
        platform.value if platform else None,
        category,
        permutations=permutations,
        seed=seed,
    )


HotspotQueryDep = Annotated[hotspots.HotspotQuery, Depends(hotspot_query)]


def _all(features: Sequence[Feature[Any] | dict[str, Any]]) -> dict[str, Any]:
    """The features of an unpaged collection and their counts."""
    return {"features": features, "number_matched": len(features), "number_returned": len(features)}


def _per_grid(model: type[BaseModel], grids: Sequence[Any]) -> dict[str, Any]:
    """One feature per grid (id: its code), its properties read from the service's result."""
    return _all(
        [
            {
                "id": grid.code,
                "geometry": dict(mapping(grid.geom)),
                "properties": model.model_validate(grid, from_attributes=True),
            }
            for grid in grids
        ]
    )


@router.get("/hotspots", response_model=HotspotCollection, responses=ANALYTICS_ERRORS)
def get_hotspots(
    session: SessionDep,
    query: HotspotQueryDep,
    cell_m: Annotated[
        float | None,
        Query(
            ge=hotspots.CELL_M[0],
            le=hotspots.CELL_M[1],
            description="Square cells of this size (m) instead of the grids",
        ),
    ] = None,
    weights: Annotated[
        hotspots.Weighting | None,
        Query(description="queen (default for grids) or distance (default for cells)"),
    ] = None,
    band_m: Annotated[
        float | None,
        Query(
            ge=1,
            le=50_000,
            description="Distance band between centres (m; weights=distance; default 1.5 cells)",
        ),
    ] = None,
) -> HotspotCollection:
    """Getis-Ord Gi* hot and cold spots of the town's grids — or of square cells (``cell_m``)
    — (热点), FDR-corrected."""
    query = replace(
        query,
        cell_m=cell_m,
        weights=None if weights is None else weights.value,
        band_m=band_m,
    )
    result = hotspots.find_hotspots(session, query)
    return read_from(
        HotspotCollection,
        result,
        result.period,
        **_per_grid(HotspotProperties, result.grids),
        fdr_cutoffs={str(level): cutoff for level, cutoff in result.cutoffs.items()},
    )


@router.get("/emerging", response_model=EmergingCollection, responses=ANALYTICS_ERRORS)
def get_emerging(
    session: SessionDep,
    query: HotspotQueryDep,
    step: Annotated[hotspots.SliceStep, Query(description="week or month")] = (
        hotspots.SliceStep.WEEK
    ),
    level: Annotated[int, Query(description="90, 95 or 99: when a slice is hot/cold")] = 90,
) -> EmergingCollection:
    """Emerging hotspots: Gi* per week or month and a Mann–Kendall trend per grid."""
    result = hotspots.find_emerging(session, query, step=step, level=level)
    return read_from(
        EmergingCollection,
        result,
        **_per_grid(EmergingProperties, result.grids),
        step=result.step.value,
    )


@router.get("/recurring", response_model=RecurringCollection, responses=ANALYTICS_ERRORS)
def get_recurring(
    session: SessionDep,
    principal: Watcher,
    town: Annotated[str | None, Query(max_length=12, description="Only this town")] = None,
    until: UntilQuery = None,
    weeks: Annotated[int, Query(description="Look back this many weeks")] = (
        recurring.DEFAULT_WEEKS
    ),
    radius_m: Annotated[float, Query(description="The same place: within this distance")] = (
        recurring.DEFAULT_RADIUS_M
    ),
    min_cases: Annotated[int, Query(description="At least this many closed cases")] = (
        recurring.DEFAULT_MIN_CASES
    ),
    category: CategoryQuery = None,
) -> RecurringCollection:
    """Recurring problems (治标不治本): one category, one place, closed again and again."""
    query = recurring.RecurringQuery(
        until=until,
        weeks=weeks,
        radius_m=radius_m,
        min_cases=min_cases,
        town_codes=towns_in_scope(principal, town),
        category=category,
    )
    result = recurring.find_recurring(session, query)
    features = [
        Feature[RecurringProperties](
            id=f"{group.category_code}-{group.case_ids[0]}",
            geometry=dict(mapping(group.centre)),
            properties=RecurringProperties.model_validate(group, from_attributes=True),
        )
        for group in result.groups
    ]
    return read_from(RecurringCollection, result, **_all(features))


# --- proposals: long analyses run as background jobs (GET /jobs/{id}) -------------------------

PROPOSAL_ERRORS = {
    **ERROR_RESPONSES,
    **domain_errors(
        (UnknownCodeError, "an unknown method or platform"),
        (
            ValidationError,
            "a village with fewer than 2 grids (or none), an unknown weight column, weights all "
            "zero, k larger than the candidate sites, a period that is empty, too few cases, a "
            "town without roads",
        ),
    ),
}
# What a route that starts a job answers: 202 and the job, or why it was not queued.
QUEUED: dict[str, Any] = {
    "status_code": 202,
    "response_model": JobRead,
    "responses": {
        **PROPOSAL_ERRORS,
        202: {"description": "Queued; poll the Location (/jobs/{id})"},
    },
}
Planner = Annotated[Principal | None, Depends(allow(*PLAN))]
Siter = Annotated[Principal | None, Depends(allow(*PLAN, *WATCH))]


@router.post("/redistricting", **QUEUED)
def start_redistricting(
    request: Request, session: SessionDep, principal: Planner, body: RedistrictingCreate
) -> JSONResponse:
    """Suggest contiguous grids of balanced workload; the result is a draft plan (planners)."""
    level, code = (
        (PlanScope.VILLAGE, body.village)
        if body.village is not None
        else (PlanScope.TOWN, str(body.town))
    )
    if principal is not None and principal.town_codes is not None:
        check_town(principal, planning.scope_town(session, level, str(code)), level.value)
    params = redistricting.RedistrictQuery.from_params(
        {**body.model_dump(exclude_none=True), "level": level.value, "code": code}
    ).params()
    return start_job(
        request, session, principal, redistricting.KIND, {**params, "actor": owner_of(principal)}
    )


@router.post("/camera-siting", **QUEUED)
def start_camera_siting(
    request: Request, session: SessionDep, principal: Siter, body: CameraSitingCreate
) -> JSONResponse:
    """Where k new cameras would see the most cases (MCLP); the result is a GeoJSON layer with a
    summary (GET /jobs/{id}/result) and a CSV (GET /jobs/{id}/result.csv)."""
    return _start_siting(request, session, principal, body, siting.CameraSitingQuery, siting.KIND)


@router.post("/station-siting", **QUEUED)
def start_station_siting(
    request: Request, session: SessionDep, principal: Siter, body: StationSitingCreate
) -> JSONResponse:
    """Where k units of a platform should stand for the shortest drives (p-median on the road
    network) to its cases of the year, with the mean and 90th-percentile drive time before and
    after; the result is a GeoJSON layer with a summary (GET /jobs/{id}/result) and a CSV (GET
    /jobs/{id}/result.csv)."""
    return _start_siting(
        request, session, principal, body, stations.StationSitingQuery, stations.KIND
    )


def _start_siting(
    request: Request,
    session: SessionDep,
    principal: Principal | None,
    body: CameraSitingCreate | StationSitingCreate,
    query: Callable[..., siting.SitingQuery],
    kind: str,
) -> JSONResponse:
    """Queue a siting job of the body's town, checked against the caller's jurisdiction."""
    (town,) = towns_in_scope(principal, body.town) or (body.town,)
    params = query(**body.model_dump(exclude={"town"}), town_code=town).params()
    return start_job(request, session, principal, kind, params)

"""Who reads which OGC collection: the roles of the JSON API endpoint of the same layer, and
for cases the same scope, so a dispatcher of town A sees no case of town B in items, tiles or
``numberMatched``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Path, Request

from gis.api.deps import settings_of
from gis.api.security import (
    DISPATCH,
    READ_CASES,
    WATCH,
    PrincipalDep,
    admit,
    case_filter,
    town_filter,
)
from gis.errors import GisError
from gis.layers.incidents import Incident
from gis.layers.users import Role
from gis.services.access import Principal
from gis.services.ogc_collections import COLLECTIONS, Collection, get_collection
from gis.settings import Settings

# collection id → (roles, public): as /regions and /grids (every role; anyone with
# GIS_PUBLIC_LAYERS), /cameras (watchers), /units (watchers and dispatchers), /incidents.
READERS: dict[str, tuple[frozenset[Role], bool]] = {
    "towns": (frozenset(Role), True),
    "villages": (frozenset(Role), True),
    "grids": (frozenset(Role), True),
    "roads": (frozenset(Role), True),
    "cameras": (frozenset(WATCH), False),
    "units": (frozenset(WATCH + DISPATCH), False),
    "incidents": (frozenset(READ_CASES), False),
    # Names and phone numbers: whoever reads cases, never anonymous (GIS_PUBLIC_LAYERS is for
    # the maps, not for people), each within its scope below.
    "members": (frozenset(READ_CASES), False),
    # As /grids/{code}/coverage.
    "coverage": (frozenset(WATCH), False),
}
# The rows of a layer the caller sees; every row unless listed.
SCOPES: dict[str, Callable[[Principal | None], sa.ColumnElement[bool]]] = {
    "incidents": lambda principal: case_filter(principal, Incident),
    "members": lambda principal: _member_scope(principal),
}


def _member_scope(principal: Principal | None) -> sa.ColumnElement[bool]:
    """The members a caller sees: those of the grids of its towns, as for cases; a grid
    member only those of its own grids."""
    rows = get_collection("members").table.c
    clause = town_filter(principal, rows.town_code)
    if principal is not None and principal.role is Role.GRID_MEMBER:
        clause = sa.and_(clause, rows.grid_code.in_(sorted(principal.grid_codes or ())))
    return clause


def scope_for(
    collection: Collection, principal: Principal | None, settings: Settings
) -> sa.ColumnElement[bool]:
    """The caller's WHERE condition on ``collection``, or the error saying why it may not
    read it (401 without a token, 403 for a role that may not)."""
    roles, public = READERS[collection.id]
    admit(principal, roles, public=public, settings=settings)
    scope = SCOPES.get(collection.id)
    return scope(principal) if scope is not None else sa.true()


def readable(principal: Principal | None, settings: Settings) -> list[Collection]:
    """The collections the caller may read, in their listed order."""
    found = []
    for collection in COLLECTIONS.values():
        try:
            scope_for(collection, principal, settings)
        except GisError:
            continue
        found.append(collection)
    return found


@dataclass(frozen=True)
class Reading:
    """A collection the caller may read, and the condition that keeps the caller's rows."""

    collection: Collection
    scope: sa.ColumnElement[bool]


async def reading(
    request: Request,
    principal: PrincipalDep,
    collection_id: Annotated[str, Path(max_length=40, description="Collection id")],
) -> Reading:
    """The addressed collection (404 if none) and the caller's scope on it (401/403)."""
    return reading_by(principal, collection_id, settings_of(request))


def reading_by(principal: Principal | None, collection_id: str, settings: Settings) -> Reading:
    """What ``reading`` gives, for a caller already known (the fast paths)."""
    found = get_collection(collection_id)
    return Reading(found, scope_for(found, principal, settings))


ReadingDep = Annotated[Reading, Depends(reading)]

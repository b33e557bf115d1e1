"""Access control in one place: who is calling (a bearer token), what their role allows, and
which towns they see. Routes declare ``Depends(allow(...))``; services filter lists with
``town_filter`` and single resources with ``check_town``, so a town's command room never sees
another town's cases. Resources of other towns answer 404, exactly as if they did not exist."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypedDict

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gis.api.deps import primary_database_of, settings_of
from gis.api.openapi import public as mark_public
from gis.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from gis.layers.users import Role
from gis.services.access import Principal, authenticate_flow, hash_token
from gis.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API token from `gis users add`")

# Roles by what they do; admin may do everything.
READ_CASES = (Role.GRID_MEMBER, Role.UNIT, Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY)
REPORT = (Role.GRID_MEMBER, Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY)
ACT_ON_CASES = (Role.GRID_MEMBER, Role.UNIT, Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY)
WATCH = (Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY, Role.PLANNER)
DISPATCH = (Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY)
PLAN = (Role.PLANNER,)
MANAGE_LAYERS = (Role.DISPATCHER, Role.COMMAND_ROOM, Role.COUNTY)


# A browser opening a map page cannot send a bearer header: /login puts the token in this
# HttpOnly cookie instead, and it is accepted wherever the header is.
TOKEN_COOKIE = "gis_token"


# Dependencies here take what they need from the request rather than from further dependencies:
# FastAPI's resolution of each one costs more than the work it does, and these run on every
# request. The hot paths go further: ``allow_hot`` and ``authorize``.
async def get_principal(
    request: Request,
    # Resolved only so that OpenAPI documents the scheme (the Authorize button in /docs);
    # ``principal_of`` reads the header itself.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller (bearer header, else the login cookie), or ``None`` without a token."""
    return await principal_of(request)


def token_of(request: Request) -> str | None:
    """The bearer token of ``request`` (header, else the login cookie), or ``None``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("use the header 'Authorization: Bearer <token>'")
        return token
    return request.cookies.get(TOKEN_COOKIE) or None


async def principal_of(request: Request) -> Principal | None:
    """The caller of ``request`` (bearer header, else the login cookie), or ``None``."""
    token = token_of(request)
    if token is None:
        return None
    principal = _cached(request, token)
    if principal is None:  # the database is asked only on a cache miss
        principal = await primary_database_of(request).run(authenticate_flow(token))
        _remember(request, token, principal)
    return principal


async def authorize(request: Request, roles: frozenset[Role]) -> Principal | None:
    """What ``Depends(allow(*roles))`` does, for an endpoint that checks its caller itself (the
    hot paths, see ``gis.api.hot``). A test's ``app.dependency_overrides[get_principal]`` is
    honoured here too. Such endpoints document the scheme with ``openapi_extra=BEARER``."""
    principal = await caller_of(request)
    return admit(principal, roles, public=False, settings=settings_of(request))


async def caller_of(request: Request) -> Principal | None:
    """The caller as ``get_principal`` gives it, for an endpoint that checks its caller itself
    (the hot paths); a test's ``app.dependency_overrides[get_principal]`` is honoured."""
    override = request.app.dependency_overrides.get(get_principal)
    if override is None:
        return await principal_of(request)
    principal = override()
    if inspect.isawaitable(principal):
        principal = await principal
    return principal


def allow_hot(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal | None]]:
    """``allow(*roles)`` as ONE dependency instead of three (allow → get_principal → bearer):
    FastAPI's resolution of each costs more than the work it does, which shows on a report.
    Routes using it document the scheme with ``openapi_extra=BEARER``."""
    admitted = frozenset(roles)

    async def dependency(request: Request) -> Principal | None:
        return await authorize(request, admitted)

    return dependency


# The OpenAPI security requirement of a route guarded by ``allow_hot`` or ``authorize``.
BEARER: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def _cache(request: Request) -> dict[str, tuple[float, Principal]]:
    cache: dict[str, tuple[float, Principal]] = request.app.state.token_cache
    return cache


def _cached(request: Request, token: str) -> Principal | None:
    """A principal checked less than GIS_TOKEN_CACHE_S ago: saves a query on every request."""
    hit = _cache(request).get(hash_token(token))
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def _remember(request: Request, token: str, principal: Principal) -> None:
    ttl = request.app.state.settings.token_cache_s
    if ttl <= 0:
        return
    cache = _cache(request)
    if len(cache) > 10_000:  # bounded: drop everything rather than grow without end
        cache.clear()
    cache[hash_token(token)] = (time.monotonic() + ttl, principal)


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def allow(
    *roles: Role, public: bool = False
) -> Callable[..., Coroutine[Any, Any, Principal | None]]:
    """A dependency admitting ``roles`` (and admin); ``public`` also admits anonymous callers
    when ``GIS_PUBLIC_LAYERS`` is on."""

    admitted = frozenset(roles)

    # async: it does no I/O, and a sync dependency would cost a worker-thread hand-off.
    async def dependency(request: Request, principal: PrincipalDep) -> Principal | None:
        return admit(principal, admitted, public=public, settings=settings_of(request))

    # The OpenAPI document then says the token is optional when GIS_PUBLIC_LAYERS is on.
    return mark_public(dependency) if public else dependency


# The callers of the usual role groups, as route parameters.
CaseReader = Annotated[Principal | None, Depends(allow(*READ_CASES))]
CaseActor = Annotated[Principal | None, Depends(allow(*ACT_ON_CASES))]
Watcher = Annotated[Principal | None, Depends(allow(*WATCH))]


def admit(
    principal: Principal | None, roles: frozenset[Role], *, public: bool, settings: Settings
) -> Principal | None:
    """``principal`` if its role is one of ``roles`` (or admin); else the error saying why."""
    if principal is None:
        if public and settings.public_layers:
            return None
        if not settings.auth_required:
            return None
        raise AuthenticationError(
            "this endpoint needs a token: send 'Authorization: Bearer <token>' "
            "(an admin makes one with `gis users add`)"
        )
    if principal.role is Role.ADMIN or principal.role in roles:
        return principal
    allowed = ", ".join(sorted(r.value for r in roles)) or "admin"
    raise PermissionDeniedError(
        f"role {principal.role.value} may not do this; allowed roles: {allowed}"
    )


def check_town(principal: Principal | None, town_code: str | None, what: str) -> None:
    """Raise ``NotFoundError`` for a resource outside the caller's towns (no existence leak)."""
    if principal is not None and not principal.sees_town(town_code):
        raise NotFoundError(f"no {what}")


def town_filter(principal: Principal | None, column: Any) -> sa.ColumnElement[bool]:
    """A WHERE clause keeping only rows of the caller's towns (true for county and admin)."""
    if principal is None or principal.town_codes is None:
        return sa.true()
    return column.in_(sorted(principal.town_codes))


def check_case(principal: Principal | None, case: Any, what: str = "incident") -> None:
    """Raise ``NotFoundError`` for a case (anything with town_code, grid_code and unit_id) that
    is not the caller's: another town's, another grid's for a grid member, another unit's for a
    unit."""
    if principal is not None and not principal.sees_case(
        case.town_code, case.grid_code, case.unit_id
    ):
        raise NotFoundError(f"no {what}")


def check_unit(principal: Principal | None, unit: Any, jurisdictions: set[str] | None) -> None:
    """Raise ``NotFoundError`` for a unit (anything with id and jurisdiction_code) that serves
    none of the caller's towns; ``jurisdictions`` are the codes whose units do serve them
    (``gis.services.dispatch.serving_jurisdictions``: the towns and their counties)."""
    outside = jurisdictions is not None and unit.jurisdiction_code not in jurisdictions
    if principal is not None and outside:
        raise NotFoundError(f"no responder unit with id {unit.id}")


def case_filter(principal: Principal | None, table: Any) -> sa.ColumnElement[bool]:
    """The WHERE clause of ``check_case`` for lists of cases (``table`` has the same columns)."""
    if principal is None:
        return sa.true()
    clause = town_filter(principal, table.town_code)
    if principal.role is Role.GRID_MEMBER:
        clause = sa.and_(clause, table.grid_code.in_(sorted(principal.grid_codes or ())))
    elif principal.role is Role.UNIT:
        clause = sa.and_(clause, table.unit_id == principal.unit_id)
    return clause


def errand_filter(principal: Principal | None, table: Any) -> sa.ColumnElement[bool]:
    """The errands the caller sees in a list: a grid member those assigned to them, everyone
    else those of their towns."""
    if principal is None:
        return sa.true()
    clause = town_filter(principal, table.town_code)
    if principal.role is Role.GRID_MEMBER:
        clause = sa.and_(clause, table.member_id == principal.member_id)
    return clause


def uploader_of(principal: Principal | None) -> int | None:
    """Whose photos a caller may name: their own (admins and unauthenticated setups: any)."""
    if principal is None or principal.role is Role.ADMIN:
        return None
    return principal.user_id


class ActedBy(TypedDict):
    """Who performs a case action, and whose photos it may name."""

    actor: str
    uploader: int | None


def acted_by(principal: Principal | None, actor: str | None) -> ActedBy:
    """The ``actor`` and ``uploader`` of an action on a case or errand: a token names the actor;
    the body's ``actor`` is for unauthenticated local setups."""
    name = principal.name if principal is not None else (actor or "")
    return ActedBy(actor=name, uploader=uploader_of(principal))

"""Liveness and database health, with each read replica's state and lag."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gis import __version__
from gis.api.deps import SessionDep
from gis.errors import DatabaseUnavailableError
from gis.migrations.api import schema_revision

router = APIRouter(tags=["health"])


class ReplicaHealth(BaseModel):
    """One read replica (GIS_READ_DATABASE_URLS) as its last background check found it."""

    name: str = Field(description="host:port/database")
    state: Literal["ok", "lagging", "down", "unknown"] = Field(
        description="ok: serves stale-tolerant reads; lagging: behind by more than "
        "GIS_REPLICA_MAX_LAG_S; down: did not answer; the primary serves instead of both"
    )
    lag_s: float | None = Field(description="Replay lag behind the primary (s); null if unknown")
    error: str | None = Field(description="Why it is down")


class Health(BaseModel):
    """What /health reports."""

    status: str
    version: str
    postgis: str
    schema_revision: str = Field(description="The database's migration (Alembic revision)")
    replicas: list[ReplicaHealth] = Field(
        default_factory=list, description="Each read replica; empty without any"
    )


@router.get("/health", response_model=Health)
def health(session: SessionDep, request: Request) -> Health:
    """The service and database are up (503 when the database is not, or is not migrated to
    this version), and each read replica's lag (a replica down does not make the service
    unhealthy: the primary serves)."""
    postgis = session.execute(sa.text("SELECT postgis_lib_version()")).scalar_one()
    revision, behind = schema_revision(session.connection())
    if behind:
        raise DatabaseUnavailableError(
            f"the database's schema is at revision {revision}, older than this version of gis; "
            "run `gis db migrate`"
        )
    reads = getattr(request.app.state, "reads", None)
    replicas = [
        ReplicaHealth(
            name=r.name,
            state=r.state,
            lag_s=None if r.lag_s is None else round(r.lag_s, 3),
            error=r.error,
        )
        for r in (reads.replicas if reads is not None else ())
    ]
    return Health(
        status="ok",
        version=__version__,
        postgis=str(postgis),
        schema_revision=revision,
        replicas=replicas,
    )

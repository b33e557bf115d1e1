"""Liveness and database health."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from gis import __version__
from gis.api.deps import SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """What /health reports."""

    status: str
    version: str
    postgis: str


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> Health:
    """The service and database are up (503 when the database is not)."""
    postgis = session.execute(sa.text("SELECT postgis_lib_version()")).scalar_one()
    return Health(status="ok", version=__version__, postgis=str(postgis))

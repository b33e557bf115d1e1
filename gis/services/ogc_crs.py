"""Coordinate reference systems of the OGC API (Features Part 2): the URIs we accept and
answer in, and their axis order as the authority defines it.

Storage stays EPSG:4326 in lon/lat order (GeoJSON's). The OGC URIs say otherwise for some
systems: ``…/EPSG/0/4326`` and ``…/EPSG/0/4490`` (CGCS2000) are latitude-first and the
Gauss–Krüger ``…/EPSG/0/4549`` is northing-first, while ``…/OGC/1.3/CRS84`` is longitude-first.
The order is read from the EPSG database through pyproj, never assumed; PostGIS transforms,
and ``ST_FlipCoordinates`` turns its x/y into the authority's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyproj
import sqlalchemy as sa

from gis.errors import ValidationError
from gis.layers.base import SRID

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
# WGS84, CGCS2000 (国家2000) and the CGCS2000 3-degree Gauss–Krüger zone CM 120°E.
EPSG_CODES = (4326, 4490, 4549)


@dataclass(frozen=True)
class Crs:
    """An OGC CRS URI with its PostGIS SRID and whether its first axis is north (lat/northing)."""

    uri: str
    srid: int
    north_first: bool
    geographic: bool

    @property
    def decimals(self) -> int:
        """Digits worth sending: 1e-7 degree or a millimetre, both ~1 cm."""
        return 7 if self.geographic else 3

    def stored(self, geom: Any) -> sa.ColumnElement[Any]:
        """A stored (EPSG:4326 lon/lat) geometry expression in this CRS and axis order."""
        out = geom if self.srid == SRID else sa.func.ST_Transform(geom, self.srid)
        return sa.func.ST_FlipCoordinates(out) if self.north_first else out

    def to_storage(self, geom: Any) -> sa.ColumnElement[Any]:
        """A geometry expression given in this CRS (its axis order, SRID set) as EPSG:4326
        lon/lat: for constants only, never for an indexed column."""
        xy = sa.func.ST_FlipCoordinates(geom) if self.north_first else geom
        return xy if self.srid == SRID else sa.func.ST_Transform(xy, SRID)


def _crs(uri: str, authority: str) -> Crs:
    info = pyproj.CRS.from_user_input(authority)
    first = info.axis_info[0].direction.lower()
    return Crs(
        uri=uri,
        srid=4326 if authority == "OGC:CRS84" else int(authority.split(":")[1]),
        north_first=first in ("north", "south"),
        geographic=info.is_geographic,
    )


@lru_cache(maxsize=1)
def supported() -> dict[str, Crs]:
    """Every CRS URI the API accepts, CRS84 first (the default)."""
    crs = {CRS84: _crs(CRS84, "OGC:CRS84")}
    for code in EPSG_CODES:
        crs[_EPSG + str(code)] = _crs(_EPSG + str(code), f"EPSG:{code}")
    return crs


def crs_uris() -> list[str]:
    """The URIs of every supported CRS, for a collection's ``crs`` list."""
    return list(supported())


def parse_crs(value: str | None, parameter: str) -> Crs:
    """The CRS of a ``crs``/``bbox-crs``/``filter-crs`` parameter (default CRS84), or 400."""
    if value is None or value == "":
        return supported()[CRS84]
    uri = value.strip().strip("<>")
    if uri == CRS84H:
        uri = CRS84
    found = supported().get(uri)
    if found is None:
        raise ValidationError(
            f"{parameter} {value!r} is not supported; use one of: {', '.join(supported())}"
        )
    return found

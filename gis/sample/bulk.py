"""Bulk loading with COPY: rows of Python values (text format) and numpy columns (binary format)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import shapely
from psycopg import sql
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)
# numpy dtype → big-endian wire type of PostgreSQL's binary COPY (smallint, int, bigint, float8).
_WIRE = {
    np.dtype(np.int16): ">i2",
    np.dtype(np.int32): ">i4",
    np.dtype(np.int64): ">i8",
    np.dtype(np.float64): ">f8",
}
_CHUNK_ROWS = 500_000


def driver_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under the session, inside the session's transaction."""
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    return connection


def ewkb(geometries: Sequence[BaseGeometry] | npt.NDArray[np.object_]) -> list[str]:
    """Hex EWKB with SRID 4326, which PostGIS reads as geometry text in COPY."""
    with_srid = shapely.set_srid(np.asarray(geometries, dtype=object), 4326)
    return list(shapely.to_wkb(with_srid, hex=True, include_srid=True))


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY rows of Python values into ``table`` (names come from code, never from input)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    written = 0
    with driver_connection(session).cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def copy_arrays(session: Session, table: str, columns: dict[str, np.ndarray]) -> int:
    """COPY equal-length numeric numpy columns into ``table`` with no per-row Python.

    Fixed-width binary COPY rows are a numpy structured array: a field count, then for each
    column a 4-byte length and the big-endian value. NULLs would break the fixed width, so
    callers use sentinels and turn them into NULL in SQL.
    """
    names = list(columns)
    count = len(next(iter(columns.values()))) if columns else 0
    fields: list[tuple[str, str]] = [("__fields", ">i2")]
    for i, name in enumerate(names):
        wire = _WIRE[columns[name].dtype]
        fields += [(f"__len{i}", ">i4"), (f"c{i}", wire)]
    record = np.empty(count, dtype=np.dtype(fields))
    record["__fields"] = len(names)
    for i, name in enumerate(names):
        record[f"__len{i}"] = np.dtype(_WIRE[columns[name].dtype]).itemsize
        record[f"c{i}"] = columns[name]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with driver_connection(session).cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(_BINARY_HEADER)
        for start in range(0, count, _CHUNK_ROWS):
            copy.write(record[start : start + _CHUNK_ROWS].tobytes())
        copy.write(_BINARY_TRAILER)
    return count

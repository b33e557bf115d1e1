"""Bulk jobs on Dask: the cluster, the run of a job's tasks, and the point-in-grid join of a
whole county's (or province's) open cases.

The other bulk jobs run their tasks with ``run_tasks`` / ``as_finished`` from here: the boundary
import (``gis.ingest.boundaries``: reading and checking a file in partitions) and the many-town
analytics (``gis.commands.analytics``: one task per town, each opening its own database session).

Where Dask helps, and where it does not (measured: docs/bench-plans.md): the spatial join of a
million points to 100k polygons splits into independent partitions of points, each joined
(``geopandas.sjoin``, an STRtree of the grids) on a worker, with the grids sent once to every
worker. The write-back does not: it stays in PostgreSQL, through the staging table of
``gis.services.reassign`` (each partition is COPYed into it as soon as it is done), so the
history, the foreign keys and the all-or-nothing transaction are PostgreSQL's.

The cluster: a ``distributed.LocalCluster`` of worker processes on this machine by default, or
a running scheduler (``tcp://host:8786``) for a real cluster. Either way the job shows a progress
bar on stderr (tqdm, as tasks finish; stdout stays the command's output). If the scheduler or the
workers disappear mid-job, the job raises ``BulkJobError``; the caller rolls back, which drops the
staging table, and the cases keep their grids; a re-run starts from scratch.

The grid rule on a worker is the one of ``gis.services.assignment`` for covered points: the
grids in force that cover the point (an edge counts), the lowest code on a tie (``on_edge``).
A point no grid covers is staged without a grid, and ``reassign.finish_stage`` applies the snap
rule to it in SQL (``assignment.snapped_grid``): few points, one home for that rule.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import BulkJobError
from gis.layers.incidents import FINAL_STATUSES
from gis.services import reassign
from gis.settings import DEFAULT_SNAP_M

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from distributed import Client, Future

_FINAL = sorted(status.value for status in FINAL_STATUSES)
# How long a client waits for a scheduler that went away before the job fails (seconds).
RECONNECT_TIMEOUT_S = 10


@contextmanager
def dask_client(
    scheduler: str | None = None, *, workers: int = 2, timeout_s: float = 30
) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` (``tcp://host:port``), or of a new
    ``LocalCluster`` of ``workers`` single-threaded processes, closed afterwards."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.comm.timeouts.connect": f"{RECONNECT_TIMEOUT_S}s"})
    if scheduler is not None:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://")):
            raise BulkJobError(f"scheduler {scheduler!r} must be an address like tcp://host:8786")
        try:
            client = Client(scheduler, timeout=timeout_s)
        except OSError as error:
            raise BulkJobError(f"no Dask scheduler at {scheduler}: {error}") from error
        try:
            yield client
        finally:
            client.close()
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, timeout=timeout_s) as client,
    ):
        yield client


def _cluster_lost(error: BaseException) -> bool:
    """Whether ``error`` says the cluster went away: a cancelled future, a closed client or a
    comm error (an error a task raised itself is re-raised as it is)."""
    return isinstance(error, OSError | TimeoutError) or type(error).__module__.startswith(
        ("distributed", "concurrent", "asyncio")
    )


@contextmanager
def cluster_failures() -> Iterator[None]:
    """Raise ``BulkJobError`` when the cluster fails inside the block."""
    try:
        yield
    except BulkJobError:
        raise
    except Exception as error:
        if not _cluster_lost(error):
            raise
        raise BulkJobError(f"the Dask cluster failed mid-job: {error!r}") from error


def as_finished(
    futures: Sequence[Future],
    *,
    progress: bool = True,
    desc: str = "",
    unit: str = "task",
    sizes: Sequence[int] | None = None,
) -> Iterator[tuple[int, Any]]:
    """The position and result of each of ``futures`` as it finishes, with a progress bar on
    stderr (counting ``sizes[position]`` per future, else 1); ``BulkJobError`` when the
    cluster fails."""
    from distributed import as_completed
    from tqdm import tqdm

    position = {future.key: k for k, future in enumerate(futures)}
    total = sum(sizes) if sizes is not None else len(futures)
    with (
        tqdm(total=total, desc=desc, unit=unit, disable=not progress) as bar,
        cluster_failures(),
    ):
        for future in as_completed(futures):
            k = position[future.key]
            result = future.result()
            bar.update(sizes[k] if sizes is not None else 1)
            yield k, result


def run_tasks(
    client: Client,
    task: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    *,
    progress: bool = True,
    desc: str = "",
    unit: str = "task",
    sizes: Sequence[int] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[Any]:
    """``task(*args)`` for each of ``arguments`` on the cluster of ``client``, the results in
    the order of ``arguments`` (``on_done`` is called with each position as it finishes);
    ``BulkJobError`` when the cluster fails (no result is returned then)."""
    with cluster_failures():
        futures = [client.submit(task, *args, pure=False) for args in arguments]
    results: list[Any] = [None] * len(futures)
    for k, result in as_finished(futures, progress=progress, desc=desc, unit=unit, sizes=sizes):
        results[k] = result
        if on_done is not None:
            on_done(k)
    return results


def read_open_cases(session: Session) -> pd.DataFrame:
    """The open cases' ids, status, current grid and member, and lon/lat (one COPY)."""
    import pandas as pd

    raw = session.connection().connection.driver_connection
    assert raw is not None
    buffer = io.BytesIO()
    final = ",".join(f"'{status}'" for status in _FINAL)  # module constants, not input
    statement = (
        "COPY (SELECT id, status, grid_id, grid_code, member_id, ST_X(geom), ST_Y(geom) "  # noqa: S608
        f"FROM incidents WHERE status NOT IN ({final})) TO STDOUT WITH (FORMAT csv)"
    )
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return pd.read_csv(
        buffer,
        names=["incident_id", "status", "from_grid_id", "from_code", "from_member", "x", "y"],
        dtype={
            "incident_id": "int64",
            "status": "string",
            "from_grid_id": "Int64",
            "from_code": "string",
            "from_member": "Int64",
        },
        keep_default_na=False,
        na_values={"from_grid_id": [""], "from_code": [""], "from_member": [""]},
    )


def read_current_grids(session: Session) -> gpd.GeoDataFrame:
    """The grids in force: id, code, village, town and geometry (WGS84)."""
    import geopandas as gpd
    import shapely

    rows = session.execute(
        sa.text(
            "SELECT id, code, village_code, town_code, ST_AsBinary(geom) AS wkb "
            "FROM grids WHERE valid_to IS NULL ORDER BY id"
        )
    ).all()
    return gpd.GeoDataFrame(
        {
            "to_grid_id": [r.id for r in rows],
            "to_code": [r.code for r in rows],
            "to_village": [r.village_code for r in rows],
            "to_town": [r.town_code for r in rows],
        },
        geometry=shapely.from_wkb([bytes(r.wkb) for r in rows]),
        crs="EPSG:4326",
    )


def join_partition(points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """The staging rows of one partition of points (``reassign.STAGE_COLUMNS`` order): the
    covering grid in force, the lowest code on a tie (``on_edge``); uncovered: no grid, no
    quality (snapped later in SQL). Runs on a Dask worker."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    hits = gpd.sjoin(points, grids, how="left", predicate="covered_by")
    hits = hits.sort_values(["incident_id", "to_code"], na_position="last")
    ties = hits.groupby("incident_id", sort=False)["to_code"].transform("count")
    hits = hits.assign(ties=ties).drop_duplicates("incident_id", keep="first")
    covered = hits["to_code"].notna()
    quality = np.where(hits["ties"] > 1, "on_edge", "inside")
    return pd.DataFrame(
        {
            "incident_id": hits["incident_id"].to_numpy(),
            "status": hits["status"].to_numpy(),
            "is_open": True,
            "from_grid_id": hits["from_grid_id"].array,
            "from_code": hits["from_code"].array,
            "from_member": hits["from_member"].array,
            "to_grid_id": hits["to_grid_id"].astype("Int64").array,
            "to_code": hits["to_code"].array,
            "to_village": hits["to_village"].array,
            "to_town": hits["to_town"].array,
            "quality": pd.Series(quality, dtype="string").where(covered.to_numpy()).array,
            "snap_distance_m": np.nan,
            "to_member": pd.array([None] * len(hits), dtype="Int64"),
        }
    )


def _meta() -> pd.DataFrame:
    """The empty frame ``join_partition`` returns (Dask's ``meta``)."""
    import pandas as pd

    kinds = {
        "incident_id": "int64",
        "status": "string",
        "is_open": "bool",
        "from_grid_id": "Int64",
        "from_code": "string",
        "from_member": "Int64",
        "to_grid_id": "Int64",
        "to_code": "string",
        "to_village": "string",
        "to_town": "string",
        "quality": "string",
        "snap_distance_m": "float64",
        "to_member": "Int64",
    }
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in kinds.items()})


def stage_on_dask(
    session: Session,
    client: Client,
    *,
    partitions: int | None = None,
    snap_m: float = DEFAULT_SNAP_M,
    progress: bool = True,
    table: str = reassign.STAGE_PREFIX,
    on_partition: Callable[[int], None] | None = None,
) -> int:
    """Join every open case to the grids in force on the Dask cluster of ``client`` and COPY
    each partition into the staging table ``table`` as it completes (then ``on_partition``
    with its row count); the staged row count.

    Raises ``BulkJobError`` when the cluster fails; the staging table is a temporary table of
    the caller's transaction, so rolling back drops it."""
    import dask_geopandas
    import geopandas as gpd

    cases = read_open_cases(session)
    grids = read_current_grids(session)
    reassign.create_stage(session, table)
    if len(cases):
        points = gpd.GeoDataFrame(
            cases.drop(columns=["x", "y"]),
            geometry=gpd.points_from_xy(cases["x"], cases["y"]),
            crs="EPSG:4326",
        )
        count = partitions or max(1, len(cases) // 100_000)
        frame = dask_geopandas.from_geopandas(points, npartitions=count)
        try:
            with cluster_failures():
                grids_on_workers = client.scatter(grids, broadcast=True)
                futures = client.compute(
                    frame.map_partitions(
                        join_partition, grids_on_workers, meta=_meta()
                    ).to_delayed()
                )
            # Each partition is COPYed as soon as it is done, while the others still run.
            for _, part in as_finished(
                futures, progress=progress, desc="joining cases", unit="partition"
            ):
                buffer = io.StringIO()
                part.to_csv(buffer, index=False, header=False, na_rep="\\N")
                reassign.copy_into_stage(session, table, buffer.getvalue())
                if on_partition is not None:
                    on_partition(len(part))
        except BulkJobError:
            # Nothing half-written: the staged rows go now (the rollback would drop them too).
            session.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            raise
    return reassign.finish_stage(session, table=table, snap_m=snap_m)

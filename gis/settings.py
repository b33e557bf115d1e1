"""Typed settings, read from the environment (prefix ``GIS_``) and an optional ``.env`` file."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The four platforms' keys (gis.layers.categories.Platform), for settings that name them.
PlatformName = Literal["governance", "market", "enforcement", "service"]


DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis"
# The coordinates a configured basemap's tiles are drawn in (gis.maps.tiles.BASEMAP_CRS_NAMES).
BASEMAP_CRS_PATTERN = "^(wgs84|gcj02)$"


# Defaults of settings that are also the defaults of a service's parameter when its caller passes
# none (a test, the demo loader, a library call): one figure each, the README's.
DEFAULT_SNAP_M = 50.0  # GIS_SNAP_METERS
DEFAULT_COVERAGE_MARGIN_M = 50_000.0  # GIS_COVERAGE_MARGIN_M
DEFAULT_PLAN_LOCK_TIMEOUT_S = 10.0  # GIS_PLAN_LOCK_TIMEOUT_S
DEFAULT_DISPATCH_MAX_OUTSIDE_M = 20_000.0  # GIS_DISPATCH_MAX_OUTSIDE_M
DEFAULT_ROUTE_SNAP_SPEED_KMH = 5.0  # GIS_ROUTE_SNAP_SPEED_KMH
DEFAULT_ROUTE_MAX_SNAP_M = 1_000.0  # GIS_ROUTE_MAX_SNAP_M
DEFAULT_ROUTE_MARGIN_M = 3_000.0  # GIS_ROUTE_MARGIN_M


class Settings(BaseSettings):
    """Every setting of the service; each is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="GIS_", env_file=".env", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the PostGIS database (driver postgresql+psycopg).",
    )
    db_pool_size: int = Field(
        10,
        ge=1,
        le=200,
        description="Connections per pool and worker: the sync pool, and as many asyncpg "
        "connections for the hot paths (intake, locate, token checks).",
    )
    db_pool_timeout_s: float = Field(
        5.0, gt=0, le=120, description="Seconds to wait for a pooled connection before 503."
    )
    db_connect_timeout_s: int = Field(
        3, ge=1, le=60, description="Seconds to wait for PostgreSQL to accept a connection."
    )
    db_pre_ping: bool = Field(
        False,
        description="Test each pooled connection with a round trip before use (costs one per "
        "request; without it a request that meets a dead connection gets a 503).",
    )
    db_statement_timeout_ms: int = Field(
        30_000, ge=100, description="Per-statement time limit inside the service (ms)."
    )
    db_jit: bool = Field(
        False,
        description="Let PostgreSQL JIT-compile the service's queries (its `jit`, on by "
        "default in PostgreSQL). Off: the decision is made on a plan's estimated cost, and a "
        "cached plan over the monthly partitions is costed with every month, so with five "
        "years attached a case read by id (1.8 ms) was compiled on every call for 1.2 s "
        "(docs/partitioning.md).",
    )
    read_database_urls: tuple[str, ...] = Field(
        (),
        max_length=16,
        description="Read replicas (JSON list of URLs like GIS_DATABASE_URL, streaming "
        "replicas of it): reads that may be a little stale (maps, statistics, OGC items and "
        "tiles, lists, analytics) go to one of them; writes, and a client's reads right after "
        "its own write, go to the primary. See docs/scaling.md.",
    )
    replica_max_lag_s: float = Field(
        10.0,
        gt=0,
        le=3_600,
        description="A replica whose replay lags the primary by more than this (seconds, "
        "pg_last_xact_replay_timestamp) is skipped until it catches up.",
    )
    replica_check_s: float = Field(
        1.0,
        gt=0,
        le=300,
        description="Seconds between checks of each replica's lag and health (in the "
        "background, never per request).",
    )
    read_your_writes_s: float = Field(
        15.0,
        ge=0,
        le=3_600,
        description="After a write, the same client (token, or the cookie set on the write's "
        "answer) reads from the primary for this long (seconds; never less than "
        "GIS_REPLICA_MAX_LAG_S + GIS_REPLICA_CHECK_S).",
    )
    host: str = Field("127.0.0.1", description="Address `gis serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `gis serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes for `gis serve`.")
    telemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans, metrics and logs (they go to the providers "
        "configured in the process, e.g. by opentelemetry-instrument); off, each request skips "
        "the check.",
    )
    snap_meters: float = Field(
        DEFAULT_SNAP_M,
        ge=0,
        le=5_000,
        description="A point this close to a grid is snapped into it.",
    )
    dask_scheduler: str | None = Field(
        None,
        description="Dask scheduler (tcp://host:8786) for bulk jobs run with --dask; "
        "unset: a local cluster.",
    )
    coverage_margin_m: float = Field(
        DEFAULT_COVERAGE_MARGIN_M,
        ge=0,
        le=500_000,
        description="A report outside every town but this close to one (metres) goes to that "
        "town's queue as `outside`; farther is 422 outside_coverage.",
    )
    duplicate_radius_m: float = Field(
        100.0, ge=0, le=10_000, description="Radius for possible-duplicate incidents."
    )
    duplicate_window_h: float = Field(
        24.0, ge=0, le=24 * 365, description="Time window for possible-duplicate incidents."
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1_024, description="Largest request body accepted (bytes); larger is 413."
    )
    import_max_bytes: int = Field(
        20_000_000,
        ge=10_000,
        le=100_000_000,
        description="Largest ledger file imported (bytes; CLI and POST /imports); larger is 413.",
    )
    max_page_size: int = Field(1_000, ge=1, le=100_000, description="Largest page size allowed.")
    overlap_tolerance_m2: float = Field(
        1.0, ge=0, description="Overlap between grids tolerated by boundary validation (m²)."
    )
    plan_balance_threshold: float = Field(
        0.30,
        gt=0,
        le=10,
        description="A proposed grid whose households, population or 12-month incidents deviate "
        "from its village mean by more than this fraction is flagged (0.30 = ±30 %).",
    )
    plan_warnings_block: bool = Field(
        False, description="Boundary-plan warnings (repairs, imbalance…) also block apply."
    )
    plan_lock_timeout_s: float = Field(
        DEFAULT_PLAN_LOCK_TIMEOUT_S,
        gt=0,
        le=300,
        description="How long applying a plan waits for a concurrent change to the same "
        "village to finish before answering 409 (s).",
    )
    tianditu_key: str | None = Field(None, description="Tianditu (天地图) basemap key, optional.")
    map_assets_dir: str | None = Field(
        None,
        description="Folder of the Leaflet/plugin files the map pages load (`gis map assets` "
        "fills it from the npm registry); default ~/.cache/gis/map-assets.",
    )
    map_assets: str = Field(
        "auto",
        pattern="^(auto|local|cdn)$",
        description="Where map pages load Leaflet from: local (served by this service at "
        "/maps/assets; 503 until fetched), cdn (public CDNs), auto (local once fetched).",
    )
    basemap: str = Field(
        "osm",
        pattern="^(osm|tianditu|tianditu_satellite|amap|intranet|local)$",
        description="The map pages' basemap when the request names none: osm, tianditu, "
        "tianditu_satellite, amap, intranet (GIS_BASEMAP_URL) or local (GIS_BASEMAP_FILE).",
    )
    basemap_url: str | None = Field(
        None,
        max_length=2000,
        description="The town's own tile server (basemap=intranet): an XYZ template "
        "(http://10.1.2.3/tiles/{z}/{x}/{y}.png) or a WMTS GetTile/RESTful URL in the "
        "Web-Mercator tiling ({TileMatrix}, {TileRow}, {TileCol}), e.g. a provincial "
        "Tianditu node.",
    )
    basemap_labels_url: str | None = Field(
        None,
        max_length=2000,
        description="Optional label tiles drawn over GIS_BASEMAP_URL (Tianditu's cva layer), "
        "same placeholders.",
    )
    basemap_crs: str = Field(
        "wgs84",
        pattern=BASEMAP_CRS_PATTERN,
        description="Coordinates GIS_BASEMAP_URL's tiles are drawn in: wgs84 (also CGCS2000, "
        "Tianditu) or gcj02 (overlays are then shifted as for AMap).",
    )
    basemap_subdomains: str = Field(
        "",
        max_length=40,
        description="Letters or digits for {s} in GIS_BASEMAP_URL (e.g. 01234567).",
    )
    basemap_attribution: str = Field(
        "内网底图 intranet basemap",
        max_length=500,
        description="Credit line shown for GIS_BASEMAP_URL's tiles.",
    )
    basemap_max_zoom: int = Field(
        18,
        ge=1,
        le=24,
        description="Deepest zoom GIS_BASEMAP_URL has tiles for (deeper: enlarged).",
    )
    basemap_file: str | None = Field(
        None,
        description="A raster tile archive (.mbtiles or .pmtiles) served at "
        "/maps/tiles/{z}/{x}/{y} for basemap=local: a basemap with no network at all.",
    )
    basemap_file_crs: str = Field(
        "wgs84",
        pattern=BASEMAP_CRS_PATTERN,
        description="Coordinates GIS_BASEMAP_FILE's tiles are drawn in: wgs84 or gcj02.",
    )
    dispatch_max_outside_m: float = Field(
        DEFAULT_DISPATCH_MAX_OUTSIDE_M,
        gt=0,
        description="A unit (AVL) or camera position farther than this from every town is "
        "rejected (m).",
    )
    route_snap_speed_kmh: float = Field(
        DEFAULT_ROUTE_SNAP_SPEED_KMH,
        gt=0,
        le=60,
        description="Speed of the off-road leg between a point and its nearest road (km/h).",
    )
    route_max_snap_m: float = Field(
        DEFAULT_ROUTE_MAX_SNAP_M,
        gt=0,
        le=20_000,
        description="A point farther than this from every road is unreachable by road (m).",
    )
    route_margin_m: float = Field(
        DEFAULT_ROUTE_MARGIN_M,
        ge=0,
        le=100_000,
        description="Roads this far beyond the box around incident and candidate units are "
        "searched for routes (m).",
    )
    token_cache_s: float = Field(
        10.0,
        ge=0,
        le=300,
        description="Seconds a checked token is trusted without asking the database again "
        "(0: every request). Revoking a user clears every worker's cache at once (NOTIFY); "
        "this is the bound if that notice is lost.",
    )
    auth_required: bool = Field(
        True, description="Endpoints need a bearer token (off only for local experiments)."
    )
    public_layers: bool = Field(
        True,
        description="Grids and their history, regions, categories and the errand services "
        "readable without one.",
    )
    stats_stale_after_s: float = Field(
        900.0,
        ge=0,
        le=7 * 86_400,
        description="Statistics without as_of come from the stored facts (gis stats refresh) "
        "unless these are older than this (seconds); then they are computed exactly as of now.",
    )
    sla_escalate_after_h: float = Field(
        24.0,
        ge=0,
        le=24 * 365,
        description="The SLA sweep escalates an open case overdue by more than this (hours).",
    )
    media_dir: str | None = Field(
        None,
        description="Folder of stored photos (content-addressed, EXIF stripped); default "
        "~/.local/share/gis/media.",
    )
    media_s3_bucket: str | None = Field(
        None,
        max_length=63,
        description="Store photos in this S3-compatible bucket instead of GIS_MEDIA_DIR "
        "(Aliyun OSS, Tencent COS, Ceph, MinIO…).",
    )
    media_s3_url: str | None = Field(
        None,
        max_length=500,
        description="The S3 endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com or "
        "http://10.0.0.5:9000 (unset: AWS itself).",
    )
    media_s3_region: str | None = Field(
        None, max_length=50, description="The bucket's region, if the endpoint needs one."
    )
    media_s3_key_id: str | None = Field(
        None, max_length=200, description="Access key id for the bucket (else boto3's own chain)."
    )
    media_s3_secret: str | None = Field(
        None, max_length=200, description="Secret access key for the bucket."
    )
    media_s3_prefix: str = Field(
        "media/", max_length=200, description="Key prefix of the photos in the bucket."
    )
    media_max_bytes: int = Field(
        10_000_000,
        ge=10_000,
        le=100_000_000,
        description="Largest photo accepted (bytes); upload requests may carry up to 5 of them.",
    )
    media_max_pixels: int = Field(
        50_000_000,
        ge=10_000,
        le=500_000_000,
        description="Largest photo accepted (width × height pixels): larger ones are refused "
        "before they are decoded (decompression bombs).",
    )
    open311_public: bool = Field(
        True,
        description="Open311 `GET requests` and `servicerequestupdates` answer without an "
        "api_key (reporters' contacts never shown, private platforms left out).",
    )
    open311_private_platforms: tuple[PlatformName, ...] = Field(
        ("governance",),
        description="Platforms whose cases Open311 shows only to staff tokens (JSON list, e.g. "
        '`["governance"]`: disputes and security hazards are not published).',
    )
    open311_contact: str = Field(
        "", max_length=500, description="Contact line of the Open311 discovery document."
    )
    device_clock_skew_s: float = Field(
        300.0,
        ge=0,
        le=3_600,
        description="How far ahead of the server a device's own time may be (a report's "
        "occurred_at, an AVL fix's recorded_at) before it is refused (seconds). Such times stay "
        "data about the observation, stored beside the server's receipt time; they are never "
        "event times.",
    )
    ogc_max_limit: int = Field(
        10_000,
        ge=1,
        le=100_000,
        description="Largest `limit` of an OGC API items page (/ogc); larger is 400. The "
        "default page is 10 features.",
    )
    ogc_exact_count_max: int = Field(
        100_000,
        ge=0,
        le=100_000_000,
        description="OGC `numberMatched` is counted exactly up to this many features; above it "
        "the planner's estimate is given (and `numberMatchedEstimated: true`).",
    )
    ogc_statement_timeout_ms: int = Field(
        5_000,
        ge=100,
        le=600_000,
        description="Time limit of each OGC items query with a CQL2 filter (ms): a crafted "
        "filter cannot scan for longer (503, retry with a narrower filter).",
    )
    sample_seed: int = Field(20261127, description="Seed of the demo county generator.")
    page_cache_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="A built map page is served to every caller of its town for this long "
        "(seconds; 0: build each time). Its live updates replay what happened since.",
    )
    stats_cache_s: float = Field(
        5.0,
        ge=0,
        le=600,
        description="A statistics reply (/stats/cases, /stats/towns, /stats/grids) is served "
        "again for this long to callers asking the same of the same towns (seconds; 0: "
        "computed each time). The stored facts it reads change only when refreshed.",
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, le=120, description="Seconds a webhook receiver has to answer a delivery."
    )
    # The live feed (GET /events/stream, docs/live.md).
    live_poll_s: float = Field(
        0.1,
        gt=0,
        le=10,
        description="Seconds between two reads of the feed by each API process's hub (writers "
        "do not NOTIFY: a NOTIFY makes every commit wait for the others'). Adds at most this "
        "to an event's way to the screens.",
    )
    live_heartbeat_s: float = Field(
        15.0, gt=0, le=300, description="Seconds between heartbeat comments on an idle stream."
    )
    live_max_replay: int = Field(
        20_000,
        ge=0,
        le=1_000_000,
        description="A stream reconnecting more than this many feed events behind (ids of "
        "the whole feed, not only its own) is sent `reload`.",
    )
    live_queue: int = Field(
        2_000,
        ge=10,
        le=1_000_000,
        description="Events buffered per subscriber; one that falls this far behind is sent "
        "`reload` and closed.",
    )
    live_retention_h: float = Field(
        48.0,
        gt=0,
        le=24 * 365,
        description="Feed events are kept this long (hours) for reconnects and webhooks; an "
        "older Last-Event-ID is sent `reload`.",
    )
    sse_max_s: float = Field(
        0.0,
        ge=0,
        description="Longest life of one event stream (s); 0: until the client leaves. Browsers "
        "reconnect with Last-Event-ID, so a bound loses nothing (tests and fuzzers set one).",
    )
    analytics_warmup: bool = Field(
        True,
        description="Compile the hotspot statistics' numba kernels in a background thread at "
        "startup (~15 s of CPU once per process), so that no request pays for it.",
    )
    job_workers: int = Field(
        1,
        ge=1,
        le=8,
        description="Background jobs (redistricting, siting) an API process runs at once; "
        "more wait queued.",
    )
    job_heartbeat_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A running job whose heartbeat is older than this (its process died) is "
        "marked failed when read or at startup.",
    )

    @property
    def stats_stale_after(self) -> timedelta:
        """How old the stored statistics facts may be before figures are computed exactly
        (``stats_stale_after_s``): one reading for /stats, the command-room map and the CLI."""
        return timedelta(seconds=self.stats_stale_after_s)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        return _postgres_url(value, "GIS_DATABASE_URL")

    @field_validator("read_database_urls")
    @classmethod
    def _replicas_postgres_only(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_postgres_url(v, "GIS_READ_DATABASE_URLS") for v in values)


def _postgres_url(value: str, name: str) -> str:
    """``value`` as a postgresql+psycopg URL, or the error saying what ``name`` must be."""
    if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ValueError(f"{name} must be a PostgreSQL URL (postgresql+psycopg://…)")
    if value.startswith(("postgresql://", "postgres://")):
        value = "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

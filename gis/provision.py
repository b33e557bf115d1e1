"""Make sure a PostGIS database is reachable: install, start, create, extend (`gis db up`).

On a Debian/Ubuntu machine with root (or sudo) this installs the PostgreSQL server if absent and
the PostGIS and pgRouting packages for the server's major version; elsewhere it stops with a
message saying exactly what to install. It never touches a remote server's packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from gis.errors import ProvisioningError

Log = Callable[[str], None]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "", None}


def _libpq_dsn(url: str, *, database: str | None = None) -> str:
    """A libpq connection string for a SQLAlchemy URL, optionally for another database."""
    parsed = make_url(url)
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": parsed.username or "postgres",
        "dbname": database or parsed.database or "postgres",
        "connect_timeout": "5",
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{key}='{value}'" for key, value in parts.items())


def _is_local(url: str) -> bool:
    return make_url(url).host in LOCAL_HOSTS


def _run(command: list[str], log: Log) -> None:
    """Run a system command (with sudo when not root), echoing it; raise on failure."""
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ProvisioningError(
                "need root to run: " + " ".join(command) + " — run it as root, then retry"
            )
        command = ["sudo", "-n", *command]
    log("$ " + " ".join(command))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise ProvisioningError(f"command failed ({result.returncode}): {' '.join(command)}")


_apt_updated = False


def _apt_install(packages: list[str], log: Log) -> None:
    """Install Debian packages, refreshing the package lists once if a package is unknown."""
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise ProvisioningError(
            "no apt-get on this machine: install PostgreSQL with PostGIS 3 and pgRouting "
            f"({', '.join(packages)} or your system's equivalent), or point GIS_DATABASE_URL "
            "at a PostGIS server (docker compose up -d db gives one)"
        )
    try:
        _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], log)
    except ProvisioningError:
        if _apt_updated:
            raise
        _apt_updated = True
        _run(["apt-get", "update"], log)
        _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], log)


def _start_local_clusters(log: Log) -> None:
    """Start every local PostgreSQL cluster (containers have no systemd)."""
    if shutil.which("pg_lsclusters") is None:
        return
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] != "online":
            version, cluster = fields[0], fields[1]
            _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"], log)


def _connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def _wait_for_server(url: str, log: Log, *, seconds: float = 30) -> psycopg.Connection:
    deadline = time.monotonic() + seconds
    dsn = _libpq_dsn(url, database="postgres")
    while True:
        try:
            return _connect(dsn)
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise ProvisioningError(
                    f"cannot connect to PostgreSQL ({error}). Check GIS_DATABASE_URL, or start "
                    "the server: pg_ctlcluster --skip-systemctl-redirect <version> main start"
                ) from error
            time.sleep(1)


def ensure_server(url: str, log: Log) -> psycopg.Connection:
    """A connection to the server's maintenance database, installing or starting it if local."""
    try:
        return _connect(_libpq_dsn(url, database="postgres"))
    except psycopg.OperationalError as error:
        if not _is_local(url):
            raise ProvisioningError(
                f"cannot reach the PostgreSQL server in GIS_DATABASE_URL: {error}"
            ) from error
        if "password authentication failed" in str(error) or "no password" in str(error):
            raise ProvisioningError(
                f"PostgreSQL refused the credentials in GIS_DATABASE_URL ({error}); put the right "
                "user and password in GIS_DATABASE_URL"
            ) from error
        log(f"PostgreSQL is not answering ({str(error).strip()}); starting it")
    if shutil.which("pg_lsclusters") is None and not Path("/usr/lib/postgresql").exists():
        log("PostgreSQL is not installed; installing the distribution's server")
        _apt_install(["postgresql", "postgresql-contrib"], log)
        _start_local_clusters(log)
        _set_local_password(url, log)
    else:
        _start_local_clusters(log)
    return _wait_for_server(url, log)


def _set_local_password(url: str, log: Log) -> None:
    """A fresh Debian server uses password auth on TCP: give the URL's user its password."""
    parsed = make_url(url)
    user, password = parsed.username or "postgres", parsed.password
    if not password or shutil.which("runuser") is None:
        return
    log(f"setting the password of role {user} from GIS_DATABASE_URL")
    statement = f"ALTER ROLE \"{user}\" WITH LOGIN SUPERUSER PASSWORD '{password}'"
    if user != "postgres":
        statement = f"CREATE ROLE \"{user}\" WITH LOGIN SUPERUSER PASSWORD '{password}'"
    _run(["runuser", "-u", "postgres", "--", "psql", "-c", statement], log)


def _server_major(connection: psycopg.Connection) -> int:
    row = connection.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10_000


def _available_extensions(connection: psycopg.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM pg_available_extensions").fetchall()
    return {row[0] for row in rows}


def ensure_postgis_packages(url: str, connection: psycopg.Connection, log: Log) -> None:
    """Install PostGIS and pgRouting for the server's major version if the server lacks them."""
    available = _available_extensions(connection)
    if {"postgis", "pgrouting"} <= available:
        return
    major = _server_major(connection)
    packages = [f"postgresql-{major}-postgis-3", f"postgresql-{major}-pgrouting"]
    if not _is_local(url):
        raise ProvisioningError(
            "the PostgreSQL server in GIS_DATABASE_URL lacks PostGIS/pgRouting; on that server "
            f"install {' and '.join(packages)} (Debian/Ubuntu), or use the postgis/postgis image"
        )
    log(f"installing {', '.join(packages)} for PostgreSQL {major}")
    _apt_install(packages, log)
    missing = {"postgis", "pgrouting"} - _available_extensions(connection)
    if missing:
        raise ProvisioningError(
            f"PostgreSQL {major} still lacks {', '.join(sorted(missing))} after installing "
            f"{' '.join(packages)}; install them by hand and retry"
        )


def ensure_database(url: str, connection: psycopg.Connection, log: Log) -> None:
    """Create the URL's database if absent, and the extensions it needs."""
    database = make_url(url).database or "gis"
    exists = connection.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
    ).fetchone()
    if not exists:
        log(f"creating database {database}")
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with _connect(_libpq_dsn(url)) as target:
        for extension in ("postgis", "pgrouting"):
            target.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
            )
        row = target.execute("SELECT postgis_lib_version(), pgr_version()").fetchone()
        assert row is not None
        log(f"database {database}: PostGIS {row[0]}, pgRouting {row[1]}")


def drop_database(url: str, log: Log) -> None:
    """Drop the URL's database (used by tests to start clean)."""
    database = make_url(url).database or "gis"
    with _connect(_libpq_dsn(url, database="postgres")) as connection:
        log(f"dropping database {database}")
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def up(url: str, log: Log = print) -> None:
    """Provision everything a database URL needs, from the server to the extensions."""
    with ensure_server(url, log) as connection:
        ensure_postgis_packages(url, connection, log)
        ensure_database(url, connection, log)

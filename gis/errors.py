"""One error hierarchy for the whole service; the HTTP status of each lives in ``STATUS_CODES``.

Services raise these; the API turns them into ``{"code": …, "detail": …}`` with the status from the
table below, and the CLI prints ``detail``. Driver errors are translated in ``gis.db``.
"""

from __future__ import annotations

from typing import Any


class GisError(Exception):
    """Base of every error the service reports to a user."""

    code = "error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequestError(GisError):
    """The request is malformed or asks for something impossible."""

    code = "bad_request"


class ValidationError(BadRequestError):
    """The request is well formed but its values are not acceptable."""

    code = "validation_error"


class InvalidCoordinatesError(ValidationError):
    """Coordinates are NaN, out of range or plausibly swapped."""

    code = "invalid_coordinates"


class UnknownCrsError(ValidationError):
    """A coordinate reference system we do not accept."""

    code = "unknown_crs"


class InvalidGeometryError(ValidationError):
    """A geometry that is invalid and cannot be repaired, or of the wrong type."""

    code = "invalid_geometry"


class UnknownCodeError(ValidationError):
    """A code (category, platform, town, unit type…) that does not exist."""

    code = "unknown_code"


class FutureEventError(ValidationError):
    """An event dated ahead of the server's clock: the log records what has happened."""

    code = "event_in_future"


class NotFoundError(GisError):
    """The addressed resource does not exist (or is outside the caller's jurisdiction)."""

    code = "not_found"


class ConflictError(GisError):
    """The request conflicts with the current state (idempotency, versions, transitions)."""

    code = "conflict"


class InvalidTransitionError(ConflictError):
    """A workflow action that is not allowed from the current state."""

    code = "invalid_transition"


class AssignedElsewhereError(ConflictError):
    """An assignment based on a stale view: someone else gave the case to a unit meanwhile."""

    code = "assigned_elsewhere"


class UnitUnavailableError(ConflictError):
    """An assignment to a unit that cannot take a case now (off duty)."""

    code = "unit_unavailable"


class OutsideCoverageError(ValidationError):
    """A point far outside every region the service knows."""

    code = "outside_coverage"


class PreconditionFailedError(GisError):
    """An ``If-Match`` precondition no longer holds: the resource changed since it was read."""

    code = "precondition_failed"


class PayloadTooLargeError(GisError):
    """The request body is larger than allowed."""

    code = "payload_too_large"


class AuthenticationError(GisError):
    """No valid credentials."""

    code = "unauthorized"


class PermissionDeniedError(GisError):
    """Valid credentials without the right role."""

    code = "forbidden"


class DatabaseUnavailableError(GisError):
    """PostgreSQL cannot be reached; the request may be retried."""

    code = "database_unavailable"


class ProvisioningError(GisError):
    """The database server or PostGIS cannot be provided on this machine."""

    code = "provisioning_error"


class MapAssetsMissingError(GisError):
    """The local copies of the map libraries (Leaflet and plugins) have not been fetched."""

    code = "map_assets_missing"


class BasemapUnavailableError(GisError):
    """A basemap the service is configured with cannot be used (its archive is missing or not
    raster tiles, its URL template cannot address tiles)."""

    code = "basemap_unavailable"


# The HTTP status of every error class; the most specific class in an error's MRO wins.
class BulkJobError(GisError):
    """A bulk job's Dask cluster failed mid-job (scheduler or workers gone); nothing was written."""

    code = "bulk_job_failed"


STATUS_CODES: dict[type[GisError], int] = {
    GisError: 500,
    BadRequestError: 400,
    ValidationError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    PayloadTooLargeError: 413,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    DatabaseUnavailableError: 503,
    ProvisioningError: 503,
    MapAssetsMissingError: 503,
    BasemapUnavailableError: 503,
    BulkJobError: 503,
}


def status_code_for(error: GisError) -> int:
    """The HTTP status for an error, from the most specific class listed in ``STATUS_CODES``."""
    for klass in type(error).__mro__:
        if klass in STATUS_CODES:
            return STATUS_CODES[klass]
    return 500

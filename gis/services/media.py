"""Photos: checked by their bytes, stripped of EXIF, stored by content hash, served by the rules.

A photo is accepted only if Pillow reads it as JPEG, PNG or WebP whatever its name says, within a
size and a pixel limit (decompression bombs are refused before they are decoded). The stored copy
is re-encoded, so EXIF (GPS, device) and other metadata are gone; its orientation is applied
first. Cases refer to a stored photo as ``media:<sha256>`` in their photo list, beside the URLs
other systems send. The bytes live in a ``MediaStore``: a content-addressed directory
(``GIS_MEDIA_DIR``) here.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ConflictError, NotFoundError, PayloadTooLargeError, ValidationError
from gis.layers.errands import Errand, ErrandEvent
from gis.layers.incidents import (
    EVENT_PHOTOS_WHERE,
    MEDIA_PHOTOS_WHERE,
    Incident,
    IncidentEvent,
)
from gis.layers.media import Media
from gis.queries import Flow, Query, run
from gis.settings import Settings

MEDIA_REF = re.compile(r"^media:(?P<id>[0-9a-f]{64})$")
MEDIA_REF_PATTERN = MEDIA_REF.pattern
# Photos one request may upload at once.
MAX_UPLOADS = 5
THUMB_PX = 320
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/jpeg"}
# What a format is stored as: HEIC (the iPhone's own) becomes a JPEG every browser shows.
_STORED_AS = {"HEIF": "JPEG"}
_GPS_IFD = 0x8825


class MediaStore(Protocol):
    """Where the bytes of stored media live, by key."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing nothing: keys are content hashes)."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``, or ``NotFoundError``."""

    def delete(self, key: str) -> None:
        """Forget ``key`` if it is there."""


class DirectoryStore:
    """Media as files under a directory, two hex digits of fan-out (``ab/abcdef…``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes) -> None:
        """Write the file atomically: a reader never sees half of it."""
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def get(self, key: str) -> bytes:
        """The file's bytes, or ``NotFoundError``."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no media {key}") from None

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """Media as objects of an S3-compatible bucket (boto3), keys under a prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        """The bucket GIS_MEDIA_S3_* name (credentials from there, else boto3's own chain)."""
        return cls(_s3_client(settings), settings.media_s3_bucket or "", settings.media_s3_prefix)

    def put(self, key: str, data: bytes) -> None:
        """Upload the object (a PUT is atomic: readers see all of it or nothing)."""
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes:
        """The object's bytes, or ``NotFoundError``."""
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"no media {key}") from None
        body: bytes = reply["Body"].read()
        return body

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers the same whether it was there or not)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


@lru_cache(maxsize=8)
def _s3_client_for(
    url: str | None, region: str | None, key_id: str | None, secret: str | None
) -> Any:
    import boto3
    from botocore.config import Config

    # One client per configuration and process: boto3 clients are thread-safe and costly to make.
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        # Path-style addressing works with every S3-compatible server (MinIO, Ceph, moto).
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def _s3_client(settings: Settings) -> Any:
    return _s3_client_for(
        settings.media_s3_url,
        settings.media_s3_region,
        settings.media_s3_key_id,
        settings.media_s3_secret,
    )


def store_for(settings: Settings) -> MediaStore:
    """The media store the settings name: the S3 bucket if one is set, else the directory."""
    if settings.media_s3_bucket:
        return S3Store.from_settings(settings)
    root = settings.media_dir or str(Path.home() / ".local" / "share" / "gis" / "media")
    return DirectoryStore(Path(root).expanduser())


@dataclass(frozen=True)
class Photo:
    """A stored photo."""

    id: str
    content_type: str
    bytes: int
    width: int
    height: int
    # Where the upload's EXIF GPS put it (WGS84 lon, lat): a fallback for a report without a
    # point, to be flagged as such (location method ``photo_exif``).
    exif_lonlat: tuple[float, float] | None = None

    @property
    def ref(self) -> str:
        """How a case's photo list names it."""
        return f"media:{self.id}"


def _encode(image: Any, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=90)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=90)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def _register_heif() -> None:
    """Let Pillow read HEIC/HEIF (pillow-heif), once."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _dms(value: Any) -> float:
    degrees, minutes, seconds = (float(part) for part in value)
    return degrees + minutes / 60 + seconds / 3600


def exif_lonlat(image: Any) -> tuple[float, float] | None:
    """The WGS84 point an image's EXIF GPS tags give, or None (absent, partial or nonsense)."""
    try:
        gps = image.getexif().get_ifd(_GPS_IFD)
        lat, lon = _dms(gps[2]), _dms(gps[4])
        if gps.get(1) == "S":
            lat = -lat
        if gps.get(3) == "W":
            lon = -lon
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
        return None
    return lon, lat


@dataclass(frozen=True)
class CleanPhoto:
    """A checked photo: the stored bytes (no metadata), its thumbnail, and what EXIF said."""

    data: bytes
    thumbnail: bytes
    content_type: str
    width: int
    height: int
    # Read from the upload before its EXIF was dropped; never stored with the photo.
    exif_lonlat: tuple[float, float] | None


def clean_photo(data: bytes, *, settings: Settings) -> CleanPhoto:
    """The photo re-encoded without metadata, its thumbnail, type and size — or why not."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _register_heif()

    if not data:
        raise ValidationError("the photo is empty")
    if len(data) > settings.media_max_bytes:
        raise PayloadTooLargeError(
            f"the photo has {len(data)} bytes; at most {settings.media_max_bytes} "
            "(GIS_MEDIA_MAX_BYTES)"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            if fmt not in _FORMATS:
                raise ValidationError(
                    f"photos must be JPEG, PNG, WebP or HEIC; this file is {fmt or 'not an image'}"
                )
            width, height = image.size
            if width * height > settings.media_max_pixels:
                raise ValidationError(
                    f"the photo has {width}×{height} pixels; at most "
                    f"{settings.media_max_pixels} (GIS_MEDIA_MAX_PIXELS)"
                )
            image.load()
            lonlat = exif_lonlat(image)
            upright = ImageOps.exif_transpose(image)
            cleaned = _encode(upright, _STORED_AS.get(fmt, fmt))
            thumb = upright.copy()
            thumb.thumbnail((THUMB_PX, THUMB_PX))
            thumbnail = _encode(thumb, "JPEG")
            width, height = upright.size
    except UnidentifiedImageError:
        raise ValidationError("the file is not an image (JPEG, PNG, WebP or HEIC)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValidationError(f"the photo is damaged or truncated: {error}") from None
    return CleanPhoto(cleaned, thumbnail, _FORMATS[fmt], width, height, lonlat)


def save_photo(
    session: Session,
    store: MediaStore,
    data: bytes,
    *,
    settings: Settings,
    uploaded_by: int | None,
) -> Photo:
    """Check, clean and store a photo, and record it; the caller commits (or ``forget``s)."""
    photo = clean_photo(data, settings=settings)
    key = hashlib.sha256(photo.data).hexdigest()
    if session.get(Media, key) is None:
        store.put(key, photo.data)
        store.put(f"{key}.thumb", photo.thumbnail)
        session.add(
            Media(
                id=key,
                content_type=photo.content_type,
                bytes=len(photo.data),
                width=photo.width,
                height=photo.height,
                uploaded_by=uploaded_by,
            )
        )
        session.flush()
    return Photo(
        key, photo.content_type, len(photo.data), photo.width, photo.height, photo.exif_lonlat
    )


_USED_SQL = sa.text(
    f"""
SELECT EXISTS (SELECT 1 FROM incidents
               WHERE photos @> jsonb_build_array(CAST(:ref AS text)) AND {MEDIA_PHOTOS_WHERE})
    OR EXISTS (SELECT 1 FROM incident_events
               WHERE data -> 'photos' @> jsonb_build_array(CAST(:ref AS text))
                 AND {EVENT_PHOTOS_WHERE})
    OR EXISTS (SELECT 1 FROM errand_events
               WHERE data -> 'photos' @> jsonb_build_array(CAST(:ref AS text)))
"""  # noqa: S608 -- module constants only
)


def discard_photo(session: Session, media_id: str, *, user_id: int | None) -> Photo:
    """Delete the record of a photo its uploader no longer needs (the report it was for
    failed); a photo a case or an action names stays (``ConflictError``), another user's is not
    found. After the commit, ``forget`` removes its files."""
    item = get_media(session, media_id)
    if user_id is not None and item.uploaded_by != user_id:
        raise NotFoundError(f"no media {media_id}")
    if session.execute(_USED_SQL, {"ref": f"media:{media_id}"}).scalar():
        raise ConflictError(f"media:{media_id} is shown by a case; it stays")
    session.delete(item)
    session.flush()
    return Photo(item.id, item.content_type, item.bytes, item.width, item.height)


def forget(session: Session, store: MediaStore, photos: Iterable[Photo]) -> None:
    """Remove the files of photos whose record did not survive (a report that failed)."""
    for photo in photos:
        if session.get(Media, photo.id) is None:
            store.delete(photo.id)
            store.delete(f"{photo.id}.thumb")


def media_ids(photos: Iterable[str]) -> list[str]:
    """The stored-media ids among a case's photo references."""
    return [m.group("id") for p in photos if (m := MEDIA_REF.match(p))]


_KNOWN_SQL = sa.text("SELECT id, uploaded_by FROM media WHERE id = ANY(CAST(:ids AS text[]))")


def check_media_flow(photos: Sequence[str], *, uploader: int | None = None) -> Flow[None]:
    """Raise ``ValidationError`` for a ``media:`` reference to nothing stored, or — given the
    ``uploader`` (a user id) — to a photo another user uploaded (a flow)."""
    wanted = media_ids(photos)
    if not wanted:
        return
    rows = yield Query(_KNOWN_SQL, {"ids": wanted}, many=True)
    missing = sorted(set(wanted) - {row["id"] for row in rows})
    if missing:
        raise ValidationError(
            f"unknown media {', '.join('media:' + m for m in missing)}: upload with POST /media"
        )
    if uploader is not None:
        # A photo id is not a capability: naming one seen elsewhere must not attach it here.
        foreign = sorted(
            row["id"]
            for row in rows
            if row["uploaded_by"] is not None and row["uploaded_by"] != uploader
        )
        if foreign:
            raise ValidationError(
                f"media {', '.join('media:' + m for m in foreign)} was uploaded by another "
                "user: upload your own photo with POST /media"
            )


def action_photos(
    session: Session, photos: Sequence[str], *, uploader: int | None = None
) -> dict[str, list[str]]:
    """The event data keeping an action's photos (a case's or an errand's), once checked by
    ``check_media_flow``: ``{"photos": [...]}``, or nothing without photos."""
    if not photos:
        return {}
    run(session, check_media_flow(list(photos), uploader=uploader))
    return {"photos": list(photos)}


def get_media(session: Session, media_id: str) -> Media:
    """The media record, or ``NotFoundError``."""
    media = session.get(Media, media_id) if re.fullmatch(r"[0-9a-f]{64}", media_id) else None
    if media is None:
        raise NotFoundError(f"no media {media_id}")
    return media


def cases_showing(
    session: Session, media_id: str
) -> list[tuple[str | None, str | None, int | None]]:
    """Town, grid and unit of every case whose photos include the media (for the access rules)."""
    ref = sa.func.jsonb_build_array(f"media:{media_id}")
    columns = (Incident.town_code, Incident.grid_code, Incident.unit_id)
    reported = sa.select(*columns).where(Incident.photos.op("@>")(ref), sa.text(MEDIA_PHOTOS_WHERE))
    # Photos of an action (a resolve with a picture of the work done) live in its event.
    acted = (
        sa.select(*columns)
        .join(IncidentEvent, IncidentEvent.incident_id == Incident.id)
        .where(IncidentEvent.data["photos"].op("@>")(ref), sa.text(EVENT_PHOTOS_WHERE))
    )
    rows = session.execute(sa.union(reported, acted))
    return [(row[0], row[1], row[2]) for row in rows]


def errands_showing(session: Session, media_id: str) -> list[str | None]:
    """Town of every errand whose log names the media among an action's photos (for the
    access rules: whoever may read the errand may see its photos)."""
    ref = sa.func.jsonb_build_array(f"media:{media_id}")
    rows = session.execute(
        sa.select(Errand.town_code)
        .join(ErrandEvent, ErrandEvent.errand_id == Errand.id)
        .where(ErrandEvent.data["photos"].op("@>")(ref))
        .distinct()
    )
    return [row[0] for row in rows]

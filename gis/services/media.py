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
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, PayloadTooLargeError, ValidationError
from gis.layers.incidents import (
    EVENT_PHOTOS_WHERE,
    MEDIA_PHOTOS_WHERE,
    Incident,
    IncidentEvent,
)
from gis.layers.media import Media
from gis.queries import Flow, Query
from gis.settings import Settings

MEDIA_REF = re.compile(r"^media:(?P<id>[0-9a-f]{64})$")
MEDIA_REF_PATTERN = MEDIA_REF.pattern
# Photos one request may upload at once.
MAX_UPLOADS = 5
THUMB_PX = 320
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


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


def store_for(settings: Settings) -> MediaStore:
    """The media store the settings name."""
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


def clean_photo(data: bytes, *, settings: Settings) -> tuple[bytes, bytes, str, int, int]:
    """The photo re-encoded without metadata, its thumbnail, type and size — or why not."""
    from PIL import Image, ImageOps, UnidentifiedImageError

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
                    f"photos must be JPEG, PNG or WebP; this file is {fmt or 'not an image'}"
                )
            width, height = image.size
            if width * height > settings.media_max_pixels:
                raise ValidationError(
                    f"the photo has {width}×{height} pixels; at most "
                    f"{settings.media_max_pixels} (GIS_MEDIA_MAX_PIXELS)"
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
            cleaned = _encode(upright, fmt)
            thumb = upright.copy()
            thumb.thumbnail((THUMB_PX, THUMB_PX))
            thumbnail = _encode(thumb, "JPEG")
            width, height = upright.size
    except UnidentifiedImageError:
        raise ValidationError("the file is not an image (JPEG, PNG or WebP)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValidationError(f"the photo is damaged or truncated: {error}") from None
    return cleaned, thumbnail, _FORMATS[fmt], width, height


def save_photo(
    session: Session,
    store: MediaStore,
    data: bytes,
    *,
    settings: Settings,
    uploaded_by: int | None,
) -> Photo:
    """Check, clean and store a photo, and record it; the caller commits (or ``forget``s)."""
    cleaned, thumbnail, content_type, width, height = clean_photo(data, settings=settings)
    key = hashlib.sha256(cleaned).hexdigest()
    if session.get(Media, key) is None:
        store.put(key, cleaned)
        store.put(f"{key}.thumb", thumbnail)
        session.add(
            Media(
                id=key,
                content_type=content_type,
                bytes=len(cleaned),
                width=width,
                height=height,
                uploaded_by=uploaded_by,
            )
        )
        session.flush()
    return Photo(key, content_type, len(cleaned), width, height)


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

"""Photos: upload one (checked, EXIF stripped), and fetch it or its thumbnail if you may see it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel, Field

from gis.api.deps import SessionDep, SettingsDep, multipart_file, upload_body
from gis.api.errors import ERROR_RESPONSES, domain_errors
from gis.api.schemas.incidents import LonLat
from gis.api.security import ACT_ON_CASES, REPORT, CaseReader, allow
from gis.errors import NotFoundError, ValidationError
from gis.layers.users import Role
from gis.services import media
from gis.services.access import Principal

router = APIRouter(prefix="/media", tags=["media"])

UPLOADERS = tuple(dict.fromkeys((*REPORT, *ACT_ON_CASES)))
MediaId = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="The photo's SHA-256")]
# Stored photos never change under their content hash: browsers may keep them.
PRIVATE_CACHE = "private, max-age=86400, immutable"


class MediaRead(BaseModel):
    """A stored photo: name it in a report's ``photos`` as ``ref``."""

    id: str
    ref: str = Field(description="media:<id>, for the photos of a report or an action")
    content_type: str
    bytes: int
    width: int
    height: int
    url: str
    thumbnail_url: str
    exif_location: LonLat | None = Field(
        None,
        description="Where the upload's EXIF GPS put it (WGS84), read before EXIF was "
        "removed: a fallback for a report without a point (send it with method photo_exif)",
    )


async def uploaded_file(request: Request) -> bytes:
    """The bytes of the multipart field ``file``."""
    _, upload = await multipart_file(request, "the photo")
    return await upload.read()


@router.post(
    "",
    response_model=MediaRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **ERROR_RESPONSES,
        **domain_errors((ValidationError, "the file is not a JPEG, PNG, WebP or HEIC image")),
    },
    openapi_extra=upload_body(),
)
def upload(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal | None, Depends(allow(*UPLOADERS))],
    data: Annotated[bytes, Depends(uploaded_file)],
) -> MediaRead:
    """Store a photo (JPEG, PNG, WebP or HEIC by its bytes; EXIF removed) and return its id."""
    photo = media.save_photo(
        session,
        media.store_for(settings),
        data,
        settings=settings,
        uploaded_by=principal.user_id if principal else None,
    )
    session.commit()
    lonlat = photo.exif_lonlat
    return MediaRead(
        **{k: v for k, v in asdict(photo).items() if k != "exif_lonlat"},
        exif_location=None if lonlat is None else LonLat(lon=lonlat[0], lat=lonlat[1]),
        ref=photo.ref,
        url=f"/media/{photo.id}",
        thumbnail_url=f"/media/{photo.id}/thumbnail",
    )


def _check_may_see(session: SessionDep, media_id: str, principal: Principal | None) -> str:
    """The photo's content type, if the caller uploaded it or may see a case or an errand that
    shows it."""
    item = media.get_media(session, media_id)
    if principal is None or principal.role is Role.ADMIN:
        return item.content_type
    if item.uploaded_by is not None and item.uploaded_by == principal.user_id:
        return item.content_type
    if any(principal.sees_case(*case) for case in media.cases_showing(session, media_id)):
        return item.content_type
    if any(principal.sees_town(town) for town in media.errands_showing(session, media_id)):
        return item.content_type  # an errand's reader (``check_town``) sees its photos
    raise NotFoundError(f"no media {media_id}")


_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}
}


@router.get("/{media_id}", response_class=Response, responses={**_IMAGE, **ERROR_RESPONSES})
def read(
    session: SessionDep,
    settings: SettingsDep,
    media_id: MediaId,
    principal: CaseReader,
) -> Response:
    """The photo, to its uploader and to whoever may see a case or an errand that shows it."""
    content_type = _check_may_see(session, media_id, principal)
    data = media.store_for(settings).get(media_id)
    return Response(data, media_type=content_type, headers={"Cache-Control": PRIVATE_CACHE})


@router.get(
    "/{media_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **ERROR_RESPONSES},
)
def thumbnail(
    session: SessionDep,
    settings: SettingsDep,
    media_id: MediaId,
    principal: CaseReader,
) -> Response:
    """A JPEG of at most 320 px a side, for lists and map popups; the same rules."""
    _check_may_see(session, media_id, principal)
    data = media.store_for(settings).get(f"{media_id}.thumb")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": PRIVATE_CACHE})


@router.delete(
    "/{media_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**ERROR_RESPONSES, 409: {"description": "A case or an action shows the photo"}},
)
def discard(
    session: SessionDep,
    settings: SettingsDep,
    media_id: MediaId,
    principal: Annotated[Principal | None, Depends(allow(*UPLOADERS))],
) -> Response:
    """Delete a photo you uploaded that no case shows (its report failed or was dropped)."""
    user_id = None if principal is None or principal.role is Role.ADMIN else principal.user_id
    photo = media.discard_photo(session, media_id, user_id=user_id)
    session.commit()
    media.forget(session, media.store_for(settings), [photo])
    return Response(status_code=status.HTTP_204_NO_CONTENT)

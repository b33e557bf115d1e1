"""POST /media and GET /media/{id}: photos checked by their bytes, EXIF gone, shown by the rules."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access
from tests.conftest import count
from tests.photos import huge_png_header, jpeg_with_gps, png
from tests.services.intake_fixtures import TOWN_1, TOWN_2, Area, area

__all__ = ["area"]


@pytest.fixture
def media_dir(app: Any, tmp_path: Path) -> Path:
    """Photos of this test go to its own folder."""
    app.state.settings = app.state.settings.model_copy(update={"media_dir": str(tmp_path)})
    return tmp_path


def bearer(
    session: Session, role: Role, towns: tuple[str, ...] = (), name: str = ""
) -> dict[str, str]:
    """An Authorization header of a fresh user."""
    user = access.add_user(session, name=name or f"m-{role.value}", role=role, town_codes=towns)
    return {"Authorization": f"Bearer {access.issue_token(session, user)}"}


def upload(client: Any, headers: dict[str, str], data: bytes, name: str = "p.jpg") -> Any:
    return client.post("/media", files={"file": (name, data, "image/jpeg")}, headers=headers)


def test_upload_strips_exif_and_is_content_addressed(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    from PIL import Image

    headers = bearer(session, Role.DISPATCHER, (TOWN_1,))
    reply = upload(client, headers, jpeg_with_gps())
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["ref"] == f"media:{body['id']}"
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 64, 48)
    stored = client.get(body["url"], headers=headers)
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(stored.content)) as image:
        exif = image.getexif()
        assert 0x8825 not in exif and 0x0110 not in exif  # no GPS, no camera model
    thumb = client.get(body["thumbnail_url"], headers=headers)
    assert thumb.status_code == 200
    # The same photo again is the same stored file.
    assert upload(client, headers, jpeg_with_gps()).json()["id"] == body["id"]
    assert len(list(media_dir.rglob("*"))) == 3  # its fan-out folder, the photo, the thumbnail


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 422, "empty"),
        (b"%PDF-1.4 not a photo", 422, "not an image"),
        (jpeg_with_gps()[:200], 422, "truncated"),
        (huge_png_header(), 422, "pixels"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    client: Any,
    session: Session,
    media_dir: Path,
    area: Area,
    data: bytes,
    status: int,
    words: str,
) -> None:
    headers = bearer(session, Role.DISPATCHER, (TOWN_2,), name="m-bad")
    before = count(session, "media")
    reply = upload(client, headers, data, name="photo.jpg")
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"]
    assert count(session, "media") == before
    assert not [p for p in media_dir.rglob("*") if p.is_file()]


def test_a_photo_larger_than_the_limit_is_413(
    client: Any, app: Any, session: Session, media_dir: Path, area: Area
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"media_max_bytes": 10_000})
    headers = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-big")
    reply = upload(client, headers, jpeg_with_gps(1200, 900, "green") + b"\0" * 20_000)
    assert reply.status_code == 413


def test_a_report_shows_its_photo_to_those_who_see_the_case_only(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    reporter = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-reporter")
    photo = upload(client, reporter, png()).json()
    report = {
        "category": "road_hazard",
        "location": {"lon": 110.005, "lat": 30.005},
        "reporter": {"kind": "grid_member"},
        "photos": [photo["ref"], "https://example.org/other.jpg"],
    }
    created = client.post("/incidents", json=report, headers=reporter)
    assert created.status_code == 201, created.text
    assert created.json()["photos"] == [photo["ref"], "https://example.org/other.jpg"]
    same_town = bearer(session, Role.COMMAND_ROOM, (TOWN_1,), name="m-same")
    other_town = bearer(session, Role.COMMAND_ROOM, (TOWN_2,), name="m-other")
    assert client.get(photo["url"], headers=same_town).status_code == 200
    assert client.get(photo["url"], headers=other_town).status_code == 404
    assert client.get(photo["url"]).status_code == 401


def test_a_report_naming_an_unknown_photo_is_refused(
    client: Any, session: Session, area: Area
) -> None:
    headers = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-unknown")
    report = {
        "category": "road_hazard",
        "location": {"lon": 110.005, "lat": 30.005},
        "reporter": {"kind": "grid_member"},
        "photos": ["media:" + "0" * 64],
    }
    before = count(session, "incidents")
    reply = client.post("/incidents", json=report, headers=headers)
    assert reply.status_code == 422 and "unknown media" in reply.json()["detail"]
    assert count(session, "incidents") == before

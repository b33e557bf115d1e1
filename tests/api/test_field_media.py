"""What the phone app needs of photos beyond upload: HEIC, the EXIF point as a flagged
fallback, photos owned by their uploader, removal of an unused photo, photos on workflow
actions, and pinyin initials to find a category."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.incidents import IncidentEvent
from gis.layers.users import Role
from tests.api.test_media import bearer, media_dir, upload
from tests.conftest import count
from tests.photos import jpeg_with_gps, png
from tests.services.intake_fixtures import TOWN_1, TOWN_2, Area, area

__all__ = ["area", "media_dir"]

INSIDE_A = (110.005, 30.005)


def _report(photos: list[str], **location: Any) -> dict[str, Any]:
    return {
        "category": "road_hazard",
        "location": {"lon": INSIDE_A[0], "lat": INSIDE_A[1], **location},
        "reporter": {"kind": "grid_member"},
        "photos": photos,
    }


def test_heic_is_accepted_and_stored_as_jpeg_without_exif(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    from PIL import Image

    headers = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-heic")
    heic = jpeg_with_gps(fmt="HEIF")
    assert heic[4:12] == b"ftypheic"  # really HEIC bytes
    reply = upload(client, headers, heic, name="IMG_0001.HEIC")
    assert reply.status_code == 201, reply.text
    assert reply.json()["content_type"] == "image/jpeg"
    stored = client.get(reply.json()["url"], headers=headers)
    with Image.open(io.BytesIO(stored.content)) as image:
        assert image.format == "JPEG" and dict(image.getexif()) == {}


def test_exif_gps_is_offered_and_a_report_using_it_is_flagged(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    headers = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-exif")
    photo = upload(client, headers, jpeg_with_gps(lonlat=INSIDE_A)).json()
    assert photo["exif_location"] == {"lon": INSIDE_A[0], "lat": INSIDE_A[1]}
    assert upload(client, headers, png()).json()["exif_location"] is None
    here = photo["exif_location"]
    body = _report([photo["ref"]], method="photo_exif")
    body["location"].update(here)
    created = client.post("/incidents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    event = session.scalars(
        sa.select(IncidentEvent).where(
            IncidentEvent.incident_id == created.json()["id"], IncidentEvent.action == "report"
        )
    ).one()
    assert event.data["location_method"] == "photo_exif" and "accuracy_m" not in event.data


def test_a_report_naming_another_users_photo_is_422_and_writes_nothing(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    owner = bearer(session, Role.GRID_MEMBER, (TOWN_1,), name="m-owner")
    thief = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-thief")
    photo = upload(client, owner, jpeg_with_gps(colour="purple")).json()
    before = count(session, "incidents")
    reply = client.post("/incidents", json=_report([photo["ref"]]), headers=thief)
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_error"
    assert "another user" in reply.json()["detail"]
    assert count(session, "incidents") == before


def test_an_unused_photo_is_deleted_by_its_uploader_only_and_a_shown_one_stays(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    owner = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-del-owner")
    other = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-del-other")
    unused = upload(client, owner, jpeg_with_gps(colour="olive")).json()
    assert len([p for p in media_dir.rglob("*") if p.is_file()]) == 2  # photo + thumbnail
    assert client.delete(f"/media/{unused['id']}", headers=other).status_code == 404
    assert client.delete(f"/media/{unused['id']}", headers=owner).status_code == 204
    assert [p for p in media_dir.rglob("*") if p.is_file()] == []
    assert client.get(unused["url"], headers=owner).status_code == 404
    shown = upload(client, owner, jpeg_with_gps(colour="navy")).json()
    assert client.post("/incidents", json=_report([shown["ref"]]), headers=owner).status_code == 201
    reply = client.delete(f"/media/{shown['id']}", headers=owner)
    assert reply.status_code == 409 and reply.json()["code"] == "conflict"


def test_an_action_keeps_its_photos_and_shows_them_to_those_who_see_the_case(
    client: Any, session: Session, media_dir: Path, area: Area
) -> None:
    reporter = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-act")
    case = client.post("/incidents", json=_report([]), headers=reporter).json()
    photo = upload(client, reporter, jpeg_with_gps(colour="teal")).json()
    stranger = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-act-stranger")
    taken = client.post(
        f"/incidents/{case['id']}/actions",
        json={"action": "cancel", "reason": "test", "photos": [photo["ref"]]},
        headers=stranger,
    )
    assert taken.status_code == 422 and "another user" in taken.json()["detail"]
    done = client.post(
        f"/incidents/{case['id']}/actions",
        json={"action": "cancel", "reason": "现场已处理", "photos": [photo["ref"]]},
        headers=reporter,
    )
    assert done.status_code == 200, done.text
    events = client.get(f"/incidents/{case['id']}/events", headers=reporter).json()["events"]
    assert events[-1]["data"]["photos"] == [photo["ref"]]
    same_town = bearer(session, Role.COMMAND_ROOM, (TOWN_1,), name="m-act-same")
    other_town = bearer(session, Role.COMMAND_ROOM, (TOWN_2,), name="m-act-other")
    assert client.get(photo["thumbnail_url"], headers=same_town).status_code == 200
    assert client.get(photo["thumbnail_url"], headers=other_town).status_code == 404


def test_categories_carry_their_pinyin_initials(client: Any) -> None:
    found = {c["code"]: c["initials"] for c in client.get("/categories").json()}
    assert found["cooking_fume"] == "yyrm"  # 油烟扰民
    assert found["traffic_accident"] == "jtsg"  # 交通事故

"""POST /imports/{kind}: a multipart ledger, a dry run unless commit=true, county or admin only,
row-level errors in the body, oversized files refused before they are read."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.cameras import Camera
from gis.layers.imports import ImportRun
from gis.layers.users import Role
from gis.services import access
from tests.services.ledger_town import TOWN, make_town
from tests.services.test_ledger_tables import xlsx
from tests.services.test_ledgers import CAMERA_HEADER, camera_rows

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def bearer(session: Session, role: Role, towns: tuple[str, ...] = ()) -> dict[str, str]:
    """An Authorization header of a fresh user."""
    user = access.add_user(session, name=f"imp-{role.value}", role=role, town_codes=towns)
    return {"Authorization": f"Bearer {access.issue_token(session, user)}"}


def post(client: Any, headers: dict[str, str], data: bytes, **form: str) -> Any:
    return client.post(
        "/imports/cameras",
        files={"file": ("天眼台账.xlsx", data, XLSX)},
        data=form,
        headers=headers,
    )


def cameras(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).where(Camera.code.like("T21-%"))) or 0)


def test_dry_run_then_commit_as_county(client: Any, session: Session) -> None:
    make_town(session)
    headers = bearer(session, Role.COUNTY)
    data = xlsx([CAMERA_HEADER, *camera_rows()])
    dry = post(client, headers, data)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["committed"] is False and len(body["added"]) == 12 and body["errors"] == []
    assert cameras(session) == 0
    done = post(client, headers, data, commit="true")
    assert done.status_code == 200 and done.json()["committed"] is True
    assert cameras(session) == 12
    run = session.scalars(sa.select(ImportRun).order_by(ImportRun.id.desc())).first()
    assert run is not None and (run.actor, run.filename, run.added) == (
        "imp-county",
        "天眼台账.xlsx",
        12,
    )
    again = post(client, headers, data, commit="true").json()
    assert again["added"] == [] and again["changed"] == [] and len(again["unchanged"]) == 12


def test_row_errors_commit_nothing(client: Any, session: Session) -> None:
    make_town(session)
    rows = camera_rows(3)
    rows[0][3] = 400
    body = post(client, bearer(session, Role.ADMIN), xlsx([CAMERA_HEADER, *rows]), commit="true")
    assert body.status_code == 200
    assert body.json()["committed"] is False
    [error] = body.json()["errors"]
    assert (error["row"], error["column"], error["value"]) == (2, "朝向", "400")
    assert cameras(session) == 0


def test_other_roles_empty_and_oversized_files_are_4xx(client: Any, session: Session) -> None:
    make_town(session)
    data = xlsx([CAMERA_HEADER, *camera_rows(2)])
    member = bearer(session, Role.DISPATCHER, (TOWN,))
    assert post(client, member, data).status_code == 403
    county = bearer(session, Role.COUNTY)
    empty = post(client, county, xlsx([]))
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert (
        client.post("/imports/trees", files={"file": ("a.csv", b"x")}, headers=county).status_code
        == 422
    )
    too_big = post(client, county, b"\0" * 21_000_000)
    assert too_big.status_code == 413
    huge = client.post(
        "/imports/cameras",
        content=b"x",
        headers={
            **county,
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(200_000_000),
        },
    )
    assert huge.status_code == 413
    assert cameras(session) == 0

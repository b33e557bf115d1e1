"""Browser login: a token becomes an HttpOnly cookie that opens the pages a browser loads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access


def _token(session: Session, role: Role) -> str:
    user = access.add_user(session, name=f"login-{role.value}", role=role)
    return access.issue_token(session, user)


def test_login_sets_an_httponly_cookie_that_authenticates(client: Any, session: Session) -> None:
    token = _token(session, Role.COUNTY)
    assert client.get("/incidents/1/events").status_code == 401
    response = client.post(
        "/login", data={"token": token, "next": "/categories"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/categories"
    cookie = response.headers["set-cookie"]
    assert "gis_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # The cookie now stands in for the bearer header (404: the case does not exist, not 401).
    assert client.get("/incidents/999999999/events").status_code == 404
    client.post("/logout", follow_redirects=False)
    assert client.get("/incidents/999999999/events").status_code == 401


def test_login_refuses_bad_tokens_and_foreign_redirects(client: Any, session: Session) -> None:
    bad = client.post("/login", data={"token": "gis_wrong-token"}, follow_redirects=False)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    token = _token(session, Role.ADMIN)
    for target in ("https://evil.example/", "//evil.example/x"):
        response = client.post(
            "/login", data={"token": token, "next": target}, follow_redirects=False
        )
        assert response.status_code == 422, target
        assert "set-cookie" not in response.headers


def test_login_form_is_served(client: Any) -> None:
    response = client.get("/login", params={"next": "/maps/command-room?town=1"})
    assert response.status_code == 200 and 'name="token"' in response.text

"""Browser login: exchange a token for an HttpOnly cookie, so map pages open in a browser."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis.api.deps import SessionDep
from gis.api.security import TOKEN_COOKIE
from gis.errors import ValidationError
from gis.layers.base import utcnow
from gis.services.access import authenticate, token_expiry

router = APIRouter(tags=["access"])

_FORM = """<!doctype html><html lang="zh"><meta charset="utf-8">
<title>登录 — gis login</title>
<form method="post" action="/login" style="font-family:sans-serif;margin:4em auto;width:22em">
<h2>综合信息指挥室 · Command room</h2>
<p><label>Token<br><input name="token" type="password" size="40" autofocus></label></p>
<input type="hidden" name="next" value="{next}">
<button type="submit">登录 Log in</button></form></html>"""


# A path on this site: one "/" then no "/" or "\\" (browsers read "/\\host" as "//host", another
# site), and no control characters anywhere.
NEXT_PATTERN = r"^/([^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*)?$"
_NEXT = re.compile(NEXT_PATTERN)


def _safe_next(next_path: str) -> str:
    """Only same-site paths: an open redirect would hand the cookie's session to anyone."""
    if not _NEXT.fullmatch(next_path):
        raise ValidationError("next must be a path on this site, such as /maps/command-room")
    return next_path


@router.get("/login", response_class=HTMLResponse)
def login_form(
    next: Annotated[
        str, Query(max_length=2000, json_schema_extra={"pattern": NEXT_PATTERN})
    ] = "/docs",
) -> HTMLResponse:
    """A one-field form asking for a token."""
    from html import escape

    return HTMLResponse(_FORM.format(next=escape(_safe_next(next), quote=True)))


@router.post("/login", status_code=303, response_class=RedirectResponse)
def login(
    session: SessionDep,
    token: Annotated[str, Form(min_length=8, max_length=200)],
    next: Annotated[
        str, Form(max_length=2000, json_schema_extra={"pattern": NEXT_PATTERN})
    ] = "/docs",
) -> Response:
    """Check the token and keep it in an HttpOnly cookie until it expires; then go to ``next``."""
    target = _safe_next(next)
    principal = authenticate(session, token)
    expires = token_expiry(session, token)
    response = RedirectResponse(target, status_code=303)
    max_age = int((expires - utcnow()).total_seconds()) if expires else 30 * 24 * 3600
    response.set_cookie(
        TOKEN_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", path="/"
    )
    response.headers["X-Gis-User"] = principal.name
    return response


@router.post("/logout", status_code=303, response_class=RedirectResponse)
def logout() -> Response:
    """Forget the login cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response

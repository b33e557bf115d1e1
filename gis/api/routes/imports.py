"""Ledger imports over HTTP: ``POST /imports/{kind}`` with the file as multipart, a dry run
unless ``commit=true`` — the same plan and commit as ``gis import``."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from gis.api.deps import SessionDep, SettingsDep, read_upload, upload_body
from gis.api.errors import ERROR_RESPONSES, domain_errors
from gis.api.security import allow
from gis.errors import UnknownCodeError, ValidationError
from gis.layers.users import Role
from gis.services.access import Principal
from gis.services.ledger_tables import read_table
from gis.services.ledgers import LedgerKind, commit_import, plan_import

router = APIRouter(prefix="/imports", tags=["imports"])


class RowErrorRead(BaseModel):
    """One problem of the file: its row (null: the whole file), column, value and why."""

    row: int | None
    column: str | None
    value: str | None
    reason: str


class ChangedRead(BaseModel):
    """A code whose stored record differs from the file, and in which fields."""

    code: str
    fields: list[str]


class ImportRead(BaseModel):
    """What the import did (``committed``) or would do."""

    kind: LedgerKind
    source: str
    committed: bool
    added: list[str]
    changed: list[ChangedRead]
    unchanged: list[str]
    retired: list[str] = Field(description="Codes not in the file; retired only with retire")
    errors: list[RowErrorRead]
    notes: list[str]
    users: list[dict[str, str]] = Field(
        default_factory=list, description="with_users: name and token of each new user, once"
    )


class ImportForm(BaseModel):
    """The multipart fields besides ``file``."""

    filename: str
    data: bytes
    crs: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    commit: bool = False
    retire_missing: bool = False
    with_users: bool = False


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


async def import_form(request: Request, settings: SettingsDep) -> ImportForm:
    """The uploaded ledger and the options sent with it."""
    upload = await read_upload(request, settings, "ledger", "upload")
    text = upload.fields
    return ImportForm(
        filename=upload.filename,
        data=upload.data,
        crs=text.get("crs") or None,
        sheet=text.get("sheet") or None,
        encoding=text.get("encoding") or None,
        commit=_flag(text.get("commit")),
        retire_missing=_flag(text.get("retire_missing")),
        with_users=_flag(text.get("with_users")),
    )


@router.post(
    "/{kind}",
    response_model=ImportRead,
    responses={
        **ERROR_RESPONSES,
        **domain_errors(
            (ValidationError, "the file cannot be read as a CSV, .xlsx or point layer"),
            (UnknownCodeError, "the kind is not units, cameras or members"),
        ),
    },
    openapi_extra=upload_body(
        crs={"type": "string"},
        sheet={"type": "string"},
        encoding={"type": "string"},
        commit={"type": "boolean", "default": False},
        retire_missing={"type": "boolean", "default": False},
        with_users={"type": "boolean", "default": False},
    ),
)
def import_ledger(
    session: SessionDep,
    kind: Annotated[LedgerKind, Path(description="units, cameras or members")],
    principal: Annotated[Principal | None, Depends(allow(Role.COUNTY))],
    form: Annotated[ImportForm, Depends(import_form)],
) -> ImportRead:
    """Check a ledger (CSV, .xlsx, point layer) and say what importing it changes; with
    ``commit=true`` and no errors, write it all (or nothing) and record who imported it."""
    table = read_table(form.data, form.filename, encoding=form.encoding, sheet=form.sheet)
    plan = plan_import(session, kind, table, crs=form.crs, retire_missing=form.retire_missing)
    tokens: list[tuple[str, str]] = []
    committed = False
    if form.commit and not plan.errors:
        result = commit_import(
            session,
            plan,
            actor=principal.name if principal else "anonymous",
            filename=form.filename,
            sha256=hashlib.sha256(form.data).hexdigest(),
            with_users=form.with_users,
        )
        session.commit()
        tokens, committed = result.tokens, True
    else:
        session.rollback()
    return ImportRead(
        kind=kind,
        source=plan.source,
        committed=committed,
        added=[r.key for r in plan.added],
        changed=[ChangedRead(code=r.key, fields=f) for r, f in plan.changed],
        unchanged=plan.unchanged,
        retired=plan.retired,
        errors=[RowErrorRead(**e.__dict__) for e in plan.errors],
        notes=plan.notes,
        users=[{"name": n, "token": t} for n, t in tokens],
    )

"""The planner's editor: the page (/plans/editor) and the gestures on a draft plan
(/plans/editor/drafts, /plans/{id}/edits, undo, redo, rebase); saving and applying use /plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse

from gis.api.deps import SessionDep, SettingsDep
from gis.api.errors import domain_errors
from gis.api.routes.maps import page_assets_url
from gis.api.routes.plans import PlanId, Planner, _actor, _read, _visible_plan
from gis.api.routes.web import web_page
from gis.api.schemas.plan_editor import DraftStart, EditorRead, EditRequest
from gis.api.security import check_town
from gis.db import committing
from gis.errors import (
    ConflictError,
    InvalidCoordinatesError,
    InvalidGeometryError,
    ValidationError,
)
from gis.layers.plans import Plan, PlanScope
from gis.services import plan_editor, plan_review, planning
from gis.services.access import Principal

router = APIRouter(prefix="/plans", tags=["plans"])
PAGE = "editor"
TOWN_PLAN = (plan_editor.GestureError, "the plan redraws a town: the editor redraws one village")
GESTURE_ERRORS = domain_errors(
    (plan_editor.GestureError, "the gesture cannot be applied (the detail says why)"),
    (InvalidGeometryError, "a drawn outline crosses itself or has no area"),
    (InvalidCoordinatesError, "a point is outside lon/lat range"),
    (ValidationError, "an imported proposal is malformed"),
)


def editor_read(session: SessionDep, plan: Plan) -> EditorRead:
    """A plan as the editor shows it."""
    return EditorRead.model_validate(
        {
            **_read(plan).model_dump(),
            "coverage": plan_editor.coverage_check(plan),
            "problems": plan_editor.problems(plan),
            "history": plan_editor.history(session, plan.id),
            "members": plan_review.member_choices(session, plan),
        }
    )


def town_check(session: SessionDep, principal: Principal | None, village: str) -> None:
    """404/403 unless the village exists and the principal may plan its town."""
    town = planning.scope_town(session, PlanScope.VILLAGE, village)
    check_town(principal, town, f"village {village}")


@router.get(
    "/editor",
    response_class=HTMLResponse,
    responses=domain_errors((ValidationError, "neither or both of village and plan are given")),
)
def editor_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    village: Annotated[str | None, Query(max_length=12, description="Village to redraw")] = None,
    plan: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Draft to reopen")] = None,
) -> HTMLResponse:
    """The planner's editor (网格规划编辑器): redraw a village's grids on the map."""
    if (village is None) == (plan is None):
        raise ValidationError("give exactly one of village (to start) or plan (to reopen)")
    if plan is not None:
        village = _visible_plan(session, principal, plan).scope_code
    assert village is not None
    town_check(session, principal, village)
    root = request.scope.get("root_path", "")
    html = web_page(
        root,
        PAGE,
        assets_url=page_assets_url(request, settings),
        css="editor.css",
        js="editor.js",
        config={"root": root, "village": village, "plan": plan, "debounce_ms": 250},
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post(
    "/editor/drafts",
    response_model=EditorRead,
    status_code=status.HTTP_201_CREATED,
    responses=domain_errors((ValidationError, "the village has no grids, or no town")),
)
def start_draft(
    body: DraftStart, session: SessionDep, settings: SettingsDep, principal: Planner
) -> EditorRead:
    """A new draft plan of a village proposing its grids as they are: the editor's start."""
    town_check(session, principal, body.village)
    plan = plan_editor.start_draft(
        session, village=body.village, actor=_actor(principal), settings=settings, title=body.title
    )
    session.commit()
    return editor_read(session, plan)


@router.get("/{plan_id}/editor", response_model=EditorRead)
def editor_state(session: SessionDep, principal: Planner, plan_id: PlanId) -> EditorRead:
    """A plan as the editor shows it (coverage check, problems to draw, undo history)."""
    return editor_read(session, _visible_plan(session, principal, plan_id))


@router.post("/{plan_id}/edits", response_model=EditorRead, responses=GESTURE_ERRORS)
def edit_plan(
    body: EditRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    plan_id: PlanId,
) -> EditorRead:
    """Apply one gesture to a draft (split, merge, move_vertex, add, rename, member, replace):
    the server keeps the grids a coverage and answers the re-validated draft; a bad gesture is
    422 with the reason and changes nothing; 409 if another window edited it since ``head``.
    With ``preview`` the result is checked and answered but not stored (a vertex being dragged)."""
    _visible_plan(session, principal, plan_id)
    try:
        plan = plan_editor.edit(
            session,
            plan_id,
            body.gesture.model_dump(mode="json", by_alias=True, exclude_none=True),
            actor=_actor(principal),
            settings=settings,
            head=body.head,
        )
        answer = editor_read(session, plan)
        if body.preview:  # as you draw: the checks of the result, nothing kept
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return answer


def _undo(session: SessionDep, settings: SettingsDep, plan_id: int, *, redo: bool) -> EditorRead:
    with committing(session):
        plan = plan_editor.undo(session, plan_id, settings=settings, redo=redo)
    return editor_read(session, plan)


@router.post(
    "/{plan_id}/undo",
    response_model=EditorRead,
    responses=domain_errors((ConflictError, "nothing to undo"), TOWN_PLAN),
)
def undo_edit(
    session: SessionDep, settings: SettingsDep, principal: Planner, plan_id: PlanId
) -> EditorRead:
    """Undo the draft's newest edit."""
    _visible_plan(session, principal, plan_id)
    return _undo(session, settings, plan_id, redo=False)


@router.post(
    "/{plan_id}/redo",
    response_model=EditorRead,
    responses=domain_errors((ConflictError, "nothing to redo"), TOWN_PLAN),
)
def redo_edit(
    session: SessionDep, settings: SettingsDep, principal: Planner, plan_id: PlanId
) -> EditorRead:
    """Redo the edit undone last."""
    _visible_plan(session, principal, plan_id)
    return _undo(session, settings, plan_id, redo=True)


@router.post("/{plan_id}/rebase", response_model=EditorRead, responses=domain_errors(TOWN_PLAN))
def rebase_plan(
    session: SessionDep, settings: SettingsDep, principal: Planner, plan_id: PlanId
) -> EditorRead:
    """Keep the draft's grids, but base it on the village's grids in force now (after a 409)."""
    _visible_plan(session, principal, plan_id)
    plan = plan_editor.rebase(session, plan_id, settings=settings)
    session.commit()
    return editor_read(session, plan)

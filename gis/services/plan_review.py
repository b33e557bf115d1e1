"""A plan's review: a draft is submitted (frozen for review), withdrawn back to a draft to be
edited again, then applied or rejected (``gis.services.planning``).

``draft → submitted → applied | rejected``, with ``submitted → draft`` (withdraw). A submitted
plan refuses edits (``gis.services.ogc_plans.draft_plan`` says to withdraw it first), so what the
reviewer applies is what was submitted. Submitting checks what apply would check first — the plan
is valid and its base is still the village's grids in force (409 with what changed if not) — so a
plan that could not be applied is not queued for review.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gis.errors import ConflictError
from gis.layers.base import utcnow
from gis.layers.grids import list_members
from gis.layers.plans import Plan, PlanScope, PlanStatus, get_plan
from gis.services import planning


def submit(session: Session, plan_id: int, *, actor: str, now: datetime | None = None) -> Plan:
    """Submit a draft for review: 409 if it is not a draft or the village changed since its
    base (with what changed), 422 if it has validation errors."""
    plan = get_plan(session, plan_id, for_update=True)
    if plan.status != PlanStatus.DRAFT.value:
        raise ConflictError(f"plan {plan_id} is {plan.status}; only a draft can be submitted")
    token, _ = planning.scope_version(session, PlanScope(plan.scope_level), plan.scope_code)
    if token != plan.based_on_version:
        raise ConflictError(
            f"the grids of {plan.scope_level} {plan.scope_code} changed since plan {plan_id} "
            f"was made; rebase it (POST /plans/{plan_id}/rebase) and submit it again",
            current_version=token,
            changed=planning.changes_since(session, plan),
        )
    errors = [i for i in plan.validation.get("issues", []) if i.get("severity") == "error"]
    if errors:
        summary = "; ".join(i["message"] for i in errors[:5])
        raise planning.PlanInvalidError(
            f"plan {plan_id} cannot be submitted: {len(errors)} error(s): {summary}",
            issues=[{k: v for k, v in i.items() if k != "geometry"} for i in errors[:50]],
        )
    plan.status = PlanStatus.SUBMITTED.value
    plan.submitted_by = actor
    plan.submitted_at = now or utcnow()
    session.flush()
    return plan


def withdraw(session: Session, plan_id: int) -> Plan:
    """Take a submitted plan back to a draft, editable again (409 if it is not submitted)."""
    plan = get_plan(session, plan_id, for_update=True)
    if plan.status != PlanStatus.SUBMITTED.value:
        raise ConflictError(f"plan {plan_id} is {plan.status}; only a submitted plan is withdrawn")
    plan.status = PlanStatus.DRAFT.value
    plan.submitted_by = None
    plan.submitted_at = None
    session.flush()
    return plan


def member_choices(session: Session, plan: Plan) -> list[dict[str, Any]]:
    """The members a planner may name in the plan's grids (the members of its town, and any
    other member the plan already names), with their names for the editor's picker."""
    named = sorted(
        {
            m
            for f in plan.proposed.get("features", [])
            for m in (f.get("properties") or {}).get("members") or []
            if isinstance(m, int)
        }
    )
    town = planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)
    return [
        {"id": m.id, "name": m.name, "active": m.active, "town": m.town_code}
        for m in list_members(session, town_code=town, also=named)
    ]


__all__ = ["member_choices", "submit", "withdraw"]

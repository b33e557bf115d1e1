"""`gis users`: add, list and revoke API users and tokens; `demo` makes one per role."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gis.commands import command_group, command_session, fail

console = Console()
users_app = command_group("users", "API users and their tokens (hashed at rest).")


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="A unique user name"),
    role: str = typer.Option(
        ..., help="grid_member, unit, dispatcher, command_room, planner, county or admin"
    ),
    town: list[str] = typer.Option([], help="Town code of the jurisdiction (repeatable)"),
    unit_id: int | None = typer.Option(None, help="For role unit: the responder unit's id"),
    member_id: int | None = typer.Option(None, help="For role grid_member: the member's id"),
    days: int = typer.Option(90, min=1, max=3650, help="Days until the token expires"),
) -> None:
    """Create a user and print its token (shown once: only its hash is kept)."""
    from datetime import timedelta

    from gis.errors import ValidationError
    from gis.layers.users import Role
    from gis.services import access

    try:
        parsed = Role(role)
    except ValueError:
        raise fail(
            ValidationError(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}")
        ) from None
    with command_session() as session:
        user = access.add_user(
            session,
            name=name,
            role=parsed,
            town_codes=town,
            unit_id=unit_id,
            member_id=member_id,
        )
        token = access.issue_token(session, user, valid_for=timedelta(days=days))
    console.print(f"user {name} ({role}); token, valid {days} days:")
    print(token)


@users_app.command("list")
def list_() -> None:
    """List users with their role and towns."""
    from gis.services import access

    with command_session() as session:
        table = Table("name", "role", "towns", "active")
        for user in access.list_users(session):
            table.add_row(
                user.name, user.role, " ".join(user.town_codes) or "all", str(user.active)
            )
    console.print(table)


@users_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The user whose tokens to revoke")) -> None:
    """Revoke every token of a user and deactivate it."""
    from gis.services import access

    with command_session() as session:
        revoked = access.revoke(session, name)
    console.print(f"revoked {revoked} token(s) of {name}")


@users_app.command("demo")
def demo(
    town: str | None = typer.Option(None, help="Town of the town-scoped users (default: first)"),
) -> None:
    """(Re)create one demo user per role and print a ready token for each."""
    from gis.services import access
    from gis.settings import get_settings

    with command_session() as session:
        tokens = access.demo_users(session, town_code=town)
    # Plain lines, not a table: a table would cut the tokens to the terminal's width.
    console.print("Demo tokens (valid 30 days) — role, towns, token:")
    for row in tokens:
        print(f"{row.role:<13} {row.towns:<13} {row.token}")
    port = get_settings().port
    console.print(
        f"try: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:{port}/incidents — "
        f"or log in at http://127.0.0.1:{port}/login with the command_room token"
    )

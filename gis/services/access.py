"""Users, tokens and the principal a request acts as (role + jurisdiction)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import AuthenticationError, NotFoundError, ValidationError
from gis.layers.base import utcnow
from gis.layers.regions import Region, RegionLevel
from gis.layers.users import ApiToken, Role, User
from gis.queries import Flow, Query, run

TOKEN_PREFIX = "gis_"
# Revoking a user NOTIFYs this channel (on commit); every API process listening on it forgets
# the tokens it had cached, so a revocation takes effect at once, not after GIS_TOKEN_CACHE_S.
TOKENS_CHANNEL = "gis_tokens"
TOWN_SCOPED = frozenset(
    {Role.GRID_MEMBER, Role.UNIT, Role.DISPATCHER, Role.COMMAND_ROOM, Role.PLANNER}
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and the towns it may see (``None``: every town)."""

    user_id: int | None
    name: str
    role: Role
    town_codes: frozenset[str] | None = None
    unit_id: int | None = None
    member_id: int | None = None
    # For grid members: the grid codes they serve, the only cases they see and act on.
    grid_codes: frozenset[str] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def sees_town(self, town_code: str | None) -> bool:
        """Whether a resource of ``town_code`` is inside this principal's jurisdiction."""
        if self.town_codes is None:
            return True
        return town_code is not None and town_code in self.town_codes

    def sees_case(self, town_code: str | None, grid_code: str | None, unit_id: int | None) -> bool:
        """Whether a case is this principal's: its town, and for a grid member its grids, for
        a unit the cases assigned to it."""
        if not self.sees_town(town_code):
            return False
        if self.role is Role.GRID_MEMBER:
            return grid_code is not None and grid_code in (self.grid_codes or frozenset())
        if self.role is Role.UNIT:
            return unit_id is not None and unit_id == self.unit_id
        return True


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored (tokens are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(
    session: Session,
    *,
    name: str,
    role: Role,
    town_codes: Sequence[str] = (),
    unit_id: int | None = None,
    member_id: int | None = None,
) -> User:
    """Create a user, checking the jurisdiction names real towns."""
    if role in TOWN_SCOPED and not town_codes:
        raise ValidationError(f"role {role.value} is town-scoped: give at least one --town code")
    if role not in TOWN_SCOPED and town_codes:
        raise ValidationError(f"role {role.value} sees every town: do not give --town")
    known = set(
        session.scalars(
            sa.select(Region.code).where(
                Region.code.in_(list(town_codes)), Region.level == RegionLevel.TOWN.value
            )
        )
    )
    unknown = sorted(set(town_codes) - known)
    if unknown:
        raise ValidationError(f"unknown town code(s): {', '.join(unknown)}")
    if session.scalar(sa.select(User.id).where(User.name == name)) is not None:
        raise ValidationError(f"a user named {name!r} exists already")
    user = User(
        name=name,
        role=role.value,
        town_codes=sorted(set(town_codes)),
        unit_id=unit_id,
        member_id=member_id,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def issue_token(
    session: Session, user: User, *, valid_for: timedelta | None = timedelta(days=90)
) -> str:
    """A new bearer token for ``user``; only its hash is stored, so show it once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            created_at=now,
            expires_at=now + valid_for if valid_for else None,
        )
    )
    session.flush()
    return token


def revoke(session: Session, name: str, *, now: datetime | None = None) -> int:
    """Revoke every live token of user ``name`` and deactivate it; returns tokens revoked."""
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    user.active = False
    result = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    session.execute(sa.select(sa.func.pg_notify(TOKENS_CHANNEL, name)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(sa.select(User).order_by(User.name)))


_TOKEN_SQL = sa.text(
    """
SELECT u.id, u.name, u.role, u.active, u.town_codes, u.unit_id, u.member_id,
       t.revoked_at, t.expires_at,
       CASE WHEN u.role = 'grid_member' THEN
         ARRAY(SELECT g.grid_code FROM grid_member_grids AS g WHERE g.member_id = u.member_id)
       END AS grid_codes
FROM api_tokens AS t
JOIN users AS u ON u.id = t.user_id
WHERE t.token_hash = :token_hash
"""
)


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> Principal:
    """The principal of a bearer token, or ``AuthenticationError`` saying why not."""
    return run(session, authenticate_flow(token, now=now))


def authenticate_flow(token: str, *, now: datetime | None = None) -> Flow[Principal]:
    """``authenticate`` as a flow (``gis.queries``): the API runs it on asyncpg."""
    row = yield Query(_TOKEN_SQL, {"token_hash": hash_token(token)})
    if row is None:
        raise AuthenticationError("unknown token; ask an admin for one (gis users add)")
    now = now or utcnow()
    if row["revoked_at"] is not None or not row["active"]:
        raise AuthenticationError("this token was revoked; ask an admin for a new one")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise AuthenticationError("this token has expired; ask an admin for a new one")
    role = Role(row["role"])
    grid_codes = row["grid_codes"]
    return Principal(
        user_id=row["id"],
        name=row["name"],
        role=role,
        town_codes=frozenset(row["town_codes"] or ()) if role in TOWN_SCOPED else None,
        unit_id=row["unit_id"],
        member_id=row["member_id"],
        grid_codes=frozenset(grid_codes) if grid_codes is not None else None,
    )


@dataclass(frozen=True)
class DemoToken:
    """A demo user's name, role, towns and fresh token."""

    name: str
    role: str
    towns: str
    token: str


def demo_users(session: Session, *, town_code: str | None = None) -> list[DemoToken]:
    """Replace the ``demo-*`` users with one per role and return a fresh token for each."""
    from gis.layers.grids import GridMemberGrid
    from gis.layers.units import ResponderUnit

    if town_code is None:
        town_code = session.scalar(
            sa.select(Region.code)
            .where(Region.level == RegionLevel.TOWN.value)
            .order_by(Region.code)
        )
        if town_code is None:
            raise NotFoundError("no towns loaded: run `gis sample load` first")
    session.execute(sa.delete(User).where(User.name.like("demo-%")))
    unit_id = session.scalar(
        sa.select(ResponderUnit.id)
        .where(ResponderUnit.jurisdiction_code == town_code)
        .order_by(ResponderUnit.id)
    )
    member_id = session.scalar(
        sa.select(GridMemberGrid.member_id)
        .where(GridMemberGrid.grid_code.like(town_code[:9] + "%"))
        .order_by(GridMemberGrid.grid_code)
    )
    tokens = []
    for role in Role:
        scoped = role in TOWN_SCOPED
        user = add_user(
            session,
            name=f"demo-{role.value}",
            role=role,
            town_codes=[town_code] if scoped else [],
            unit_id=unit_id if role is Role.UNIT else None,
            member_id=member_id if role is Role.GRID_MEMBER else None,
        )
        token = issue_token(session, user, valid_for=timedelta(days=30))
        tokens.append(DemoToken(user.name, role.value, town_code if scoped else "all", token))
    return tokens


def token_expiry(session: Session, token: str) -> datetime | None:
    """When a token expires (``None``: never)."""
    return session.scalar(
        sa.select(ApiToken.expires_at).where(ApiToken.token_hash == hash_token(token))
    )

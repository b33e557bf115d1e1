"""Request and reply bodies of the planner's editor (gestures on a draft plan)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gis.api.schemas.plans import MemberId, PlanRead, ProposedCollection
from gis.api.schemas.types import StrictBool, StrictInt

# A [lon, lat] point; the service checks ranges (and says when lon and lat look swapped).
Point = Annotated[list[float], Field(min_length=2, max_length=2, description="[lon, lat]")]
Code = Annotated[str, Field(min_length=1, max_length=20, description="Grid code")]
Ring = Annotated[list[Point], Field(min_length=4, max_length=5_000)]


class _Gesture(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitGesture(_Gesture):
    """Cut a grid in two (or more) along a line drawn across it."""

    op: Literal["split"]
    line: list[Point] = Field(min_length=2, max_length=1_000, description="The cut, lon/lat")
    grid: Code | None = Field(
        None, description="The grid to cut (default: the one the line crosses)"
    )
    code: Code | None = Field(None, description="Code of the new piece (default: a free one)")


class MergeGesture(_Gesture):
    """Join two or more neighbouring grids into the first one named."""

    op: Literal["merge"]
    grids: list[Code] = Field(min_length=2, max_length=100)


class MoveVertexGesture(_Gesture):
    """Move a vertex in every grid that has it (a shared boundary moves for both sides)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["move_vertex"]
    from_: Point = Field(alias="from", description="The vertex as the draft has it")
    to: Point


class AddGesture(_Gesture):
    """Draw a new grid inside the village; it is carved out of the grids it overlaps."""

    op: Literal["add"]
    polygon: list[Ring] = Field(min_length=1, max_length=50, description="Polygon rings, lon/lat")
    code: Code | None = None
    name: str | None = Field(None, max_length=100)


class RenameGesture(_Gesture):
    """Give a grid a new display name."""

    op: Literal["rename"]
    grid: Code
    name: str = Field(min_length=1, max_length=100)


class MemberGesture(_Gesture):
    """Set the grid members who will serve a grid."""

    op: Literal["member"]
    grid: Code
    members: list[MemberId] = Field(max_length=20)


class ReplaceGesture(_Gesture):
    """Replace every grid of the draft (an edited GeoJSON/GeoPackage imported back)."""

    op: Literal["replace"]
    proposed: ProposedCollection


Gesture = Annotated[
    SplitGesture
    | MergeGesture
    | MoveVertexGesture
    | AddGesture
    | RenameGesture
    | MemberGesture
    | ReplaceGesture,
    Field(discriminator="op"),
]


class EditRequest(BaseModel):
    """One gesture, and the number of edits the client's view shows (409 if another window
    edited the draft since)."""

    model_config = ConfigDict(extra="forbid")

    gesture: Gesture
    head: StrictInt | None = Field(None, ge=0, le=10_000)
    preview: StrictBool = Field(
        False, description="Validate the gesture's result and answer it, but store nothing"
    )


class DraftStart(BaseModel):
    """Start editing a village: a new draft plan proposing its grids as they are."""

    model_config = ConfigDict(extra="forbid")

    village: str = Field(min_length=1, max_length=12)
    title: str | None = Field(None, max_length=200)


class EditHistory(BaseModel):
    """How many edits can be undone and redone."""

    done: int
    undone: int


class Coverage(BaseModel):
    """Whether the draft's grids form a valid coverage (``shapely.coverage_invalid_edges``)."""

    valid: bool
    invalid_edges: dict[str, Any] | None
    grids_with_invalid_edges: int


class MemberChoice(BaseModel):
    """A grid member the planner may name in a grid (the town's, or one the plan names)."""

    id: int
    name: str
    active: bool
    town: str


class EditorRead(PlanRead):
    """A draft plan as the editor shows it: the plan's report, its coverage check, the issues
    that have a shape to draw, and its undo history."""

    coverage: Coverage
    problems: list[dict[str, Any]]
    history: EditHistory
    members: list[MemberChoice] = Field(
        description="Members to pick from, with their names (the balance table shows ids)"
    )

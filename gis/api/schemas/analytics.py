"""Reply bodies of the analytics endpoints: GeoJSON per grid (or per group) whose properties a
map can colour directly (``colour``, ``label``), plus the parameters and a summary."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gis.api.geojson import FeatureCollection
from gis.services.recurring import RecurringCases


class HotspotProperties(BaseModel):
    """One grid's (or cell's) count and Gi* result."""

    code: str
    name: str
    count: int = Field(description="Valid cases in the period (and filters)")
    z: float = Field(description="Gi* z-score (binary weights, the unit itself included)")
    p: float = Field(description="Two-sided permutation p-value")
    confidence: int = Field(description="+99/+95/+90 hot, 0 not significant, −90/−95/−99 cold")
    spot: str = Field(description="hot_99 … not_significant … cold_99 (after FDR)")
    colour: str = Field(description="Fill colour of the class (ColorBrewer RdBu)")
    label: str


class HotspotCollection(FeatureCollection[HotspotProperties]):
    """Hot and cold spots among the grids of a town."""

    town_code: str
    since: datetime
    until: datetime
    permutations: int
    seed: int | None
    cases: int
    fdr_cutoffs: dict[str, float] = Field(description="The largest p called significant, by level")
    summary: dict[str, int] = Field(description="Grids (or cells) per class")
    unit: str = Field("grid", description="grid, or cell (square cells of cell_m metres)")
    cell_m: float | None = Field(None, description="The cells' size in metres")
    weights: str = Field("queen", description="queen or distance")
    band_m: float | None = Field(None, description="The distance band (m), for distance weights")


class EmergingProperties(BaseModel):
    """One grid's series over the slices and its space-time category."""

    code: str
    name: str
    category: str
    colour: str
    counts: list[int]
    z: list[float]
    confidence: list[int]
    trend_tau: float | None = Field(description="Mann–Kendall tau of the Gi* z-scores")
    trend_p: float | None


class EmergingCollection(FeatureCollection[EmergingProperties]):
    """Emerging hot and cold spots among the grids of a town."""

    town_code: str
    step: str
    slices: list[datetime] = Field(description="Start of each slice (China time)")
    level: int = Field(description="Confidence at which a slice counts as hot or cold")
    summary: dict[str, int] = Field(description="Grids per category")


class RecurringProperties(RecurringCases):
    """A group of closed cases of one category that keep coming back at one place."""

    spread_m: float = Field(description="Distance from the centre to the farthest case")


class RecurringCollection(FeatureCollection[RecurringProperties]):
    """Recurring problems (治标不治本): the centre of each group as a point feature."""

    since: datetime
    until: datetime
    radius_m: float
    min_cases: int

"""read_from fills a reply from its sources' same-named attributes, validated like the
constructor."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel, ValidationError

from gis.api.schemas.types import read_from


class Reply(BaseModel):
    id: int
    name: str
    town: str | None = None
    label: str


@dataclass
class Row:
    id: int
    name: str
    town: str | None


@dataclass
class Detail:
    name: str
    label: str


def test_fields_come_from_the_first_source_that_has_them_and_given_wins() -> None:
    reply = read_from(Reply, Row(1, "row", "T"), Detail("detail", "L"), town="given")
    assert reply == Reply(id=1, name="row", town="given", label="L")


def test_a_field_no_source_has_keeps_its_default_and_a_required_one_is_refused() -> None:
    assert read_from(Reply, Detail("d", "L"), id=2).town is None
    with pytest.raises(ValidationError, match="label"):
        read_from(Reply, Row(1, "row", None))


def test_values_are_validated_as_by_the_constructor() -> None:
    with pytest.raises(ValidationError, match="id"):
        read_from(Reply, Row("not a number", "row", None), label="L")  # type: ignore[arg-type]

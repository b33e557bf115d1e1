"""Fixtures of the map tests: the hand-made town of ``tests.maps.town``."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.maps.town import build_town


@pytest.fixture
def town(session: Session, catalog: int) -> dict[str, int]:
    """The hand-made town, inside the test's rolled-back transaction."""
    return build_town(session)

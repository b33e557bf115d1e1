"""notebooks/camera_siting.ipynb runs against the test database (the demo county): its numbers
are the MCLP service's and it draws the chosen sites."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from gis.services import siting
from tests.conftest import SAMPLE_END
from tests.maps.notebooks import execute_notebook, images, printed


def test_camera_siting_notebook_shows_the_services_sites_and_draws_them(
    database_url: str, demo: dict[str, object], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIS_NOTEBOOK_K", "4")
    notebook = execute_notebook("camera_siting.ipynb", database_url, monkeypatch)
    text = printed(notebook)
    town = re.search(r"town (\d+): ", text)
    assert town is not None, text

    query = siting.CameraSitingQuery(
        town[1], k=4, since=SAMPLE_END - timedelta(days=365), until=SAMPLE_END
    )
    direct = siting.site_cameras(session, query)
    assert direct.added > 0 and sum(direct.per_grid.values()) == direct.added
    last = printed(notebook, cells=slice(-1, None))
    assert last == (
        f"added: {direct.added} of {direct.cases} cases (seen now {direct.seen_now})\n"
        "per grid: " + ", ".join(f"{g}={n}" for g, n in direct.per_grid.items()) + "\n"
    )
    assert "drawn: " in text and f", {len(direct.sites)} sites" in text
    (figure,) = images(notebook)
    assert len(figure) > 10_000

"""Background jobs over HTTP, on the committed demo county with the app's real engine (a job runs
in another thread and its own transaction, so it cannot share a test's rolled-back session):
202 + Location, progress to the end, results (a draft plan, a layer and a CSV), cancellation,
jobs of a dead process, and access for the owner and admins only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.api.jobs import JobRunner
from gis.api.security import get_principal
from gis.layers.base import utcnow
from gis.layers.jobs import Job, JobStatus
from gis.layers.users import Role
from gis.services import jobs
from gis.services.access import Principal
from gis.settings import Settings
from tests.conftest import SAMPLE_END

OWNERS = ("jobs-planner-a", "jobs-planner-b", "jobs-admin")


def _principal(name: str, role: Role = Role.PLANNER) -> Principal:
    return Principal(user_id=None, name=name, role=role, town_codes=None)


@pytest.fixture
def api(settings: Settings, engine: Engine, demo: dict[str, object]) -> Iterator[Any]:
    from gis.api import create_app

    app = create_app(settings)
    app.dependency_overrides[get_principal] = lambda: _principal(OWNERS[0])
    try:
        with TestClient(app) as client:
            client.app_ = app  # type: ignore[attr-defined]
            yield client
    finally:
        with Session(engine) as session:
            plan_ids = session.scalars(
                sa.select(Job.result["plan_id"].as_integer()).where(Job.owner.in_(OWNERS))
            ).all()
            session.execute(
                sa.text("DELETE FROM plans WHERE id = ANY(:ids)"),
                {"ids": [i for i in plan_ids if i]},
            )
            session.execute(sa.delete(Job).where(Job.owner.in_(OWNERS)))
            session.commit()


def _as(client: TestClient, name: str, role: Role = Role.PLANNER) -> None:
    client.app_.dependency_overrides[get_principal] = lambda: _principal(name, role)  # type: ignore[attr-defined]


def _wait(client: TestClient, url: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen: list[float] = []
    while time.monotonic() < deadline:
        body = client.get(url).json()
        seen.append(body["progress"])
        if body["status"] in ("succeeded", "failed", "cancelled"):
            assert seen == sorted(seen), "progress never goes back"
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not finish: {body}")


def _demo_town(engine: Engine) -> str:
    from gis.services.mapdata import towns_with_cases

    with Session(engine) as session:
        return towns_with_cases(session)[0]


def test_camera_siting_job_gives_a_layer_and_a_csv(api: TestClient, engine: Engine) -> None:
    town = _demo_town(engine)
    reply = api.post(
        "/analytics/camera-siting",
        json={
            "town": town,
            "k": 3,
            "range_m": 150,
            "spacing_m": 100,
            "until": SAMPLE_END.isoformat(),
        },
    )
    assert reply.status_code == 202, reply.text
    location = reply.headers["location"]
    assert location == f"/jobs/{reply.json()['id']}" and reply.json()["status"] == "queued"
    job = _wait(api, location)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["result_url"] == f"{location}/result"
    layer = api.get(job["result_url"]).json()
    assert layer["type"] == "FeatureCollection" and len(layer["features"]) == 3
    assert layer["summary"]["added_by_new_cameras"] > 0
    assert 0 <= layer["summary"]["optimality_gap"] < 0.05
    csv = api.get(f"{location}/result.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("rank,lon,lat") and len(lines) == 4


def test_station_siting_job_gives_a_layer_and_a_csv(api: TestClient, engine: Engine) -> None:
    town = _demo_town(engine)
    reply = api.post(
        "/analytics/station-siting",
        json={
            "town": town,
            "platform": "market",
            "k": 2,
            "since": (SAMPLE_END - timedelta(days=120)).isoformat(),
            "until": SAMPLE_END.isoformat(),
            "max_candidates": 40,
        },
    )
    assert reply.status_code == 202, reply.text
    location = reply.headers["location"]
    job = _wait(api, location)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "station_siting" and job["result_url"] == f"{location}/result"
    layer = api.get(job["result_url"]).json()
    assert layer["type"] == "FeatureCollection" and len(layer["features"]) == 2
    summary = layer["summary"]
    assert summary["after"]["mean_s"] < summary["before"]["mean_s"]
    assert summary["current_units"] and 0 <= summary["optimality_gap"] < 0.05
    lines = api.get(f"{location}/result.csv").text.strip().splitlines()
    assert lines[0].startswith("rank,node,lon,lat") and len(lines) == 3


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"platform": "market", "k": 20, "max_candidates": 10}, 422, "more than the 10"),
        ({"platform": "police", "k": 1}, 422, "unknown platform"),
        ({"platform": "market", "k": 1, "since": "2020-01-01T00:00:00Z",
          "until": "2020-02-01T00:00:00Z"}, 422, "only 0 market case"),
        ({"platform": "market", "k": 1, "town": "999999999999"}, 404, "town"),
    ],
)  # fmt: skip
def test_bad_station_siting_input_is_refused_and_queues_nothing(
    api: TestClient, engine: Engine, body: dict[str, Any], status: int, reason: str
) -> None:
    with Session(engine) as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(Job))
    reply = api.post("/analytics/station-siting", json={"town": _demo_town(engine), **body})
    assert reply.status_code == status, reply.text
    assert reason in reply.json()["detail"] and "code" in reply.json()
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == before


def test_redistricting_job_leaves_a_valid_draft_plan(api: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        village = session.execute(
            sa.text(
                "SELECT village_code FROM grids WHERE valid_to IS NULL GROUP BY 1 "
                "HAVING count(*) >= 3 ORDER BY 1 LIMIT 1"
            )
        ).scalar_one()
    reply = api.post("/analytics/redistricting", json={"village": village})
    assert reply.status_code == 202, reply.text
    job = _wait(api, reply.headers["location"])
    assert job["status"] == "succeeded", job
    assert job["result_url"].startswith("/plans/")
    plan = api.get(job["result_url"]).json()
    assert plan["status"] == "draft" and plan["valid"] is True
    assert plan["created_by"] == OWNERS[0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"village": "{village}", "weights": {"cameras": 1}}, "unknown weight column"),
        ({"village": "{village}", "weights": {"households": 0}}, "at least one weight"),
        ({"village": "{one}"}, "1 current grid"),
    ],
)
def test_bad_redistricting_input_is_422_and_queues_nothing(
    api: TestClient, engine: Engine, body: dict[str, Any], reason: str
) -> None:
    with Session(engine) as session:
        counts = dict(
            session.execute(
                sa.text(
                    "SELECT village_code, count(*) FROM grids WHERE valid_to IS NULL "
                    "GROUP BY 1 ORDER BY 2 DESC, 1"
                )
            ).all()
        )
        before = session.scalar(sa.select(sa.func.count()).select_from(Job))
    many = next(v for v, n in counts.items() if n >= 2)
    one = next((v for v, n in counts.items() if n == 1), None)
    if one is None and "{one}" in str(body):
        pytest.skip("the demo county has no one-grid village")
    filled = {
        k: (v.format(village=many, one=one) if isinstance(v, str) else v) for k, v in body.items()
    }
    reply = api.post("/analytics/redistricting", json=filled)
    assert reply.status_code == 422, reply.text
    assert reason in reply.json()["detail"]
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == before


def test_unknown_town_for_siting_is_404(api: TestClient) -> None:
    reply = api.post("/analytics/camera-siting", json={"town": "999999999999", "k": 2})
    assert reply.status_code == 404


def _slow_kind(steps: int, step_s: float) -> jobs.JobKind:
    def run(session: Session, params: dict[str, Any], progress: jobs.Progress) -> dict[str, Any]:
        for n in range(steps):
            progress(n / steps, f"step {n + 1} of {steps}")
            time.sleep(step_s)
        return {"steps": steps}

    return jobs.JobKind(check=lambda session, params: None, run=run)


def _queue(engine: Engine, kind: str, owner: str = OWNERS[0]) -> int:
    with Session(engine) as session:
        job = jobs.create_job(session, kind=kind, params={}, owner=owner)
        session.commit()
        return job.id


def test_a_running_job_is_cancelled_at_its_next_step(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(jobs.KINDS, "slow", _slow_kind(400, 0.05))
    job_id = _queue(engine, "slow")
    runner: JobRunner = api.app_.state.jobs  # type: ignore[attr-defined]
    runner.submit(job_id)
    deadline = time.monotonic() + 30
    while api.get(f"/jobs/{job_id}").json()["progress"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    running = api.get(f"/jobs/{job_id}").json()
    assert running["status"] == "running" and 0 < running["progress"] < 1
    assert running["message"].startswith("step ")
    reply = api.post(f"/jobs/{job_id}/cancel")
    assert reply.status_code == 202 and reply.json()["cancel_requested"] is True
    job = _wait(api, f"/jobs/{job_id}", timeout_s=30)
    assert job["status"] == "cancelled" and job["progress"] < 1 and job["result_url"] is None
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 409
    assert api.get(f"/jobs/{job_id}/result").status_code == 404


def test_a_queued_job_is_cancelled_at_once(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(jobs.KINDS, "slow", _slow_kind(1, 0.0))
    job_id = _queue(engine, "slow")  # never submitted: it stays queued
    reply = api.post(f"/jobs/{job_id}/cancel")
    assert reply.status_code == 202 and reply.json()["status"] == "cancelled"


def _dead_job(engine: Engine) -> int:
    with Session(engine) as session:
        long_ago = utcnow() - timedelta(hours=1)
        job = Job(
            kind="slow",
            owner=OWNERS[0],
            params={},
            status=JobStatus.RUNNING.value,
            progress=0.4,
            message="step 4",
            cancel_requested=False,
            worker="gone:1",
            created_at=long_ago,
            started_at=long_ago,
            heartbeat_at=long_ago,
        )
        session.add(job)
        session.commit()
        return job.id


def test_a_job_whose_process_died_is_failed_when_read(api: TestClient, engine: Engine) -> None:
    job_id = _dead_job(engine)
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "stopped" in job["error"]
    assert job["progress"] == 0.4


def test_startup_fails_jobs_left_running_by_a_dead_process(
    engine: Engine, settings: Settings, demo: dict[str, object]
) -> None:
    job_id = _dead_job(engine)
    try:
        assert JobRunner(engine, settings).start() >= 1
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None and job.status == "failed" and job.finished_at is not None
    finally:
        with Session(engine) as session:
            session.execute(sa.delete(Job).where(Job.id == job_id))
            session.commit()


def test_a_live_job_keeps_its_heartbeat(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A step longer than the heartbeat timeout: the heartbeat thread keeps it alive.
    short = settings.model_copy(update={"job_heartbeat_timeout_s": 0.4})
    monkeypatch.setitem(jobs.KINDS, "slow", _slow_kind(1, 1.5))
    runner = JobRunner(engine, short)
    job_id = _queue(engine, "slow")
    try:
        runner.submit(job_id)
        time.sleep(1.0)
        with Session(engine) as session:
            job = jobs.get_job(session, job_id, owner=None, timeout_s=0.4)
            assert job.status == "running"
        runner.wait(job_id, timeout_s=30)
        with Session(engine) as session:
            assert session.get(Job, job_id).status == "succeeded"  # type: ignore[union-attr]
    finally:
        runner.stop()
        with Session(engine) as session:
            session.execute(sa.delete(Job).where(Job.id == job_id))
            session.commit()


def test_only_the_owner_and_admins_see_a_job(api: TestClient, engine: Engine) -> None:
    job_id = _dead_job(engine)
    _as(api, OWNERS[1])
    assert api.get(f"/jobs/{job_id}").status_code == 404
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 404
    _as(api, OWNERS[2], Role.ADMIN)
    assert api.get(f"/jobs/{job_id}").status_code == 200
    _as(api, "jobs-grid-member", Role.GRID_MEMBER)
    assert api.get(f"/jobs/{job_id}").status_code == 403

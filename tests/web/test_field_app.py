"""The grid member's phone app (/app) end to end: a real uvicorn server on loopback with its
asyncpg pool and a committed town (tests.web.field_town), headless Chromium as a 360-px phone
with its GPS set by the test, the camera input fed with photos the tests draw (tests.photos).
Every outside request is refused; a screenshot of each screen goes to the test's tmp_path."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.categories import Category
from gis.layers.errands import Errand, ErrandEvent
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.media import Media
from gis.services.media import DirectoryStore
from gis.settings import Settings
from tests.browser import closed_network
from tests.live import serve
from tests.photos import jpeg_with_gps
from tests.web import field_town
from tests.web.field_town import INSIDE_FA1, RETIRED, TOWN, FieldTown

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
TIMEOUT = 15_000


@pytest.fixture(scope="module")
def town(engine: Engine, settings: Settings, catalog: int) -> Iterator[FieldTown]:
    """The committed town and its member's login; removed after the module."""
    built = field_town.build(engine, settings)
    yield built
    field_town.remove(engine)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server stores photos."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def server(settings: Settings, town: FieldTown, assets_dir: Path, media_dir: Path) -> Iterator[str]:
    """The real service (tokens required) on a free loopback port."""
    app = create_app(
        settings.model_copy(
            update={
                "auth_required": True,
                "map_assets": "local",
                "map_assets_dir": str(assets_dir),
                "media_dir": str(media_dir),
                # Tiles from the service itself (they are 404s): nothing leaves the machine.
                "basemap": "intranet",
                "basemap_url": "/web/app/tile-{z}-{x}-{y}.png",
            }
        )
    )
    with serve(app) as url:
        yield url


def _phone(browser: Any, server: str, town: FieldTown) -> tuple[Any, list[str]]:
    """A phone with GPS inside grid FA1, logged in once through /login, on /app."""
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation={"longitude": INSIDE_FA1[0], "latitude": INSIDE_FA1[1], "accuracy": 8},
        permissions=["geolocation"],
    )
    page = context.new_page()
    errors = closed_network(page, server)
    page.goto(f"{server}/app")
    assert "/login" in page.url  # no cookie yet: the login form, once
    page.fill("input[name=token]", town.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/app", timeout=TIMEOUT)
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT)
    page.wait_for_selector("#category-list button", timeout=TIMEOUT)
    # The token is an HttpOnly cookie the page's script never sees.
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("Object.keys(localStorage)").count("gis_token") == 0
    return page, errors


def _fill(page: Any, *, search: str, code: str, text: str, photos: list[bytes]) -> None:
    page.fill("#category-search", search)
    page.click(f"#category-list button[data-code={code}]")
    page.fill("#description", text)
    if photos:
        page.set_input_files(
            "#photos",
            files=[
                {"name": f"p{i}.jpg", "mimeType": "image/jpeg", "buffer": data}
                for i, data in enumerate(photos)
            ],
        )
    page.wait_for_function(
        "document.getElementById('where').textContent.includes('FA1')", timeout=TIMEOUT
    )


def _cases(engine: Engine, description: str) -> list[Incident]:
    with Session(engine) as s:
        return list(
            s.scalars(
                sa.select(Incident)
                .where(Incident.town_code == TOWN, Incident.description == description)
                .order_by(Incident.id)
            )
        )


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"))


def test_report_with_two_photos_makes_one_case_with_both_stripped_of_exif(
    browser: Any, server: str, town: FieldTown, engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    page, errors = _phone(browser, server, town)
    # Pinyin initials find 治安隐患 (zaah), grouped under its platform.
    page.fill("#category-search", "zayh")
    assert page.locator("#category-list button").all_inner_texts() == ["治安隐患"]
    assert page.locator("#category-list h4").all_inner_texts() == ["综治工作"]
    _fill(
        page,
        search="zayh",
        code="public_security_hazard",
        text="桥头护栏断裂 two photos",
        photos=[jpeg_with_gps(colour="red"), jpeg_with_gps(colour="green")],
    )
    assert page.locator("#photo-previews img").count() == 2
    assert "±8 m" in page.inner_text("#where")
    _shot(page, tmp_path, "report")
    page.click("#send")
    page.wait_for_selector("#screen-reply:not([hidden])", timeout=TIMEOUT)
    assert page.inner_text("#reply-grid") == "FA1网格"
    assert page.inner_text("#reply-unit") == "田野派出所"
    assert page.inner_text("#reply-member") == "赵三"
    assert page.inner_text("#reply-due") != "—"
    _shot(page, tmp_path, "reply")

    [case] = _cases(engine, "桥头护栏断裂 two photos")
    assert case.grid_code == "FA1" and case.status == "assigned"
    assert len(case.photos) == 2 and all(p.startswith("media:") for p in case.photos)
    from PIL import Image

    store = DirectoryStore(media_dir)
    for ref in case.photos:
        with Image.open(io.BytesIO(store.get(ref[6:]))) as stored:
            assert dict(stored.getexif()) == {}  # no GPS, no camera model
    with Session(engine) as s:
        report = s.scalars(
            sa.select(IncidentEvent).where(
                IncidentEvent.incident_id == case.id, IncidentEvent.action == "report"
            )
        ).one()
        assert report.data["location_method"] == "gps"
        assert report.data["accuracy_m"] == 8
        uploaders = set(
            s.scalars(
                sa.select(Media.uploaded_by).where(Media.id.in_([p[6:] for p in case.photos]))
            )
        )
    assert uploaders == {town.user_id}
    assert errors == []


def test_offline_report_waits_and_is_sent_once_when_the_signal_returns(
    browser: Any, server: str, town: FieldTown, engine: Engine, tmp_path: Path
) -> None:
    page, errors = _phone(browser, server, town)
    context = page.context
    # The first answer is lost on the way back (the case is saved, the phone never hears):
    # the retry with the same Idempotency-Key must not make a second case.
    lost = {"n": 0}

    def lose_first_reply(route: Any) -> None:
        if route.request.method == "POST" and lost["n"] == 0:
            lost["n"] += 1
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"{server}/incidents", lose_first_reply)
    _fill(
        page,
        search="zayh",
        code="public_security_hazard",
        text="离线上报 offline",
        photos=[jpeg_with_gps()],
    )
    context.set_offline(True)
    page.click("#send")
    page.wait_for_selector("#outbox-status:not([hidden])", timeout=TIMEOUT)
    assert page.inner_text("#outbox-status").startswith("1 ")
    _shot(page, tmp_path, "offline-outbox")
    assert _cases(engine, "离线上报 offline") == []

    # A second report waits too: "2 reports waiting".
    _fill(page, search="zayh", code="public_security_hazard", text="离线上报 second", photos=[])
    page.click("#send")
    page.wait_for_function(
        "document.getElementById('outbox-status').dataset.count === '2'", timeout=TIMEOUT
    )
    # `online` flushes: the first POST's reply is lost, so both stay queued for the next flush.
    # (Dispatched by hand as well: on a loaded machine this step once timed out with only the
    # emulated event; a second `online` joins the running flush.)
    with page.expect_event(
        "requestfailed", lambda r: r.url.endswith("/incidents"), timeout=TIMEOUT
    ):
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
    assert lost["n"] == 1
    assert len(_cases(engine, "离线上报 offline")) == 1  # saved, though the phone never heard
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#outbox-status[hidden]", state="attached", timeout=TIMEOUT)
    assert len(_cases(engine, "离线上报 offline")) == 1
    assert len(_cases(engine, "离线上报 second")) == 1
    assert errors == []


def test_duplicate_prompt_attaches_the_new_report_to_the_existing_case(
    browser: Any, server: str, town: FieldTown, engine: Engine, tmp_path: Path
) -> None:
    page, errors = _phone(browser, server, town)
    _fill(page, search="jtsg", code="traffic_accident", text="第一次 first", photos=[])
    page.click("#send")
    page.wait_for_selector("#screen-reply:not([hidden])", timeout=TIMEOUT)
    assert page.locator("#duplicates").is_hidden()
    page.click("#reply-done")
    _fill(page, search="交通", code="traffic_accident", text="第二次 second", photos=[])
    page.click("#send")
    page.wait_for_selector("#duplicates:not([hidden])", timeout=TIMEOUT)
    assert "这是同一件事吗" in page.inner_text("#duplicates h3")
    [first] = _cases(engine, "第一次 first")
    _shot(page, tmp_path, "duplicate")
    page.click(f"button[data-duplicate-of='{first.id}']")
    page.wait_for_selector("#duplicate-list .ok", timeout=TIMEOUT)
    [second] = _cases(engine, "第二次 second")
    assert second.status == "duplicate" and second.duplicate_of_id == first.id
    assert errors == []


def test_my_work_accept_start_resolve_with_a_photo_and_an_errand(
    browser: Any, server: str, town: FieldTown, engine: Engine, tmp_path: Path
) -> None:
    page, errors = _phone(browser, server, town)
    _fill(page, search="zayh", code="public_security_hazard", text="我的工作 road", photos=[])
    page.click("#send")
    page.wait_for_selector("#screen-reply:not([hidden])", timeout=TIMEOUT)
    [case] = _cases(engine, "我的工作 road")
    page.click("#tabs button[data-screen=work]")
    page.wait_for_selector("#case-list li button", timeout=TIMEOUT)
    page.wait_for_selector("#errand-list li button", timeout=TIMEOUT)
    assert f"#{case.id}" in page.locator("#case-list li").first.inner_text()  # newest first
    assert "钱大妈" in page.inner_text("#errand-list")
    _shot(page, tmp_path, "my-work")
    page.locator("#case-list li button", has_text=f"#{case.id}").click()
    for action in ("accept", "start"):
        page.click(f"#item-actions button[data-action={action}]")
        page.wait_for_selector(
            f"#item-actions:not(:has(button[data-action={action}]))", timeout=TIMEOUT
        )
    page.fill("#item-note", "护栏已修复 fixed")
    page.set_input_files(
        "#item-photo-input",
        files=[
            {"name": "done.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps(colour="blue")}
        ],
    )
    _shot(page, tmp_path, "case")
    page.click("#item-actions button[data-action=resolve]")
    page.wait_for_selector("#item-error.ok", timeout=TIMEOUT)
    page.wait_for_selector("#item-photos img", timeout=TIMEOUT)  # the resolve photo, shown back
    with Session(engine) as s:
        resolved = s.get(Incident, case.id)
        assert resolved is not None and resolved.status == "resolved"
        event = s.scalars(
            sa.select(IncidentEvent).where(
                IncidentEvent.incident_id == case.id, IncidentEvent.action == "resolve"
            )
        ).one()
        assert event.note == "护栏已修复 fixed" and len(event.data["photos"]) == 1
    page.click("#item-back")
    page.locator("#errand-list li button").first.click()
    page.wait_for_selector("#item-actions button[data-action=collect]", timeout=TIMEOUT)
    assert page.locator("#item-photos img").count() == 0  # the case's photo is not the errand's
    page.fill("#item-note", "材料已收齐 papers collected")
    page.set_input_files(
        "#item-photo-input",
        files=[
            {"name": "papers.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps(colour="red")}
        ],
    )
    assert page.locator("#item-photo-previews img").count() == 1
    _shot(page, tmp_path, "errand")
    page.click("#item-actions button[data-action=collect]")
    page.wait_for_selector("#item-actions button[data-action=submit]", timeout=TIMEOUT)
    # The errand's photo, shown back from its log: the member may read it (loaded, not a 404).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#item-photos img')]"
        ".some((img) => img.complete && img.naturalWidth > 0)",
        timeout=TIMEOUT,
    )
    with Session(engine) as s:
        errand = s.get(Errand, town.errand_id)
        assert errand is not None and errand.status == "collecting"
        collected = s.scalars(
            sa.select(ErrandEvent).where(
                ErrandEvent.errand_id == errand.id, ErrandEvent.action == "collect"
            )
        ).one()
        assert collected.note == "材料已收齐 papers collected"
        [ref] = collected.data["photos"]
        assert ref.startswith("media:") and ref != event.data["photos"][0]
        assert page.get_attribute("#item-photos img", "alt") == ref
    page.click("#tabs button[data-screen=settings]")
    page.check("#english")
    assert page.inner_text("#tabs button[data-screen=report]") == "上报 Report"
    _shot(page, tmp_path, "settings")
    assert errors == []


def test_queued_report_of_a_retired_category_is_refused_in_chinese_and_its_photo_removed(
    browser: Any, server: str, town: FieldTown, engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    page, errors = _phone(browser, server, town)
    page.context.set_offline(True)
    _fill(
        page,
        search="cstyl",
        code=RETIRED,
        text="停用类别 retired",
        photos=[jpeg_with_gps(colour="yellow")],
    )
    page.click("#send")
    page.wait_for_selector("#outbox-status:not([hidden])", timeout=TIMEOUT)
    with Session(engine) as s:  # the command room retires the category meanwhile
        s.execute(sa.delete(Category).where(Category.code == RETIRED))
        s.commit()
    stored_before = _stored(engine, town)
    files_before = sorted(p.name for p in media_dir.rglob("*") if p.is_file())
    page.context.set_offline(False)
    page.wait_for_selector("#outbox-list .failed", timeout=TIMEOUT)
    assert "该类别已停用" in page.inner_text("#outbox-list")
    # The picker no longer offers it; "edit and send again" puts the report back in the form.
    page.wait_for_selector(f"#category-list button[data-code={RETIRED}]", state="detached")
    assert page.locator("#outbox-status").is_hidden()
    _shot(page, tmp_path, "refused")
    assert _cases(engine, "停用类别 retired") == []
    # Its photo went up before the report was refused, and was removed again: record and file.
    assert _stored(engine, town) == stored_before
    assert sorted(p.name for p in media_dir.rglob("*") if p.is_file()) == files_before
    # The refused POST is an expected 422 (a failed load), not a script error.
    assert errors == []


def _stored(engine: Engine, town: FieldTown) -> int:
    with Session(engine) as s:
        return int(
            s.scalar(
                sa.select(sa.func.count())
                .select_from(Media)
                .where(Media.uploaded_by == town.user_id)
            )
            or 0
        )

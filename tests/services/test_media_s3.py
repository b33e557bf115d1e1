"""The S3-compatible media store against a real S3 server: moto in server mode, started here as
its own process on a loopback port (no mock object), through boto3 as in production; and the
API storing photos there when GIS_MEDIA_S3_* are set."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from gis.errors import NotFoundError
from gis.layers.users import Role
from gis.services.media import S3Store, store_for
from gis.settings import Settings
from tests.api.test_media import bearer, upload
from tests.live import free_port
from tests.photos import jpeg_with_gps
from tests.services.intake_fixtures import TOWN_1, Area, area

__all__ = ["area"]

BUCKET = "gis-photos"
KEYS = {"media_s3_key_id": "testing", "media_s3_secret": "testing", "media_s3_region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """moto's S3 server as a process of its own on a free loopback port, stopped afterwards."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the moto S3 server did not start")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def s3_settings(settings: Settings, s3_url: str) -> Settings:
    """Settings naming a fresh bucket on the moto server."""
    configured = settings.model_copy(
        update={"media_s3_bucket": BUCKET, "media_s3_url": s3_url, **KEYS}
    )
    store = store_for(configured)
    assert isinstance(store, S3Store)
    existing = [b["Name"] for b in store.client.list_buckets()["Buckets"]]
    if BUCKET in existing:
        for item in store.client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            store.client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        store.client.create_bucket(Bucket=BUCKET)
    return configured


def test_s3_store_puts_gets_and_deletes_over_http(s3_settings: Settings) -> None:
    store = store_for(s3_settings)
    store.put("abc", b"photo bytes")
    assert store.get("abc") == b"photo bytes"
    assert isinstance(store, S3Store)
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["media/abc"]  # under GIS_MEDIA_S3_PREFIX
    store.delete("abc")
    store.delete("abc")  # twice is fine
    with pytest.raises(NotFoundError):
        store.get("abc")


def test_the_api_stores_photos_in_the_bucket_without_exif(
    app: Any, client: Any, session: Session, area: Area, s3_settings: Settings, tmp_path: Path
) -> None:
    import io

    from PIL import Image

    app.state.settings = s3_settings.model_copy(update={"media_dir": str(tmp_path)})
    headers = bearer(session, Role.DISPATCHER, (TOWN_1,), name="m-s3")
    reply = upload(client, headers, jpeg_with_gps(colour="maroon"))
    assert reply.status_code == 201, reply.text
    photo = reply.json()
    store = store_for(s3_settings)
    assert isinstance(store, S3Store)
    keys = {o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"media/{photo['id']}", f"media/{photo['id']}.thumb"}
    assert list(tmp_path.iterdir()) == []  # nothing in the directory store
    stored = client.get(photo["url"], headers=headers)
    assert stored.status_code == 200
    with Image.open(io.BytesIO(stored.content)) as image:
        assert dict(image.getexif()) == {}
    assert client.delete(f"/media/{photo['id']}", headers=headers).status_code == 204
    assert store.client.list_objects_v2(Bucket=BUCKET).get("Contents", []) == []

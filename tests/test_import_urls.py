"""Import of http(s) image URLs through the safe fetcher, against a local server the test runs."""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.models import CoverImage, Listing
from tests.image_http import send_jpeg, send_status

pytestmark = pytest.mark.django_db

HEADER = "id;name;system;price;currency;image\n"


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 170), (30, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def image_server():
    body = jpeg_bytes()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": self.path, "if_none_match": self.headers.get("If-None-Match")})
            if self.path == "/missing.jpg":
                send_status(self, 404)
                return
            if self.headers.get("If-None-Match") == '"v1"':
                send_status(self, 304)
                return
            send_jpeg(self, body, '"v1"')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def write_feed(tmp_path, base: str):
    feeds = tmp_path / "feeds"
    feeds.mkdir(exist_ok=True)
    (feeds / "urlshop.csv").write_text(
        HEADER + f"1;Url Test Game;PS4;19,99;EUR;{base}/cover.jpg\n" + f"2;Url Test Game;PS4;18,99;EUR;{base}/missing.jpg\n"
    )


def test_reimport_sends_etag_and_keeps_cover_on_304(tmp_path, image_server, monkeypatch):
    base, seen = image_server
    monkeypatch.setenv("COVERPICK_FETCH_ALLOWED_HOSTS", "127.0.0.1")
    write_feed(tmp_path, base)
    first = import_catalogue(tmp_path)
    listing = Listing.objects.get(product_id="1")
    assert listing.cover is not None
    assert listing.image_etag == '"v1"'
    assert first.images_stored == 1

    second = import_catalogue(tmp_path)
    listing.refresh_from_db()
    assert second.images_stored == 0
    assert listing.cover is not None
    assert CoverImage.objects.count() == 1
    cover_requests = [entry for entry in seen if entry["path"] == "/cover.jpg"]
    assert cover_requests[-1]["if_none_match"] == '"v1"'


def test_failed_fetch_is_a_worded_cover_error(tmp_path, image_server, monkeypatch):
    base, _ = image_server
    monkeypatch.setenv("COVERPICK_FETCH_ALLOWED_HOSTS", "127.0.0.1")
    write_feed(tmp_path, base)
    summary = import_catalogue(tmp_path)
    listing = Listing.objects.get(product_id="2")
    assert listing.cover is None
    assert "404" in listing.cover_error
    assert summary.rows_refused == 0


def test_loopback_url_rejected_without_allow_list(tmp_path, image_server, monkeypatch):
    base, seen = image_server
    monkeypatch.delenv("COVERPICK_FETCH_ALLOWED_HOSTS", raising=False)
    write_feed(tmp_path, base)
    import_catalogue(tmp_path)
    listing = Listing.objects.get(product_id="1")
    assert listing.cover is None
    assert listing.cover_error
    assert seen == []

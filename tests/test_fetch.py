"""Tests for coverpick.covers.fetch against real HTTP servers on 127.0.0.1.

Every test runs under a guard that fails it if the code under test opens a TCP
connection to anything but 127.0.0.1, so address checks are proven to happen
before connecting, and nothing leaves this machine.
"""

from __future__ import annotations

import io
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, features

from coverpick.covers import fetch
from coverpick.covers.fetch import FetchError, fetch_image, sniff_image_format

COVER_ETAG = '"cover-v1"'
COVER_LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
HTML_PAGE = b"<!DOCTYPE html>\n<html><body>Product not found</body></html>\n"
DRIP_INTERVAL = 0.05


def encode_image(image_format: str, **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 48), (200, 30, 60)).save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


JPEG_BYTES = encode_image("JPEG")
PNG_BYTES = encode_image("PNG")


# --- Test server -------------------------------------------------------------


class CoverHandler(BaseHTTPRequestHandler):
    """Serves the routes that the tests fetch. Every request is recorded on the server."""

    protocol_version = "HTTP/1.1"
    server: CoverServer

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.close_connection = True
        self.server.requests.append((self.path, self.headers))
        path = self.path.split("?")[0]
        if path.startswith("/hop/"):
            self.redirect_hop(int(path.removeprefix("/hop/")))
            return
        route = getattr(self, "route_" + path.strip("/").replace("-", "_").replace(".", "_"), None)
        if route is None:
            self.send_error(404)
            return
        try:
            route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_body(self, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def redirect_hop(self, remaining: int):
        if remaining == 0:
            self.send_body(PNG_BYTES, "image/png")
        else:
            self.redirect(f"/hop/{remaining - 1}")

    def route_cover_jpg(self):
        validators = {"ETag": COVER_ETAG, "Last-Modified": COVER_LAST_MODIFIED}
        etag_matches = self.headers.get("If-None-Match") == COVER_ETAG
        date_matches = self.headers.get("If-Modified-Since") == COVER_LAST_MODIFIED
        if etag_matches or date_matches:
            self.send_response(304)
            for name, value in validators.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            return
        self.send_body(JPEG_BYTES, "image/jpeg", validators)

    def route_cover_png(self):
        self.send_body(PNG_BYTES, "image/png")

    def route_page_html(self):
        self.send_body(HTML_PAGE, "text/html; charset=utf-8")

    def route_always_304(self):
        self.send_response(304)
        self.send_header("Connection", "close")
        self.end_headers()

    def route_to_private(self):
        self.redirect("http://10.0.0.1/x")

    def route_to_ftp(self):
        self.redirect("ftp://127.0.0.1/cover.png")

    def route_to_localhost(self):
        self.redirect(f"http://localhost:{self.server.server_port}/cover.png")

    def route_no_location(self):
        self.send_response(302)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def route_large_declared(self):
        self.send_body(JPEG_BYTES[:3] + bytes(5000 - 3), "image/jpeg")

    def route_large_chunked(self):
        chunks = [JPEG_BYTES[:3] + bytes(497)] + [bytes(500)] * 9
        self.send_chunked(chunks)

    def route_small_chunked(self):
        self.send_chunked([JPEG_BYTES[i : i + 100] for i in range(0, len(JPEG_BYTES), 100)])

    def send_chunked(self, chunks: list[bytes]):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_short_body(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "100")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(JPEG_BYTES[:10])

    def route_slow_body(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "1000")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(JPEG_BYTES[:3])
        self.drip(b"\x00" * 997)

    def route_slow_headers(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Padding: ")
        self.drip(b"a" * 1000)

    def drip(self, data: bytes):
        """Send one byte per DRIP_INTERVAL, so every single read finishes well inside a 0.5 s timeout."""
        for byte in data:
            if self.server.stopping.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(DRIP_INTERVAL)


class CoverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), CoverHandler)
        self.requests: list[tuple[str, object]] = []
        self.stopping = threading.Event()
        self.scheme = "http"
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            self.scheme = "https"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.server_port}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def handle_error(self, request, client_address):
        # Tests cut connections off on purpose (timeouts, rejected certificates), so socket errors are expected.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def start_server(tls_context: ssl.SSLContext | None = None) -> tuple[CoverServer, threading.Thread]:
    httpd = CoverServer(tls_context)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return httpd, thread


def stop_server(httpd: CoverServer, thread: threading.Thread) -> None:
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server():
    httpd, thread = start_server()
    yield httpd
    stop_server(httpd, thread)


@pytest.fixture
def allowed(server):
    """Allow-list that admits the loopback test server and nothing else."""
    return [server.host_port]


@pytest.fixture(autouse=True)
def connect_guard(monkeypatch):
    """Record every TCP connect and fail the test on any target other than 127.0.0.1."""
    attempts: list[tuple] = []
    original_connect = socket.socket.connect

    def guarded_connect(sock, address):
        attempts.append(address)
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise AssertionError(f"the test tried to connect to {address!r}")
        return original_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (fetch.ALLOWED_HOSTS_ENV, fetch.MAX_BYTES_ENV, fetch.CONNECT_TIMEOUT_ENV, fetch.TOTAL_TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)


def fake_resolver(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Make getaddrinfo return the IPv4 addresses in ``answers`` for those names, without DNS.

    Returns the list of names looked up, which grows as the test runs.
    """
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in answers:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        lookups.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)) for address in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


# --- Happy path --------------------------------------------------------------


def test_fetch_jpeg_happy_path(server, allowed):
    url = server.url("/cover.jpg")

    result = fetch_image(url, allowed_hosts=allowed)

    assert result.url == url
    assert result.content == JPEG_BYTES
    assert result.image_format == "JPEG"
    assert result.content_type == "image/jpeg"
    assert result.etag == COVER_ETAG
    assert result.last_modified == COVER_LAST_MODIFIED
    assert result.not_modified is False
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.size == (32, 48)


def test_fetch_png_happy_path(server, allowed):
    result = fetch_image(server.url("/cover.png"), allowed_hosts=allowed)

    assert result.content == PNG_BYTES
    assert result.image_format == "PNG"
    assert result.etag is None


def test_fetch_sends_user_agent_and_host(server, allowed):
    fetch_image(server.url("/cover.png"), allowed_hosts=allowed)

    _, headers = server.requests[0]
    assert headers["User-Agent"] == "coverpick/0.1 (+cover image fetcher)"
    assert headers["Host"] == server.host_port
    assert headers["Accept-Encoding"] == "identity"


def test_fetch_percent_encodes_path(server, allowed):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_image(server.url("/cover ü.png?size=large big"), allowed_hosts=allowed)

    assert server.paths() == ["/cover%20%C3%BC.png?size=large%20big"]


# --- Address and scheme checks ------------------------------------------------


def test_loopback_rejected_without_allow_list(server, connect_guard):
    url = server.url("/cover.png")

    with pytest.raises(FetchError, match="loopback") as caught:
        fetch_image(url)

    message = str(caught.value)
    assert url in message
    assert fetch.ALLOWED_HOSTS_ENV in message
    assert server.requests == []
    assert connect_guard == []


def test_localhost_rejected_without_allow_list(server, connect_guard):
    with pytest.raises(FetchError, match="loopback"):
        fetch_image(server.url("/cover.png", host="localhost"))

    assert server.requests == []
    assert connect_guard == []


def test_allow_list_port_must_match(server, connect_guard):
    with pytest.raises(FetchError, match="loopback"):
        fetch_image(server.url("/cover.png"), allowed_hosts=["127.0.0.1:1"])

    assert server.requests == []
    assert connect_guard == []


def test_allow_list_host_matches_any_port(server):
    result = fetch_image(server.url("/cover.png"), allowed_hosts=["127.0.0.1"])

    assert result.image_format == "PNG"


def test_allow_list_read_from_environment(server, monkeypatch):
    monkeypatch.setenv(fetch.ALLOWED_HOSTS_ENV, f" cdn.example.test , {server.host_port.upper()} ")

    result = fetch_image(server.url("/cover.png"))

    assert result.image_format == "PNG"


def test_allow_list_argument_replaces_environment(server, monkeypatch):
    monkeypatch.setenv(fetch.ALLOWED_HOSTS_ENV, server.host_port)

    with pytest.raises(FetchError, match="loopback"):
        fetch_image(server.url("/cover.png"), allowed_hosts=[])

    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/x", "private"),
        ("http://192.168.1.20/x", "private"),
        ("http://172.16.0.1/x", "private"),
        ("http://169.254.169.254/x", "link-local"),
        ("http://127.0.0.1/x", "loopback"),
        ("http://0.0.0.0/x", "unspecified"),
        ("http://224.0.0.1/x", "multicast"),
        ("http://240.0.0.1/x", "reserved"),
        ("http://100.64.0.1/x", "not globally routable"),
        ("https://[::1]/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://[::]/x", "unspecified"),
        ("http://[fe80::1]/x", "link-local"),
        ("http://[fc00::1]/x", "private"),
        ("http://[ff02::1]/x", "multicast"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://[::ffff:10.0.0.1]/x", "private"),
        ("http://[::ffff:169.254.169.254]/x", "link-local"),
        ("http://[2002:7f00:1::1]/x", "loopback"),
    ],
)
def test_non_public_address_rejected(url, reason, connect_guard):
    with pytest.raises(FetchError, match=reason) as caught:
        fetch_image(url)

    assert url in str(caught.value)
    assert connect_guard == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/cover.jpg",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "//127.0.0.1/cover.jpg",
        "cover.jpg",
    ],
)
def test_disallowed_scheme_rejected(url, connect_guard):
    with pytest.raises(FetchError, match="scheme .* is not allowed") as caught:
        fetch_image(url)

    assert repr(url) in str(caught.value)
    assert connect_guard == []


@pytest.mark.parametrize(
    "url",
    ["http:///cover.jpg", "http://127.0.0.1:99999/x", "http://[::1/x", "http://127.0.0.1:0/x"],
)
def test_malformed_url_rejected(url, connect_guard):
    with pytest.raises(FetchError):
        fetch_image(url)

    assert connect_guard == []


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.test/cover\x00.jpg",
        "http://cdn.example.test/\r\nX-Injected: 1",
        "http://cdn.exa\x7fmple.test/",
    ],
)
def test_control_characters_rejected(url, connect_guard):
    with pytest.raises(FetchError, match="contains control characters"):
        fetch_image(url)

    assert connect_guard == []


@pytest.mark.parametrize(
    "url",
    ["http://cdn.<example>.test/x", "http://cdn.example.test{x}/", "http://cdn example.test/"],
)
def test_invalid_host_characters_rejected(url, connect_guard):
    with pytest.raises(FetchError, match="invalid host"):
        fetch_image(url)

    assert connect_guard == []


def test_url_credentials_dropped(server, allowed):
    url = server.url("/cover.png").replace("http://", "http://shop:secret@")

    result = fetch_image(url, allowed_hosts=allowed)

    assert result.url == server.url("/cover.png")
    _, headers = server.requests[0]
    assert headers["Authorization"] is None


def test_url_credentials_absent_from_errors(connect_guard):
    with pytest.raises(FetchError) as caught:
        fetch_image("http://shop:secret@10.0.0.1/x")

    assert "secret" not in str(caught.value)
    assert caught.value.url == "http://10.0.0.1/x"


def test_host_rejected_when_any_address_is_private(monkeypatch, connect_guard):
    fake_resolver(monkeypatch, {"cdn.example.test": ["93.184.216.34", "10.1.2.3"]})

    with pytest.raises(FetchError, match="10.1.2.3, a private address"):
        fetch_image("http://cdn.example.test/cover.jpg")

    assert connect_guard == []


def test_host_resolved_once_per_hop(server, monkeypatch, connect_guard):
    lookups = fake_resolver(monkeypatch, {"images.example.test": ["127.0.0.1"]})
    url = server.url("/cover.png", host="images.example.test")

    result = fetch_image(url, allowed_hosts=["images.example.test"])

    assert result.image_format == "PNG"
    assert lookups == ["images.example.test"]
    assert connect_guard == [("127.0.0.1", server.server_port)]
    _, headers = server.requests[0]
    assert headers["Host"] == f"images.example.test:{server.server_port}"


def test_public_addresses_accepted():
    for address in ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::1"]:
        assert fetch._unsafe_address_reason(ipaddress.ip_address(address)) is None, address


# --- Redirects ---------------------------------------------------------------


def test_redirect_chain_of_three_followed(server, allowed):
    result = fetch_image(server.url("/hop/3"), allowed_hosts=allowed)

    assert result.url == server.url("/hop/0")
    assert result.image_format == "PNG"
    assert server.paths() == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


def test_redirect_chain_of_four_rejected(server, allowed):
    with pytest.raises(FetchError, match="redirected more than 3 times") as caught:
        fetch_image(server.url("/hop/4"), allowed_hosts=allowed)

    assert server.url("/hop/4") in str(caught.value)
    assert caught.value.status == 302
    assert server.paths() == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]


def test_redirect_to_private_address_rejected(server, allowed, connect_guard):
    with pytest.raises(FetchError, match="10.0.0.1 is a private address") as caught:
        fetch_image(server.url("/to-private"), allowed_hosts=allowed)

    assert caught.value.url == "http://10.0.0.1/x"
    assert server.paths() == ["/to-private"]
    assert connect_guard == [("127.0.0.1", server.server_port)]


def test_redirect_to_unlisted_host_rejected(server, allowed):
    with pytest.raises(FetchError, match="loopback") as caught:
        fetch_image(server.url("/to-localhost"), allowed_hosts=allowed)

    assert caught.value.url.startswith("http://localhost:")
    assert server.paths() == ["/to-localhost"]


def test_redirect_to_ftp_rejected(server, allowed):
    with pytest.raises(FetchError, match="scheme 'ftp' is not allowed"):
        fetch_image(server.url("/to-ftp"), allowed_hosts=allowed)

    assert server.paths() == ["/to-ftp"]


def test_redirect_without_location_rejected(server, allowed):
    with pytest.raises(FetchError, match="without a Location header") as caught:
        fetch_image(server.url("/no-location"), allowed_hosts=allowed)

    assert caught.value.status == 302


# --- Size cap ----------------------------------------------------------------


def test_content_length_over_cap_rejected(server, allowed):
    with pytest.raises(FetchError, match="Content-Length 5000 bytes exceeds the maximum of 1000 bytes") as caught:
        fetch_image(server.url("/large-declared"), allowed_hosts=allowed, max_bytes=1000)

    assert fetch.MAX_BYTES_ENV in str(caught.value)


def test_max_bytes_read_from_environment(server, allowed, monkeypatch):
    monkeypatch.setenv(fetch.MAX_BYTES_ENV, "1000")

    with pytest.raises(FetchError, match="exceeds the maximum of 1000 bytes"):
        fetch_image(server.url("/large-declared"), allowed_hosts=allowed)


def test_chunked_body_over_cap_rejected(server, allowed):
    with pytest.raises(FetchError, match="body exceeds the maximum of 2000 bytes"):
        fetch_image(server.url("/large-chunked"), allowed_hosts=allowed, max_bytes=2000)


def test_chunked_body_under_cap_accepted(server, allowed):
    result = fetch_image(server.url("/small-chunked"), allowed_hosts=allowed, max_bytes=len(JPEG_BYTES))

    assert result.content == JPEG_BYTES


def test_truncated_body_rejected(server, allowed):
    with pytest.raises(FetchError, match="connection closed after 10 bytes, 90 bytes short"):
        fetch_image(server.url("/short-body"), allowed_hosts=allowed)


# --- Timeouts ----------------------------------------------------------------


def test_slow_body_hits_total_timeout(server, allowed):
    started = time.monotonic()

    with pytest.raises(FetchError, match="timed out after the total timeout of 0.5 s"):
        fetch_image(server.url("/slow-body"), allowed_hosts=allowed, total_timeout=0.5)

    assert time.monotonic() - started < 2.0


def test_slow_headers_hit_total_timeout(server, allowed):
    started = time.monotonic()

    with pytest.raises(FetchError, match="timed out"):
        fetch_image(server.url("/slow-headers"), allowed_hosts=allowed, total_timeout=0.5)

    assert time.monotonic() - started < 2.0


def test_total_timeout_read_from_environment(server, allowed, monkeypatch):
    monkeypatch.setenv(fetch.TOTAL_TIMEOUT_ENV, "0.3")

    with pytest.raises(FetchError, match="total timeout of 0.3 s"):
        fetch_image(server.url("/slow-body"), allowed_hosts=allowed)


# --- Status and content checks -----------------------------------------------


def test_html_page_rejected_as_non_image(server, allowed):
    url = server.url("/page.html")

    with pytest.raises(FetchError, match="did not return an image") as caught:
        fetch_image(url, allowed_hosts=allowed)

    message = str(caught.value)
    assert url in message
    assert "starts with '<!DOCTYPE html'" in message
    assert "text/html" in message
    assert caught.value.status == 200


def test_not_found_rejected_with_status(server, allowed):
    url = server.url("/missing.jpg")

    with pytest.raises(FetchError, match="HTTP 404") as caught:
        fetch_image(url, allowed_hosts=allowed)

    assert caught.value.status == 404
    assert url in str(caught.value)


def test_unrequested_not_modified_rejected(server, allowed):
    with pytest.raises(FetchError, match="304 Not Modified to a request without") as caught:
        fetch_image(server.url("/always-304"), allowed_hosts=allowed)

    assert caught.value.status == 304


# --- Conditional requests ----------------------------------------------------


def test_etag_revalidation(server, allowed):
    url = server.url("/cover.jpg")
    first = fetch_image(url, allowed_hosts=allowed)

    second = fetch_image(url, etag=first.etag, allowed_hosts=allowed)

    assert second.not_modified is True
    assert second.content is None
    assert second.etag == COVER_ETAG
    assert second.image_format == ""
    _, headers = server.requests[1]
    assert headers["If-None-Match"] == COVER_ETAG
    assert headers["If-Modified-Since"] is None


def test_last_modified_revalidation(server, allowed):
    url = server.url("/cover.jpg")
    first = fetch_image(url, allowed_hosts=allowed)

    second = fetch_image(url, last_modified=first.last_modified, allowed_hosts=allowed)

    assert second.not_modified is True
    assert second.content is None
    assert second.last_modified == COVER_LAST_MODIFIED
    _, headers = server.requests[1]
    assert headers["If-Modified-Since"] == COVER_LAST_MODIFIED
    assert headers["If-None-Match"] is None


def test_stale_etag_gets_full_body(server, allowed):
    result = fetch_image(server.url("/cover.jpg"), etag='"cover-v0"', allowed_hosts=allowed)

    assert result.not_modified is False
    assert result.content == JPEG_BYTES
    assert result.etag == COVER_ETAG


def test_conditional_headers_follow_redirects(server, allowed):
    result = fetch_image(server.url("/hop/1"), etag='"png"', allowed_hosts=allowed)

    assert result.image_format == "PNG"
    assert [headers["If-None-Match"] for _, headers in server.requests] == ['"png"', '"png"']


# --- Settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COVERPICK_FETCH_MAX_BYTES", "lots"),
        ("COVERPICK_FETCH_MAX_BYTES", "0"),
        ("COVERPICK_FETCH_MAX_BYTES", "1.5e6"),
        ("COVERPICK_FETCH_CONNECT_TIMEOUT", "soon"),
        ("COVERPICK_FETCH_CONNECT_TIMEOUT", "-1"),
        ("COVERPICK_FETCH_TOTAL_TIMEOUT", "0"),
        ("COVERPICK_FETCH_TOTAL_TIMEOUT", "inf"),
        ("COVERPICK_FETCH_ALLOWED_HOSTS", "cdn.example.test:http"),
        ("COVERPICK_FETCH_ALLOWED_HOSTS", "[::1"),
        ("COVERPICK_FETCH_ALLOWED_HOSTS", "http://cdn.example.test/"),
        ("COVERPICK_FETCH_ALLOWED_HOSTS", "cdn.example.test:70000"),
    ],
)
def test_invalid_environment_value_rejected(variable, value, monkeypatch, connect_guard):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValueError, match=variable):
        fetch_image("http://10.0.0.1/x")

    assert connect_guard == []


@pytest.mark.parametrize(
    "keywords",
    [
        {"max_bytes": 0},
        {"max_bytes": 2.5},
        {"connect_timeout": 0},
        {"total_timeout": float("nan")},
        {"total_timeout": -3},
    ],
)
def test_invalid_keyword_rejected(keywords):
    (keyword,) = keywords

    with pytest.raises(ValueError, match=keyword):
        fetch_image("http://10.0.0.1/x", **keywords)


def test_allowed_hosts_string_rejected():
    with pytest.raises(TypeError, match="list of hosts"):
        fetch_image("http://10.0.0.1/x", allowed_hosts="10.0.0.1")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("CDN.Example.Test", ("cdn.example.test", None)),
        ("cdn.example.test.:8080", ("cdn.example.test", 8080)),
        ("10.0.0.5", ("10.0.0.5", None)),
        ("[::1]:8000", ("::1", 8000)),
        ("::FFFF:127.0.0.1", ("::ffff:7f00:1", None)),
    ],
)
def test_allowed_host_entry_parsed(entry, expected):
    assert fetch._parse_allowed_host(entry, "allowed_hosts") == expected


def test_fetch_error_is_os_error():
    error = FetchError("http://cdn.example.test/x returned HTTP 500", url="http://cdn.example.test/x", status=500)

    assert isinstance(error, OSError)
    assert str(error) == "http://cdn.example.test/x returned HTTP 500"
    assert error.status == 500


# --- HTTPS -------------------------------------------------------------------


def make_certificate(directory, host_name: str) -> tuple[str, str]:
    """Write a self-signed certificate for ``host_name`` with the openssl command and return (cert, key) paths."""
    cert_path = str(directory / "cert.pem")
    key_path = str(directory / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={host_name}", "-addext", f"subjectAltName=DNS:{host_name}",
            "-keyout", key_path, "-out", cert_path,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """HTTPS server whose certificate names images.example.test, trusted by fetch_image for this test only."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert_path, key_path = make_certificate(tmp_path, "images.example.test")

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda tls_socket, name, context: server_names.append(name)

    client_context = ssl.create_default_context(cafile=cert_path)
    monkeypatch.setattr(fetch, "_tls_context", lambda: client_context)

    httpd, thread = start_server(server_context)
    httpd.server_names = server_names
    yield httpd
    stop_server(httpd, thread)


def test_https_sni_uses_original_host(tls_server, monkeypatch):
    fake_resolver(monkeypatch, {"images.example.test": ["127.0.0.1"]})
    url = tls_server.url("/cover.png", host="images.example.test")

    result = fetch_image(url, allowed_hosts=["images.example.test"])

    assert result.image_format == "PNG"
    assert tls_server.server_names == ["images.example.test"]
    _, headers = tls_server.requests[0]
    assert headers["Host"] == f"images.example.test:{tls_server.server_port}"


def test_https_wrong_certificate_rejected(tls_server, monkeypatch):
    fake_resolver(monkeypatch, {"other.example.test": ["127.0.0.1"]})
    url = tls_server.url("/cover.png", host="other.example.test")

    with pytest.raises(FetchError, match="certificate verification failed"):
        fetch_image(url, allowed_hosts=["other.example.test"])

    assert tls_server.requests == []


# --- Sniffing ----------------------------------------------------------------


def iso_media_header(major: bytes, *compatible: bytes) -> bytes:
    size = 16 + 4 * len(compatible)
    return size.to_bytes(4, "big") + b"ftyp" + major + bytes(4) + b"".join(compatible) + bytes(16)


IMAGE_SAMPLES = [
    ("JPEG", JPEG_BYTES),
    ("PNG", PNG_BYTES),
    ("GIF", encode_image("GIF")),
    ("TIFF", encode_image("TIFF")),
    ("TIFF", b"MM\x00*" + bytes(16)),
    ("BMP", encode_image("BMP")),
    ("ICO", encode_image("ICO")),
    ("HEIF", iso_media_header(b"heic", b"mif1", b"heic")),
    ("HEIF", iso_media_header(b"mif1", b"mif1")),
    ("AVIF", iso_media_header(b"avif", b"mif1", b"avif")),
    ("AVIF", iso_media_header(b"mif1", b"avif")),
]
if features.check("webp"):
    IMAGE_SAMPLES.append(("WEBP", encode_image("WEBP")))
if features.check("avif"):
    IMAGE_SAMPLES.append(("AVIF", encode_image("AVIF")))


SAMPLE_IDS = [f"{name}-{index}" for index, (name, _) in enumerate(IMAGE_SAMPLES)]


@pytest.mark.parametrize(("expected", "data"), IMAGE_SAMPLES, ids=SAMPLE_IDS)
def test_sniff_recognises_image(expected, data):
    assert sniff_image_format(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HTML_PAGE,
        b'{"error": "not found"}',
        b"BMW M3 box art, see attached",
        iso_media_header(b"isom", b"mp41"),
        b"\x00\x00\x01\x00\x00\x00" + bytes(20),
        b"\xff\xd8",
    ],
)
def test_sniff_rejects_non_image(data):
    assert sniff_image_format(data) is None

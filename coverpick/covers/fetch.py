"""Fetch cover images from untrusted retailer feed URLs over HTTP and HTTPS.

Feed URLs can point anywhere, so every hop (the first request and each
redirect) is checked before any connection is made. The scheme must be http or
https. The host is resolved once, and each resolved address must be publicly
routable unless the host is allow-listed. The connection then goes to a checked
address itself, with the original host name in the Host header and the TLS SNI,
so a DNS answer that changes after the check (DNS rebinding) is never used.

The body is streamed under a size cap and a deadline for the whole fetch, and
it must start with the magic bytes of an image format.

Defaults come from environment variables, read on every call:

- COVERPICK_FETCH_ALLOWED_HOSTS: comma-separated hosts (``name``, ``name:port``,
  ``10.0.0.5`` or ``[::1]:8000``) that may resolve to non-public addresses.
- COVERPICK_FETCH_MAX_BYTES: maximum body size in bytes (default 20_000_000).
- COVERPICK_FETCH_CONNECT_TIMEOUT: seconds allowed for each TCP connect (default 5).
- COVERPICK_FETCH_TOTAL_TIMEOUT: seconds allowed for the whole fetch, redirects
  included (default 30).
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import quote, urljoin, urlsplit

logger = logging.getLogger(__name__)

USER_AGENT = "coverpick/0.1 (+cover image fetcher)"
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TOTAL_TIMEOUT = 30.0

ALLOWED_HOSTS_ENV = "COVERPICK_FETCH_ALLOWED_HOSTS"
MAX_BYTES_ENV = "COVERPICK_FETCH_MAX_BYTES"
CONNECT_TIMEOUT_ENV = "COVERPICK_FETCH_CONNECT_TIMEOUT"
TOTAL_TIMEOUT_ENV = "COVERPICK_FETCH_TOTAL_TIMEOUT"

DEFAULT_PORTS = {"http": 80, "https": 443}
READ_CHUNK_BYTES = 64 * 1024

# Characters that quote() leaves alone in a request target: RFC 3986's path
# characters (sub-delimiters, ":", "@", "/") plus "%", so existing
# percent-escapes are kept as they are. Queries may also contain "?".
_PATH_SAFE = "/%!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?"
# Characters that urlsplit accepts in a host but no host name or IP literal contains.
_INVALID_HOST_CHARACTERS = frozenset('<>"{}|\\^`')


class FetchError(OSError):
    """Failure to fetch an image. The message names the URL and what to do next.

    ``url`` is the URL of the hop that failed. ``status`` is the HTTP status
    of an unusable response, or None when no status applies.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class FetchResult:
    """Outcome of a fetch: the image bytes, or a 304 Not Modified response to a conditional request."""

    url: str
    """Final URL, after redirects."""
    content: bytes | None
    """Image bytes, or None when the server returned 304 Not Modified."""
    etag: str | None
    """ETag of the response. After a 304 without one, the ETag that was sent."""
    last_modified: str | None
    """Last-Modified of the response. After a 304 without one, the date that was sent."""
    not_modified: bool
    content_type: str | None
    """Content-Type header as sent by the server, which this module does not trust."""
    image_format: str
    """Format sniffed from the magic bytes ("JPEG", "PNG", ...), or "" after a 304."""


@dataclass(frozen=True)
class _Settings:
    allowed_hosts: frozenset[tuple[str, int | None]]
    max_bytes: int
    connect_timeout: float
    total_timeout: float


@dataclass(frozen=True)
class _Target:
    """One hop's URL, split into the parts needed to check it and send the request."""

    url: str
    scheme: str
    host: str
    """Host name or IP literal as in the URL, lower-case and without brackets."""
    port: int
    request_target: str
    """Percent-encoded path and query, without the fragment."""


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    headers: Message
    body: bytes | None
    """Body, read only for 2xx responses."""


def fetch_image(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    max_bytes: int | None = None,
    connect_timeout: float | None = None,
    total_timeout: float | None = None,
) -> FetchResult:
    """Fetch the image at ``url`` and return its bytes and validators.

    Pass the ``etag`` and ``last_modified`` of an earlier fetch to send
    If-None-Match and If-Modified-Since. A 304 response then returns
    ``not_modified=True`` and no content.

    Each keyword left as None takes its value from the environment variable
    named in the module docstring. An ``allowed_hosts`` list replaces the
    environment's list. It does not extend it.

    Raises FetchError when the URL, an address, a redirect, the status, the
    size, the deadline or the content rules the image out. Raises ValueError
    for an invalid setting, naming the variable or keyword.
    """
    settings = _resolve_settings(allowed_hosts, max_bytes, connect_timeout, total_timeout)
    deadline = time.monotonic() + settings.total_timeout

    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    conditional = bool(etag or last_modified)

    current_url = url
    first_url = None
    redirects = 0
    while True:
        target = _parse_url(current_url)
        first_url = first_url or target.url
        addresses = _resolve_checked_addresses(target, settings.allowed_hosts)
        response = _exchange(target, addresses, headers, settings, deadline)

        if response.status in REDIRECT_STATUSES:
            location = response.headers.get("Location")
            if not location:
                raise FetchError(
                    f"{target.url} returned HTTP {response.status} {response.reason} without a Location header. "
                    "Fix the image URL in the feed.",
                    url=target.url,
                    status=response.status,
                )
            if redirects == MAX_REDIRECTS:
                raise FetchError(
                    f"{first_url} redirected more than {MAX_REDIRECTS} times (last hop {target.url}). "
                    "Use the final image URL in the feed.",
                    url=target.url,
                    status=response.status,
                )
            redirects += 1
            current_url = urljoin(target.url, location)
            logger.debug("Following HTTP %s redirect from %s", response.status, target.url)
            continue

        return _build_result(target, response, etag, last_modified, conditional)


def _build_result(
    target: _Target,
    response: _Response,
    etag: str | None,
    last_modified: str | None,
    conditional: bool,
) -> FetchResult:
    """Turn the final hop's response into a FetchResult, or raise FetchError for an unusable one."""
    status = response.status
    if status == 304:
        if not conditional:
            raise FetchError(
                f"{target.url} returned HTTP 304 Not Modified to a request without If-None-Match "
                "or If-Modified-Since. The server is misconfigured, so retry later or report it to the retailer.",
                url=target.url,
                status=status,
            )
        return FetchResult(
            url=target.url,
            content=None,
            etag=response.headers.get("ETag") or etag,
            last_modified=response.headers.get("Last-Modified") or last_modified,
            not_modified=True,
            content_type=response.headers.get("Content-Type"),
            image_format="",
        )

    if not 200 <= status < 300:
        raise FetchError(
            f"{target.url} returned HTTP {status} {response.reason}. {_status_advice(status)}",
            url=target.url,
            status=status,
        )

    body = response.body if response.body is not None else b""
    content_type = response.headers.get("Content-Type")
    image_format = sniff_image_format(body)
    if image_format is None:
        declared = f" (Content-Type {content_type})" if content_type else ""
        raise FetchError(
            f"{target.url} did not return an image: {_describe_start(body)}{declared}. "
            "Check that the feed's image URL points to the image file, not to a web page.",
            url=target.url,
            status=status,
        )
    return FetchResult(
        url=target.url,
        content=body,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        not_modified=False,
        content_type=content_type,
        image_format=image_format,
    )


def _status_advice(status: int) -> str:
    if status in (404, 410):
        return "The image is gone, so get a current image URL from the retailer feed."
    if status in (401, 403):
        return "The server denied access, so check that the URL is a public image URL."
    if status == 429 or status >= 500:
        return "The server failed or is overloaded, so retry later."
    return "Check the image URL in the feed."


# --- Settings ---------------------------------------------------------------


def check_fetch_settings() -> None:
    """Raise conf.SettingError naming the first COVERPICK_FETCH_* variable set to a value fetching cannot use.

    The import calls this before its first row, so a bad value stops it once
    instead of refusing every row that has an image URL.
    """
    from coverpick.conf import SettingError

    try:
        _resolve_settings(None, None, None, None)
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _resolve_settings(
    allowed_hosts: Iterable[str] | None,
    max_bytes: int | None,
    connect_timeout: float | None,
    total_timeout: float | None,
) -> _Settings:
    if allowed_hosts is None:
        raw_hosts = os.environ.get(ALLOWED_HOSTS_ENV, "")
        entries = [entry for entry in raw_hosts.split(",") if entry.strip()]
        hosts = frozenset(_parse_allowed_host(entry, ALLOWED_HOSTS_ENV) for entry in entries)
    else:
        if isinstance(allowed_hosts, str):
            raise TypeError(
                f"allowed_hosts must be a list of hosts, not the string {allowed_hosts!r}. "
                "Wrap a single host in a list."
            )
        hosts = frozenset(_parse_allowed_host(entry, "allowed_hosts") for entry in allowed_hosts)

    if max_bytes is None:
        max_bytes = _int_from_env(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
    elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes={max_bytes!r} is invalid. Pass a positive number of bytes.")

    if connect_timeout is None:
        connect_timeout = _seconds_from_env(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT)
    else:
        connect_timeout = _check_seconds(connect_timeout, "connect_timeout")

    if total_timeout is None:
        total_timeout = _seconds_from_env(TOTAL_TIMEOUT_ENV, DEFAULT_TOTAL_TIMEOUT)
    else:
        total_timeout = _check_seconds(total_timeout, "total_timeout")

    return _Settings(hosts, max_bytes, connect_timeout, total_timeout)


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number. Set it to a byte count such as {default}.") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive. Set it to a byte count such as {default}.")
    return value


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number. Set it to seconds such as {default:g}.") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive, finite number of seconds such as {default:g}.")
    return value


def _check_seconds(value: float, keyword: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{keyword}={value!r} is invalid. Pass a positive, finite number of seconds.")
    return float(value)


def _parse_allowed_host(entry: str, source: str) -> tuple[str, int | None]:
    """Parse an allow-list entry (``host``, ``host:port``, ``[v6]`` or ``[v6]:port``) into (host key, port or None).

    A bare IPv6 literal without brackets is read as a host without a port.
    """
    text = entry.strip().lower()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{source}: {entry!r} is not a valid host. Write an IPv6 host as [::1] or [::1]:8000.")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text

    key = _host_key(host)
    if not key or any(char.isspace() or char in "/?#@[]" for char in key):
        raise ValueError(f"{source}: {entry!r} is not a valid host. Use a name or IP address, optionally with :port.")
    if port_text is None:
        return key, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{source}: {entry!r} has an invalid port. Use a number from 1 to 65535.")
    return key, int(port_text)


def _host_key(host: str) -> str:
    """Return the form of a host used to match the allow-list: lower-case, no trailing dot, IP literals canonical."""
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _is_allowed(target: _Target, allowed_hosts: frozenset[tuple[str, int | None]]) -> bool:
    key = _host_key(target.host)
    return (key, None) in allowed_hosts or (key, target.port) in allowed_hosts


# --- URL and address checks -------------------------------------------------


def _parse_url(url: str) -> _Target:
    """Split ``url`` and check its scheme, host and port, or raise FetchError.

    Credentials (``user:password@``) are dropped from the returned URL, so they
    are never sent and never appear in error messages.
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise FetchError(f"{url!r} contains control characters. Fix the image URL in the feed.", url=url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchError(f"{url!r} is not a valid URL ({error}). Fix the image URL in the feed.", url=url) from None

    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchError(
            f"{url!r}: scheme {scheme!r} is not allowed. Only http and https image URLs can be fetched.",
            url=url,
        )
    host = parts.hostname
    if not host:
        raise FetchError(f"{url!r} has no host. Fix the image URL in the feed.", url=url)
    if any(char.isspace() or char in _INVALID_HOST_CHARACTERS for char in host):
        raise FetchError(f"{url!r} has an invalid host {host!r}. Fix the image URL in the feed.", url=url)
    if port == 0:
        raise FetchError(f"{url!r} has port 0. Fix the image URL in the feed.", url=url)
    if "@" in parts.netloc:
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    request_target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return _Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        request_target=request_target,
    )


def _resolve_checked_addresses(target: _Target, allowed_hosts: frozenset[tuple[str, int | None]]) -> list[tuple]:
    """Resolve the host once and return its getaddrinfo entries, or raise FetchError if any address is not public.

    An allow-listed host skips the address check but is still resolved only here.
    """
    # AI_NUMERICHOST keeps IP literals away from DNS entirely.
    # NOTE: getaddrinfo cannot be interrupted, so a slow DNS lookup can run past
    # the total timeout. Only the system resolver's own timeout bounds it.
    flags = socket.AI_NUMERICHOST if _is_ip_literal(target.host) else 0
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, flags=flags)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(
            f"{target.url}: could not resolve host {target.host!r} ({error}). Check the host name in the feed.",
            url=target.url,
        ) from None
    if not infos:
        raise FetchError(f"{target.url}: host {target.host!r} resolved to no address.", url=target.url)

    if _is_allowed(target, allowed_hosts):
        return infos

    for info in infos:
        address = info[4][0]
        reason = _unsafe_address_reason(ipaddress.ip_address(address))
        if reason is not None:
            if _is_ip_literal(target.host):
                finding = f"{address} is {reason}"
            else:
                finding = f"host {target.host!r} resolves to {address}, {reason}"
            raise FetchError(
                f"{target.url}: {finding}, so it was not contacted. "
                f"Add {_allow_list_entry(target)} to {ALLOWED_HOSTS_ENV} only if this host is trusted.",
                url=target.url,
            )
    return infos


def _allow_list_entry(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _unsafe_address_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Return why ``address`` must not be contacted (for example "a private address"), or None if it is public.

    IPv4 addresses embedded in IPv4-mapped and 6to4 IPv6 addresses are checked
    as IPv4, because Python 3.11's ipaddress flags every IPv4-mapped address as
    reserved, whatever the IPv4 address is.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            reason = _unsafe_address_reason(embedded)
            return None if reason is None else f"{reason} inside an IPv6 address"

    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    # Reserved comes before private because Python 3.11 lists 240.0.0.0/4 as both.
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    # Catches what the flags above miss, such as 100.64.0.0/10 (carrier-grade NAT).
    if not address.is_global:
        return "an address that is not globally routable"
    return None


# --- One HTTP exchange ------------------------------------------------------


class _DeadlineWatchdog:
    """Timer that shuts a socket down when the fetch deadline passes.

    Per-call socket timeouts cannot stop a server that sends one byte just
    before each timeout. Shutting the socket down makes the blocked read return,
    whichever phase it is in (TLS handshake, headers or body). The watchdog
    shuts down a duplicate descriptor, which still works after the socket is
    wrapped for TLS.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._duplicate = sock.dup()
        self._lock = threading.Lock()
        self._closed = False
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.fired = True
            try:
                self._duplicate.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            self._duplicate.close()


def _exchange(
    target: _Target,
    addresses: list[tuple],
    headers: dict[str, str],
    settings: _Settings,
    deadline: float,
) -> _Response:
    """Send one GET to a checked address and return the response, reading the body only for a 2xx status."""
    sock = _connect(target, addresses, settings.connect_timeout, deadline)
    watchdog = _DeadlineWatchdog(sock, deadline - time.monotonic())
    connection = http.client.HTTPConnection(target.host, target.port)
    response = None
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        if target.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=target.host)
        connection.sock = sock
        connection.request("GET", target.request_target, headers={**headers, "Host": _host_header(target)})
        response = connection.getresponse()
        body = None
        if 200 <= response.status < 300:
            body = _read_body(target, response, settings.max_bytes)
        if watchdog.fired:
            raise _timeout_error(target, settings)
        # With a Content-Length, http.client reports an early end of the stream as
        # an empty read and leaves the missing byte count in response.length.
        if body is not None and response.length:
            raise FetchError(
                f"{target.url}: connection closed after {len(body)} bytes, "
                f"{response.length} bytes short of the Content-Length. Retry later.",
                url=target.url,
                status=response.status,
            )
        return _Response(response.status, response.reason, response.headers, body)
    except FetchError:
        raise
    except ssl.SSLCertVerificationError as error:
        raise FetchError(
            f"{target.url}: TLS certificate verification failed ({error.verify_message}). "
            "Use a URL whose server presents a valid certificate for its host.",
            url=target.url,
        ) from None
    except (OSError, http.client.HTTPException) as error:
        if watchdog.fired or isinstance(error, TimeoutError) or time.monotonic() >= deadline:
            raise _timeout_error(target, settings) from None
        raise FetchError(
            f"{target.url}: request failed ({type(error).__name__}: {error}). Retry later.",
            url=target.url,
        ) from None
    finally:
        watchdog.close()
        # With "Connection: close" the response owns the socket's file object, so it is closed separately.
        if response is not None:
            response.close()
        connection.close()
        sock.close()


def _connect(target: _Target, addresses: list[tuple], connect_timeout: float, deadline: float) -> socket.socket:
    """Open a TCP connection to the first reachable checked address, without resolving the host again."""
    errors = []
    for family, socktype, proto, _canonname, sockaddr in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(min(connect_timeout, remaining))
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            errors.append(f"{sockaddr[0]}: {error}")
            continue
        return sock

    if not errors:
        raise FetchError(
            f"{target.url}: timed out before connecting. Raise {TOTAL_TIMEOUT_ENV} if the server is slow.",
            url=target.url,
        )
    raise FetchError(
        f"{target.url}: could not connect to port {target.port} ({', '.join(errors)}). "
        f"Retry later, or raise {CONNECT_TIMEOUT_ENV} if connecting timed out.",
        url=target.url,
    )


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _host_header(target: _Target) -> str:
    """Return the Host header value: the URL's host, IDNA-encoded, with the port unless it is the scheme's default."""
    if ":" in target.host:
        host = f"[{target.host}]"
    else:
        try:
            host = target.host.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchError(f"{target.url}: host {target.host!r} is not a valid host name.", url=target.url) from None
    if target.port == DEFAULT_PORTS[target.scheme]:
        return host
    return f"{host}:{target.port}"


def _read_body(target: _Target, response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """Read the body in chunks and raise FetchError once it is larger than ``max_bytes``."""
    if response.length is not None and response.length > max_bytes:
        raise FetchError(
            f"{target.url}: Content-Length {response.length} bytes exceeds the maximum of {max_bytes} bytes. "
            f"Raise {MAX_BYTES_ENV} if covers this large are expected.",
            url=target.url,
            status=response.status,
        )

    body = bytearray()
    while True:
        # read1 makes at most one socket read, so a slow body cannot sit in one blocking call.
        chunk = response.read1(READ_CHUNK_BYTES)
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(
                f"{target.url}: body exceeds the maximum of {max_bytes} bytes. "
                f"Raise {MAX_BYTES_ENV} if covers this large are expected.",
                url=target.url,
                status=response.status,
            )

    return bytes(body)


def _timeout_error(target: _Target, settings: _Settings) -> FetchError:
    return FetchError(
        f"{target.url}: timed out after the total timeout of {settings.total_timeout:g} s. "
        f"Retry later, or raise {TOTAL_TIMEOUT_ENV} if the server is slow.",
        url=target.url,
    )


# --- Content sniffing -------------------------------------------------------

_BMP_INFO_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


def sniff_image_format(data: bytes) -> str | None:
    """Return the image format that the magic bytes at the start of ``data`` name, or None.

    Formats use Pillow's names: JPEG, PNG, GIF, WEBP, TIFF, BMP, AVIF, HEIF and ICO.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    # Little- and big-endian TIFF, then BigTIFF.
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    # "BM" alone also starts plain text, so the info-header size must be a known one too.
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_INFO_HEADER_SIZES:
        return "BMP"
    if data[4:8] == b"ftyp":
        return _sniff_iso_media_brand(data)
    # An ICO header with at least one entry, whose reserved byte is zero.
    if data[:4] == b"\x00\x00\x01\x00" and len(data) >= 22 and data[4:6] != b"\x00\x00" and data[9] == 0:
        return "ICO"
    return None


def _sniff_iso_media_brand(data: bytes) -> str | None:
    """Return AVIF or HEIF from the brands of an ISO media file's leading ftyp box, or None for other brands."""
    box_size = int.from_bytes(data[0:4], "big")
    brands = {data[8:12]}
    # Compatible brands follow the major brand and its 4-byte minor version.
    for offset in range(16, min(box_size, len(data)) - 3, 4):
        brands.add(data[offset : offset + 4])
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def _describe_start(data: bytes) -> str:
    """Describe the first bytes of a body for an error message, as text when they are printable."""
    if not data:
        return "the body is empty"
    start = data[:14]
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in start):
        return f"the body starts with {start.decode('ascii')!r}"
    return f"the body starts with the bytes {start.hex(' ')}"

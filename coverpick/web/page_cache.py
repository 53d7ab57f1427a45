"""A shared cache of the public catalogue pages as anonymous visitors see them.

Rendering a game page takes tens of milliseconds, most of it Django building
the ranking query's SQL. A cached page costs one small SQL query and one file
read. The cache is the "pages" alias in settings.CACHES, a folder under
COVERPICK_HOME that every gunicorn worker, the tick and the CLI share.

An entry is stored under the request path. It contains the page, the
catalogue generation it was rendered at (coverpick.catalogue.generation) and
a hash of this code. A request is served from the entry only when both
still match, so any committed write to the catalogue, by any process, and any
code change make the entry stale at once. The stale entry is then rendered
again and overwritten, so the cache holds at most one entry per page.

Only anonymous requests without a session or messages cookie read or write
the cache. Staff always carry a session cookie, so they never receive the
shared copy, and a page rendered for them (with pin controls and a CSRF
token) is never stored. A rendered page is stored only when it set no cookie,
used no CSRF token, changed no session and touched no messages.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pickle
import random
import re
import time
import zlib
from pathlib import Path

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.http import HttpResponse

from coverpick.catalogue.generation import current_generation

logger = logging.getLogger(__name__)

PAGE_CACHE_ALIAS = "pages"
# Entries are checked against the generation on every read, so the timeout
# only removes pages that are no longer requested (deleted games).
PAGE_TIMEOUT_S = 24 * 3600
PACKAGE_DIR = Path(__file__).resolve().parents[1]
CODE_SUFFIXES = (".py", ".html", ".css", ".js")
# A broken cache folder (full disk, unreadable file) turns into rendered
# pages, and one warning per process per this many seconds.
WARNING_INTERVAL_S = 60.0
_last_warning = 0.0


class PageFileCache(FileBasedCache):
    """FileBasedCache that checks whether to cull on one write in ``CULL_CHECK_EVERY``, not on every write.

    Django's FileBasedCache (5.2) lists its whole folder on every set() to
    count entries. With one entry per game page that listing cost 9 ms per
    write at 2,000 entries and 36 ms at 6,000 (measured on the 2-core
    benchmark VM), more than rendering the page. Checking on a random one in
    ``CULL_CHECK_EVERY`` writes lets the folder exceed MAX_ENTRIES by at most
    about that many entries before a cull.
    """

    CULL_CHECK_EVERY = 100

    def _cull(self):
        if random.randrange(self.CULL_CHECK_EVERY) == 0:
            super()._cull()


@functools.cache
def code_version() -> str:
    """Return a hash of coverpick's Python files, templates and assets, computed once per process.

    A cached page is rendered by this code, so a deployment that changes any
    of these files must not serve pages rendered by the previous code.
    """
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in CODE_SUFFIXES and path.is_file():
            digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _has_state_cookie(request) -> bool:
    cookies = request.COOKIES
    return settings.SESSION_COOKIE_NAME in cookies or CookieStorage.cookie_name in cookies


def _may_use_cache(request) -> bool:
    """Say whether a request may receive the shared copy: a GET without a session or messages cookie."""
    return request.method == "GET" and not _has_state_cookie(request)


def _cache_key(request) -> str:
    return "coverpick:page:" + hashlib.sha256(request.get_full_path().encode()).hexdigest()


def anonymous_page_cache(query_pattern: str | None = None):
    """Mark a GET view's pages for anonymous visitors as shareable through PageCacheMiddleware.

    The view itself never reads the cache, because PageCacheMiddleware
    serves stored pages before the request reaches it. For a request that
    may use the cache, the wrapper reads the catalogue generation before the
    view reads any data and tags the rendered response with it. The stored
    page is therefore at least as new as the generation it is stored under.

    ``query_pattern`` is a regular expression that the whole query string
    must match for the page to be stored. Without one, only requests with no
    query string are. Keeping the set of stored URLs small bounds the cache
    to one entry per page.
    """
    pattern = re.compile(query_pattern) if query_pattern else None

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            query = request.META.get("QUERY_STRING", "")
            query_allowed = not query or (pattern is not None and pattern.fullmatch(query))
            # Without a session cookie the user is anonymous. The user check
            # guards against an authentication backend that needs no session.
            if not (query_allowed and _may_use_cache(request)) or request.user.is_authenticated:
                return view(request, *args, **kwargs)
            generation = current_generation()
            response = view(request, *args, **kwargs)
            if generation is not None and _view_left_no_state(request):
                response.coverpick_page_validity = (code_version(), generation)
            return response

        return wrapper

    return decorator


def _view_left_no_state(request) -> bool:
    """Say whether rendering used nothing specific to this visitor: no CSRF token, session change or message."""
    # get_token() sets this flag when the page contains a CSRF token.
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return False
    session = getattr(request, "session", None)
    if session is not None and session.modified:
        return False
    messages = getattr(request, "_messages", None)
    return messages is None or not (messages.used or messages.added_new)


def _warn(message: str, *args) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARNING_INTERVAL_S:
        _last_warning = now
        logger.warning(message, *args)


def _read_entry(key: str):
    try:
        return caches[PAGE_CACHE_ALIAS].get(key)
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError) as exc:
        _warn("Page cache entry %s could not be read, so the page is rendered: %s", key, exc)
        return None


def _store_entry(key: str, entry) -> None:
    try:
        caches[PAGE_CACHE_ALIAS].set(key, entry, timeout=PAGE_TIMEOUT_S)
    except OSError as exc:
        _warn("Page cache entry %s could not be written: %s", key, exc)


class PageCacheMiddleware:
    """Serve stored anonymous pages, and store the pages that ``anonymous_page_cache`` views tag.

    It belongs right after SecurityMiddleware, so a stored page skips the
    session, CSRF, authentication and messages middleware, URL resolution
    and the view. Served from the view instead, a stored game page took
    0.30 ms of CPU per request in-process; served here it takes 0.15 ms
    (a loop over the WSGI handler on the 2-core benchmark VM).
    SecurityMiddleware still runs on every response. A page is
    stored with the headers that the inner middleware gave it (Vary,
    X-Frame-Options) and only when the response sets no cookie.

    NOTE: serving a stored page without loading the user relies on
    session-based login, the only kind coverpick configures. A backend that
    authenticates requests without a session cookie (RemoteUserMiddleware,
    HTTP auth) would get the anonymous copy; its own pages are never stored.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _may_use_cache(request):
            return self.get_response(request)
        # Reject a disallowed Host header before serving anything, as
        # CommonMiddleware would.
        request.get_host()
        key = _cache_key(request)
        entry = _read_entry(key)
        if entry is not None:
            validity, headers, body = entry
            generation = current_generation()
            if generation is not None and validity == (code_version(), generation):
                response = HttpResponse(body)
                for name, value in headers:
                    response[name] = value
                return response
        response = self.get_response(request)
        validity = getattr(response, "coverpick_page_validity", None)
        if validity is not None and response.status_code == 200 and not response.streaming and not response.cookies:
            _store_entry(key, (validity, list(response.items()), response.content))
        return response

"""Login throttling: at most ``MAX_FAILURES`` failed logins per username and client address per window.

Counters live in Django's default cache. With a per-process cache (the
default LocMemCache) each gunicorn worker counts on its own, so the settings
point the default cache at a folder that all workers share.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW_S = 5 * 60


def _key(username: str, address: str) -> str:
    # Hashed, so arbitrary usernames make valid cache keys of a fixed length.
    digest = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()
    return f"coverpick:login-failures:{digest}"


def client_address(request) -> str:
    """Return the peer address of the request.

    NOTE: behind a reverse proxy every request comes from the proxy's address,
    so the limit then applies per username only.
    """
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def is_locked(username: str, address: str) -> bool:
    return cache.get(_key(username, address), 0) >= MAX_FAILURES


def record_failure(username: str, address: str) -> int:
    """Count one failed login and return the failures in the current window.

    The window starts at the first failure and is not extended by later ones.
    NOTE: the file-based cache does not increment atomically, so two workers
    failing at the same moment can count once, which allows a few extra attempts.
    """
    key = _key(username, address)
    if cache.add(key, 1, timeout=WINDOW_S):
        failures = 1
    else:
        try:
            failures = cache.incr(key)
        except ValueError:
            # The entry expired between add() and incr(), so a new window starts.
            cache.set(key, 1, timeout=WINDOW_S)
            failures = 1
    if failures >= MAX_FAILURES:
        logger.warning("Login locked after %s failures: username=%r address=%s", failures, username, address)
    return failures


def clear_failures(username: str, address: str) -> None:
    cache.delete(_key(username, address))

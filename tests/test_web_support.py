"""Builders and fixtures shared by the web tests. The module contains no tests itself."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from PIL import Image

from coverpick.catalogue.models import AuditEvent, Verdict
from coverpick.covers.store import store_image

PASSWORD = "correct horse battery staple"


def make_user(username: str, *, staff: bool, password: str | None = None):
    """Create a user. Without a password the account cannot log in by form, but creating it skips slow hashing."""
    return get_user_model().objects.create_user(username=username, password=password, is_staff=staff)


def png_bytes(width: int = 60, height: int = 80, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def attach_real_image(listing, width: int = 60, height: int = 80, colour=(200, 30, 30)):
    """Replace a factory listing's fake cover row with a real PNG in the image store."""
    cover = store_image(png_bytes(width, height, colour))
    listing.cover = cover
    listing.save(update_fields=["cover"])
    return cover


def row_counts() -> tuple[int, int]:
    return Verdict.objects.count(), AuditEvent.objects.count()


@pytest.fixture(autouse=True)
def _clear_cache():
    # The login limit counts failures in the shared cache, so each test starts with an empty one.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff_user(db):
    return make_user("staffer", staff=True)


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def member_client(db):
    client = Client()
    client.force_login(make_user("member", staff=False))
    return client

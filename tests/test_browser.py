"""End-to-end tests in headless Chromium against a live server.

The main test imports the sample catalogue, trains and activates heads,
sweeps and ranks inside the test, because the live server needs a
transactional database, which the session-wide ``trained_sample`` fixture
cannot share. Screenshots of every page go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Q

from coverpick.catalogue.models import AuditEvent, Game, Verdict
from coverpick.web.labelling import CLASS_KEYS
from tests.conftest import ARTIFACTS
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import attach_real_image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STAFF_NAME = "browser-staff"
STAFF_PASSWORD = "browser staff password 1"
KEY_FOR = CLASS_KEYS
CLASS_FOR_KEY = {key: name for name, key in CLASS_KEYS.items()}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not installed at {CHROMIUM}; browser tests need it"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in the test thread
    # while it is started, and Django refuses ORM calls from a thread with a
    # running loop unless this is set. It is set only while Playwright runs,
    # which covers the database flush after each test too.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def empty_db(transactional_db):
    """Start from an empty database, because session fixtures may have committed rows before this test."""
    call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def staff(empty_db):
    return get_user_model().objects.create_user(STAFF_NAME, password=STAFF_PASSWORD, is_staff=True)


@pytest.fixture
def trained_site(staff, sample_text_cached):
    """The sample catalogue imported, heads trained and activated, verdicts swept and primaries ranked."""
    from coverpick.catalogue.importer import import_catalogue
    from coverpick.model.sweep import sweep
    from coverpick.ranking import compute_primaries
    from tests.conftest import activate_checkpoint_or_train

    import_catalogue(sample_text_cached)
    version = activate_checkpoint_or_train()
    sweep(apply=True)
    compute_primaries()
    return version


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def images_loaded(page) -> bool:
    return page.evaluate("Array.from(document.images).every((image) => image.complete && image.naturalWidth > 0)")


def log_in(page, base_url: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", STAFF_NAME)
    page.fill("#id_password", STAFF_PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")


def shown_listing(page) -> int:
    return int(page.locator(".label-item").get_attribute("data-listing"))


def manual_labels(listing_id: int):
    row = Verdict.objects.filter(listing_id=listing_id, source=Verdict.SOURCE_MANUAL_TRAIN).first()
    return row.labels if row else None


def row_counts() -> tuple[int, int]:
    return Verdict.objects.count(), AuditEvent.objects.count()


# The full staff session on the sample catalogue ------------------------------------------

# Ten label sets typed as keys, each valid under the exclusivity rules.
TEN_DECISIONS = [["1"], ["2"], ["w"], ["1", "9"], ["q"], ["4"], ["7", "8"], ["5"], ["r"], ["6"]]


def label_ten_by_keyboard(page) -> list[int]:
    labelled = []
    for keys in TEN_DECISIONS:
        listing_id = shown_listing(page)
        assert listing_id not in labelled, f"listing {listing_id} was served twice"
        for key in keys:
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expected = sorted((CLASS_FOR_KEY[key] for key in keys), key=list(CLASS_KEYS).index)
        assert manual_labels(listing_id) == expected, f"labels of listing {listing_id}"
        labelled.append(listing_id)
    return labelled


def test_staff_session_end_to_end(page, live_server, trained_site):
    base = live_server.url

    # Public catalogue.
    page.goto(f"{base}/")
    assert page.locator(".game-card").count() == 24
    screenshot(page, "catalogue-home")
    assert images_loaded(page), "a thumbnail on the game list did not load"

    # Staff pages send an anonymous visitor to the login page first.
    page.goto(f"{base}/admin/label/covers/")
    assert "/accounts/login/" in page.url
    screenshot(page, "login")
    log_in(page, base, "/admin/label/covers/")
    assert page.url.endswith("/admin/label/covers/")

    # Counter before any decision: "1 of N", where N is the whole queue.
    counter = page.locator("#counter strong").inner_text()
    match = re.fullmatch(r"1 of (\d+)", counter)
    assert match, f"counter reads {counter!r}"
    queue_total = int(match.group(1))
    assert queue_total >= 12
    screenshot(page, "label-queue")
    assert images_loaded(page), "the cover or a sibling thumbnail did not load"

    # Ten covers labelled by keyboard alone.
    labelled = label_ten_by_keyboard(page)
    assert page.locator("#counter strong").inner_text() == f"11 of {queue_total}"
    screenshot(page, "label-after-ten")

    # "u" undoes the last saved decision and shows that cover again.
    last = labelled[-1]
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.url.endswith(f"?listing={last}")
    assert shown_listing(page) == last
    assert manual_labels(last) is None
    assert manual_labels(labelled[-2]) is not None
    screenshot(page, "label-after-undo")

    # "s" skips: no row is written and the cover leaves this session's queue.
    page.goto(f"{base}/admin/label/covers/")
    skipped = shown_listing(page)
    before = row_counts()
    with page.expect_navigation():
        page.keyboard.press("s")
    assert row_counts() == before
    assert manual_labels(skipped) is None
    assert shown_listing(page) != skipped
    assert "skipped this session: 1" in page.locator("#counter").inner_text()

    # The grid of confident clean covers.
    page.goto(f"{base}/admin/label/covers/grid/")
    screenshot(page, "label-grid")

    # The cover picker: make a lower-ranked candidate the primary cover.
    usable = Count("editions__listings", filter=Q(editions__listings__cover__decode_error__isnull=True))
    game = Game.objects.filter(primary_listing__isnull=False).annotate(usable=usable).filter(usable__gte=3).order_by("pk").first()
    assert game is not None, "no game with three usable covers in the sample catalogue"
    page.goto(f"{base}/games/{game.pk}/")
    primary_before = int(page.locator("#primary-cover").get_attribute("data-listing"))
    screenshot(page, "game-before-pin")
    button = page.locator(f".pin-button:not([data-listing='{primary_before}'])").last
    chosen = int(button.get_attribute("data-listing"))
    with page.expect_navigation():
        button.click()
    assert int(page.locator("#primary-cover").get_attribute("data-listing")) == chosen
    assert page.locator(f"#listing-{chosen} .badge.pin").count() == 1
    game.refresh_from_db()
    assert game.primary_listing_id == chosen
    assert AuditEvent.objects.filter(action="pin", listing_id=chosen, user__username=STAFF_NAME).exists()
    screenshot(page, "game-after-pin")

    # Reports: both charts load and the active version is named.
    page.goto(f"{base}/reports/")
    assert trained_site.name in page.inner_text("main")
    page.wait_for_function("Array.from(document.images).every((image) => image.complete)")
    assert images_loaded(page), "a report chart did not load"
    screenshot(page, "reports")


# Smaller browser checks on rows the test creates --------------------------------------------


@pytest.fixture
def one_queued_cover(staff):
    game, (edition,) = make_game("Browser Rules")
    version = heads_version()
    listing = make_listing(edition)
    attach_real_image(listing, 300, 400)
    predict(listing, version, "unknown", confidence=0.2)
    return listing


def checked_labels(page) -> list[str]:
    return page.eval_on_selector_all("input[name=labels]:checked", "boxes => boxes.map((box) => box.value)")


def test_label_page_enforces_exclusivity(page, live_server, one_queued_cover):
    log_in(page, live_server.url, "/admin/label/covers/")
    press = page.keyboard.press

    press(KEY_FOR["clean"])
    press(KEY_FOR["margins"])
    assert checked_labels(page) == ["margins"]
    assert "'margins' is a defect" in page.inner_text("#rule-note")

    press(KEY_FOR["clean"])
    assert checked_labels(page) == ["clean"]

    press(KEY_FOR["gkc"])
    press(KEY_FOR["ciab"])
    assert checked_labels(page) == ["clean", "ciab"]

    press(KEY_FOR["wrong_game"])
    assert checked_labels(page) == ["wrong_game"]

    press(KEY_FOR["unclear"])
    assert checked_labels(page) == ["unclear"]

    press(KEY_FOR["unclear"])
    assert checked_labels(page) == []
    before = row_counts()
    press("Enter")
    assert "Pick at least one label" in page.inner_text("#rule-note")
    assert row_counts() == before
    screenshot(page, "label-rules")


def test_undo_with_nothing_saved_writes_nothing(page, live_server, one_queued_cover):
    log_in(page, live_server.url, "/admin/label/covers/")
    before = row_counts()
    page.keyboard.press("u")
    assert "Nothing to undo" in page.inner_text("#rule-note")
    assert row_counts() == before


def test_member_sees_forbidden_page(page, live_server, empty_db):
    get_user_model().objects.create_user("browser-member", password=STAFF_PASSWORD)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "browser-member")
    page.fill("#id_password", STAFF_PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    response = page.goto(f"{live_server.url}/admin/label/covers/")
    assert response.status == 403
    assert "for staff accounts only" in page.inner_text("main")
    screenshot(page, "forbidden")


def test_login_limit_message(page, live_server, staff):
    from django.core.cache import cache

    cache.clear()
    for _ in range(5):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", STAFF_NAME)
        page.fill("#id_password", "wrong password")
        with page.expect_navigation():
            page.click("form button[type=submit]")
    page.fill("#id_username", STAFF_NAME)
    page.fill("#id_password", STAFF_PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "Too many failed logins" in page.inner_text("main")
    screenshot(page, "login-locked")
    cache.clear()


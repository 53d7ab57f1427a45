"""Permission rules: anonymous users are sent to log in, non-staff get 403, and neither writes anything."""

import logging

import pytest
from django.test import Client

from coverpick.catalogue.manual import pin_cover
from coverpick.catalogue.models import AuditEvent, Game, Verdict
from coverpick.ranking import compute_primaries
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import (  # noqa: F401
    _clear_cache,
    member_client,
    row_counts,
    staff_client,
    staff_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene():
    game, (edition,) = make_game()
    version = heads_version()
    best = make_listing(edition, "shop-a", preference=0)
    other = make_listing(edition, "shop-b", preference=5)
    predict(best, version, "clean", confidence=0.95)
    predict(other, version, "unknown", confidence=0.2)
    compute_primaries(Game.objects.filter(pk=game.pk))
    return {"game": game, "best": best, "other": other}


def write_requests(scene):
    game, other = scene["game"], scene["other"]
    return [
        (f"/games/{game.pk}/pin/", {"listing": other.pk}),
        (f"/games/{game.pk}/unpin/", {}),
        ("/admin/label/covers/save/", {"listing": other.pk, "labels": ["clean"]}),
        ("/admin/label/covers/skip/", {"listing": other.pk}),
        ("/admin/label/covers/undo/", {}),
        ("/admin/label/covers/grid/", {"shown": [other.pk], "confirm": [other.pk]}),
    ]


STAFF_PAGES = [
    "/admin/label/covers/",
    "/admin/label/covers/grid/",
    "/reports/",
    "/reports/recall.png",
    "/reports/verdicts.png",
]


def test_anonymous_posts_redirect_and_write_nothing(scene):
    pin_cover(scene["best"])  # something for unpin to remove
    client = Client()
    for url, data in write_requests(scene):
        before = row_counts()
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
        assert row_counts() == before, url


def test_member_posts_forbidden_and_write_nothing(scene, member_client):
    pin_cover(scene["best"])
    for url, data in write_requests(scene):
        before = row_counts()
        response = member_client.post(url, data)
        assert response.status_code == 403, url
        assert row_counts() == before, url


def test_member_skip_leaves_session_alone(scene, member_client):
    member_client.post("/admin/label/covers/skip/", {"listing": scene["other"].pk})
    assert "label_skipped" not in member_client.session


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_anonymous_staff_page_redirects(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_member_staff_page_forbidden(url, member_client):
    response = member_client.get(url)
    assert response.status_code == 403
    assert b"for staff accounts only" in response.content


def test_inactive_staff_forbidden(staff_user):
    staff_user.is_active = False
    staff_user.save()
    client = Client()
    client.force_login(staff_user)
    # An inactive user's session no longer authenticates, so this is a login redirect.
    assert client.get("/reports/").status_code == 302


def test_post_without_csrf_token_rejected(scene, staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    for url, data in write_requests(scene):
        before = row_counts()
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert row_counts() == before, url


def test_post_with_csrf_token_accepted(scene, staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    page = client.get(f"/games/{scene['game'].pk}/")
    token = page.context["csrf_token"]
    response = client.post(
        f"/games/{scene['game'].pk}/pin/", {"listing": scene["other"].pk, "csrfmiddlewaretoken": str(token)}
    )
    assert response.status_code == 302
    assert Verdict.objects.filter(listing=scene["other"], source="manual-pin", quality="clean").exists()


def test_write_endpoints_reject_get(staff_client, scene):
    for url in (f"/games/{scene['game'].pk}/pin/", f"/games/{scene['game'].pk}/unpin/", "/admin/label/covers/save/"):
        assert staff_client.get(url).status_code == 405, url


# Cover picker -------------------------------------------------------------------


def test_pin_makes_candidate_primary(staff_client, staff_user, scene, caplog):
    game, other = scene["game"], scene["other"]
    caplog.set_level(logging.INFO, logger="coverpick")
    response = staff_client.post(f"/games/{game.pk}/pin/", {"listing": other.pk}, follow=True)
    assert response.status_code == 200
    game.refresh_from_db()
    assert game.primary_listing_id == other.pk
    assert game.primary_tier == -1
    assert response.context["primary"].listing.pk == other.pk
    event = AuditEvent.objects.get(action="pin")
    assert event.user == staff_user
    assert event.listing_id == other.pk
    assert f"game={game.pk} listing={other.pk} by=staffer" in caplog.text


def test_pin_page_shows_new_primary(staff_client, scene):
    game, other = scene["game"], scene["other"]
    body = staff_client.post(f"/games/{game.pk}/pin/", {"listing": other.pk}, follow=True).content.decode()
    assert f'id="primary-cover" class="large" src="/covers/{other.cover.sha256}/"' in body
    assert "is now the primary cover" in body
    assert "Remove pin" in body


def test_unpin_restores_ranking(staff_client, staff_user, scene, caplog):
    game = scene["game"]
    staff_client.post(f"/games/{game.pk}/pin/", {"listing": scene["other"].pk})
    caplog.set_level(logging.INFO, logger="coverpick")
    response = staff_client.post(f"/games/{game.pk}/unpin/", follow=True)
    assert response.status_code == 200
    game.refresh_from_db()
    assert game.primary_listing_id == scene["best"].pk
    assert not Verdict.objects.filter(listing__edition__game=game, source="manual-pin").exists()
    event = AuditEvent.objects.get(action="unpin")
    assert event.user == staff_user
    assert f"game={game.pk}" in caplog.text
    assert "Pin removed" in response.content.decode()


def test_unpin_without_pin_says_so(staff_client, scene):
    response = staff_client.post(f"/games/{scene['game'].pk}/unpin/", follow=True)
    assert "This game had no pin." in response.content.decode()


def test_pin_listing_of_other_game_rejected(staff_client, scene):
    stranger_game, (edition,) = make_game("Stranger")
    stranger = make_listing(edition)
    before = row_counts()
    response = staff_client.post(f"/games/{scene['game'].pk}/pin/", {"listing": stranger.pk})
    assert response.status_code == 400
    assert b"is not a candidate cover of game" in response.content
    assert row_counts() == before


def test_pin_without_listing_rejected(staff_client, scene):
    before = row_counts()
    response = staff_client.post(f"/games/{scene['game'].pk}/pin/", {"listing": "abc"})
    assert response.status_code == 400
    assert row_counts() == before


def test_pin_unknown_game_is_404(staff_client, scene):
    response = staff_client.post("/games/999999/pin/", {"listing": scene["other"].pk})
    assert response.status_code == 404

import io
from decimal import Decimal

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from coverpick import conf
from coverpick.catalogue.manual import set_labels
from coverpick.catalogue.models import CoverImage, Game
from coverpick.covers.decode import decode_image
from coverpick.covers.store import store_image
from coverpick.ranking import compute_primaries, ranked_covers
from coverpick.web.explain import order_reason
from coverpick.web.views.files import asset_version
from tests.conftest import HOSTILE_IMAGES
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, attach_real_image, png_bytes, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db


def priced(listing, price, currency, in_stock=True, url="https://shop.example/item"):
    listing.price = Decimal(price)
    listing.currency = currency
    listing.in_stock = in_stock
    listing.url = url
    listing.save()
    return listing


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def ranked_game():
    """A game with a clean cover, a 3D render and a cover the platform head puts on another console."""
    game, (edition,) = make_game("Space Quest", platforms=(("ps4", "sony"),))
    version = heads_version()
    clean = make_listing(edition, "shop-a", preference=0, width=900, height=1200)
    render = make_listing(edition, "shop-b", preference=5)
    mismatch = make_listing(edition, "shop-c", preference=1)
    predict(clean, version, "clean", platform="sony", confidence=0.93)
    predict(render, version, "3d_render", platform="sony", confidence=0.71)
    predict(mismatch, version, "clean", platform="nintendo", confidence=0.88)
    clean.cover.stats = [0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0, 0.0, 6.03, 2.5]
    clean.cover.save()
    priced(clean, "39.99", "EUR")
    priced(render, "34.50", "EUR", in_stock=None)
    priced(mismatch, "29.00", "EUR", in_stock=False)
    unrated = priced(make_listing(edition, "shop-d"), "31.00", "GBP")
    compute_primaries(Game.objects.filter(pk=game.pk))
    game.refresh_from_db()
    return {"game": game, "clean": clean, "render": render, "mismatch": mismatch, "unrated": unrated}


# Game list ---------------------------------------------------------------------


def test_game_list_shows_title_platform_price(client, ranked_game):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert ranked_game["game"].title in body
    assert "ps4" in body
    # Lowest not-out-of-stock EUR price: the 34.50 listing with unknown stock, not the 29.00 out-of-stock one.
    assert "€34.50" in body
    assert "€29.00" not in body
    assert "£31.00" in body


def test_game_list_shows_primary_thumbnail(client, ranked_game):
    body = client.get("/").content.decode()
    primary_cover = ranked_game["game"].primary_listing.cover
    assert f"/covers/{primary_cover.sha256}/" in body


def listed_game(title: str):
    """Make a game with one listing: the game list leaves out games without listings."""
    game, (edition,) = make_game(title)
    make_listing(edition)
    return game


def test_game_list_search_filters_titles(client):
    listed_game("Zelda Adventure")
    listed_game("Mario Kart")
    body = client.get("/", {"q": "zeld"}).content.decode()
    assert "Zelda Adventure" in body
    assert "Mario Kart" not in body


def test_game_list_pages(client):
    for index in range(30):
        listed_game(f"Paged {index:02d}")
    first = client.get("/").content.decode()
    second = client.get("/", {"page": 2}).content.decode()
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second
    assert first.count('class="game-card"') == 24
    assert second.count('class="game-card"') == 6


def test_game_list_leaves_out_games_without_listings(client):
    listed_game("Listed Game")
    make_game("Unlisted Game")
    body = client.get("/").content.decode()
    assert "Listed Game" in body
    assert "Unlisted Game" not in body
    assert "1 game" in body


def test_game_list_bad_page_number_shows_last_page(client):
    listed_game("Only One")
    response = client.get("/", {"page": "999"})
    assert response.status_code == 200
    assert "Only One" in response.content.decode()


def test_game_list_query_count_is_bounded(client, django_assert_max_num_queries):
    for index in range(24):
        game, (edition,) = make_game(f"Bounded {index}")
        for shop in ("shop-a", "shop-b"):
            priced(make_listing(edition, shop), "10.00", "EUR")
    compute_primaries()
    with django_assert_max_num_queries(5):
        response = client.get("/")
    assert response.status_code == 200


# Game page ---------------------------------------------------------------------


def test_game_page_shows_primary_and_best_prices(client, ranked_game):
    game = ranked_game["game"]
    response = client.get(f"/games/{game.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-listing="{ranked_game["clean"].pk}"' in body
    assert "€34.50" in body
    assert "£31.00" in body
    assert "(stock not reported)" in body
    assert 'href="https://shop.example/item"' in body


def test_unranked_game_shows_best_candidate(client):
    game, (edition,) = make_game("Fresh Import")
    version = heads_version()
    render = make_listing(edition, "shop-a", preference=0)
    clean = make_listing(edition, "shop-b", preference=1)
    predict(render, version, "3d_render", platform="sony", confidence=0.9)
    predict(clean, version, "clean", platform="sony", confidence=0.9)
    assert Game.objects.get(pk=game.pk).primary_computed_at is None

    body = client.get(f"/games/{game.pk}/").content.decode()
    assert f'id="primary-cover" class="large" src="/covers/' in body
    assert f'data-listing="{clean.pk}"' in body.split('id="primary-cover"', 1)[1].split(">", 1)[0]
    assert "Cover not chosen yet" in client.get("/").content.decode()

    compute_primaries(Game.objects.filter(pk=game.pk))
    assert "Cover not chosen yet" not in client.get("/").content.decode()


def test_zero_price_is_no_offer(client):
    game, (edition,) = make_game()
    priced(make_listing(edition), "0.00", "GBP")
    priced(make_listing(edition), "19.99", "GBP")
    body = client.get(f"/games/{game.pk}/").content.decode()
    best = body[body.index("<h2>Best price</h2>") : body.index("</table>")]
    assert "£19.99" in best
    assert "£0.00" not in best
    # The candidate list still shows the price the feed sent.
    assert "£0.00" in body
    listing_page = client.get("/").content.decode()
    assert "£19.99" in listing_page
    assert "£0.00" not in listing_page


def test_game_page_drops_non_http_shop_link(client):
    game, (edition,) = make_game()
    priced(make_listing(edition), "9.99", "EUR", url="javascript:alert(1)")
    body = client.get(f"/games/{game.pk}/").content.decode()
    assert "€9.99" in body
    assert "javascript:" not in body


def test_game_page_lists_candidates_in_rank_order(client, ranked_game):
    response = client.get(f"/games/{ranked_game['game'].pk}/")
    candidates = response.context["candidates"]
    order = [candidate.listing.pk for candidate in candidates]
    expected = [ranked_game[name].pk for name in ("clean", "render", "unrated", "mismatch")]
    assert order == expected
    assert [candidate.listing.tier for candidate in candidates] == [0, 1, 4, 6]


def test_game_page_explains_each_rank(client, ranked_game):
    body = client.get(f"/games/{ranked_game['game'].pk}/").content.decode()
    assert "Verdict clean (classifier) puts it in tier 0" in body
    assert "Below the cover above because it is among other usable covers, which rank after covers judged clean" in body
    assert "Declared platform family is sony, but a classifier reads nintendo" in body
    assert "platform mismatch" in body
    assert "93%" in body


def test_game_page_shows_image_statistics(client, ranked_game):
    body = client.get(f"/games/{ranked_game['game'].pk}/").content.decode()
    assert "900×1200 px" in body
    assert "0% / 0% / 2% / 0%" in body
    assert "1 of 4" in body
    assert "2.50" in body


def test_game_page_names_manual_source(client, ranked_game):
    set_labels(ranked_game["render"], ["clean"])
    body = client.get(f"/games/{ranked_game['game'].pk}/").content.decode()
    assert "Verdict clean (staff label)" in body


def test_game_page_explains_shop_preference_tie_break():
    game, (edition,) = make_game()
    version = heads_version()
    first = make_listing(edition, "pref-0", preference=0)
    second = make_listing(edition, "pref-9", preference=9)
    third = make_listing(edition, "pref-9", preference=9, width=300, height=400)
    for listing in (first, second, third):
        predict(listing, version, "clean")
    ranked = list(ranked_covers(game))
    assert "preference is 9 against 0" in order_reason(ranked[0], ranked[1])
    assert "its image is smaller (300×400 px against 600×850 px)" in order_reason(ranked[1], ranked[2])


def test_game_page_unusable_cover_reason(client):
    game, (edition,) = make_game()
    make_listing(edition, decode_error="image is truncated")
    body = client.get(f"/games/{game.pk}/").content.decode()
    assert "No usable image: image is truncated." in body


def test_game_page_missing_game_is_404(client):
    assert client.get("/games/999999/").status_code == 404


def test_game_page_query_count_is_bounded(client, django_assert_max_num_queries):
    game, editions = make_game("Crowded", platforms=(("ps4", "sony"), ("switch", "nintendo"), ("pc", "pc")))
    version = heads_version()
    for index in range(40):
        listing = make_listing(editions[index % 3], f"shop-{index % 5}")
        predict(listing, version, "clean", platform="sony", confidence=0.5 + index / 100)
        priced(listing, f"{20 + index}.00", "EUR")
    compute_primaries(Game.objects.filter(pk=game.pk))
    with django_assert_max_num_queries(4):
        response = client.get(f"/games/{game.pk}/")
    assert len(response.context["candidates"]) == 40


def test_game_page_staff_query_count_is_bounded(staff_client, ranked_game, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = staff_client.get(f"/games/{ranked_game['game'].pk}/")
    assert response.status_code == 200


def test_game_page_hides_picker_from_public(client, ranked_game):
    body = client.get(f"/games/{ranked_game['game'].pk}/").content.decode()
    assert "Make primary" not in body


def test_game_page_shows_picker_to_staff(staff_client, ranked_game):
    body = staff_client.get(f"/games/{ranked_game['game'].pk}/").content.decode()
    assert body.count("Make primary") == 4
    assert "csrfmiddlewaretoken" in body


# Cover images and assets ---------------------------------------------------------


def test_cover_image_served_with_type_and_cache(client):
    game, (edition,) = make_game()
    cover = attach_real_image(make_listing(edition))
    response = client.get(f"/covers/{cover.sha256}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["ETag"] == f'"{cover.sha256}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_cover_image_not_modified_for_matching_etag(client):
    game, (edition,) = make_game()
    cover = attach_real_image(make_listing(edition))
    response = client.get(f"/covers/{cover.sha256}/", HTTP_IF_NONE_MATCH=f'"{cover.sha256}"')
    assert response.status_code == 304


def test_cover_image_unknown_hash_is_404(client):
    assert client.get(f"/covers/{'a' * 64}/").status_code == 404


def test_cover_image_bad_hash_does_not_route(client):
    assert client.get("/covers/../../etc/passwd/").status_code == 404
    assert client.get(f"/covers/{'A' * 64}/").status_code == 404


def test_cover_image_with_decode_error_is_404(client):
    game, (edition,) = make_game()
    listing = make_listing(edition, decode_error="not an image")
    assert client.get(f"/covers/{listing.cover.sha256}/").status_code == 404


def test_cover_image_missing_file_is_404(client):
    cover = CoverImage.objects.create(sha256="b" * 64, path="bb/missing.png", format="PNG", width=1, height=1)
    assert client.get(f"/covers/{cover.sha256}/").status_code == 404


def test_cover_image_path_outside_store_is_404(client):
    cover = CoverImage.objects.create(sha256="c" * 64, path="../../coverpick.sqlite3", format="PNG", width=1, height=1)
    assert client.get(f"/covers/{cover.sha256}/").status_code == 404


@pytest.mark.parametrize("name", ["12in16bit.tif", "tiff_adobe_deflate.tif"])
def test_tiff_cover_served_as_png_copy(client, name):
    """Browsers do not show TIFF, so the page gets a PNG copy of the decoded cover, made once."""
    path = HOSTILE_IMAGES / name
    if not path.is_file():
        pytest.fail(f"Hostile image {path} not found; set COVERPICK_SHARED")
    data = path.read_bytes()
    cover = store_image(data)
    assert cover.format == "TIFF"
    assert not cover.decode_error

    response = client.get(f"/covers/{cover.sha256}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    served = b"".join(response.streaming_content)
    shown = Image.open(io.BytesIO(served))
    assert shown.format == "PNG"
    assert shown.size == (cover.width, cover.height)
    expected, _ = decode_image(data)
    assert np.array_equal(np.asarray(shown.convert(expected.mode)), np.asarray(expected))

    copy = conf.display_copy_dir() / f"{cover.sha256}.png"
    assert copy.read_bytes() == served
    # The second request sends the stored copy without decoding again.
    copy.write_bytes(png_bytes(3, 3, (1, 2, 3)))
    again = client.get(f"/covers/{cover.sha256}/")
    assert Image.open(io.BytesIO(b"".join(again.streaming_content))).size == (3, 3)


def test_avif_cover_served_as_avif(client):
    path = HOSTILE_IMAGES / "avif__rot1mir0.avif"
    if not path.is_file():
        pytest.fail(f"Hostile image {path} not found; set COVERPICK_SHARED")
    cover = store_image(path.read_bytes())
    response = client.get(f"/covers/{cover.sha256}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/avif"
    assert b"".join(response.streaming_content) == path.read_bytes()


def test_cover_image_rejects_post(client):
    game, (edition,) = make_game()
    cover = attach_real_image(make_listing(edition))
    assert client.post(f"/covers/{cover.sha256}/").status_code == 405


def test_asset_served_with_versioned_cache(client):
    version = asset_version("style.css")
    response = client.get(f"/assets/style.css?v={version}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert "immutable" in response["Cache-Control"]


def test_asset_without_version_revalidates(client):
    response = client.get("/assets/label.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"


def test_unknown_asset_is_404(client):
    assert client.get("/assets/settings.js").status_code == 404


def test_pages_link_versioned_stylesheet(client):
    body = Client().get("/").content.decode()
    assert f"/assets/style.css?v={asset_version('style.css')}" in body


def test_explains_group_and_clean_score():
    game, (edition,) = make_game()
    version = heads_version()
    sure = make_listing(edition)
    unsure = make_listing(edition)
    render = make_listing(edition)
    predict(sure, version, "clean", confidence=0.9, clean_probability=0.9)
    predict(unsure, version, "clean", confidence=0.6, clean_probability=0.6)
    predict(render, version, "3d_render", clean_probability=0.1)
    ranked = list(ranked_covers(game))
    assert [listing.pk for listing in ranked] == [sure.pk, unsure.pk, render.pk]
    assert "clean score is 0.60 against 0.90" in order_reason(ranked[0], ranked[1])
    assert "among other usable covers, which rank after covers judged clean" in order_reason(ranked[1], ranked[2])


def test_notice_cover_tier_name(client):
    game, (edition,) = make_game()
    notice = make_listing(edition)
    predict(notice, heads_version(), "ciab")
    body = client.get(f"/games/{game.pk}/").content.decode()
    assert "Tier 0 (clean cover, or one whose only flaw is a key-card or code notice)" in body


@pytest.mark.parametrize(
    ("mine", "theirs", "shown"),
    [
        (0.6, 0.9, ("0.60", "0.90")),
        (0.99951, 0.99982, ("0.9995", "0.9998")),
        (0.003, 0.001, ("0.003", "0.001")),
        (0.0041, 0.2, ("below 0.01", "0.20")),
        (0.5000001, 0.5000002, ("0.500000 (lower beyond six decimals)", "0.500000")),
    ],
)
def test_close_clean_scores_shown_apart(mine, theirs, shown):
    from coverpick.web.explain import _score_pair

    assert _score_pair(mine, theirs) == shown

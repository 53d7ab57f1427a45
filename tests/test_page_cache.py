"""The shared page cache: anonymous copies only, and every write to the catalogue makes them stale.

Each write-path test first requests the page as an anonymous visitor and
checks that the copy is in the cache, then writes through the product's own
code and requests the page again. Without invalidation the second request
would return the stored copy, so each of these tests fails if the
generation triggers or the generation check are removed.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import threading
from decimal import Decimal

import numpy as np
import pytest
from django.apps import apps
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from coverpick.catalogue import generation
from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.manual import clear_labels, pin_cover, record_review, set_labels, unpin_game
from coverpick.catalogue.models import ClassifierVersion, Game, Listing, Shop, Verdict
from coverpick.model import versions
from coverpick.model.featurize import featurize
from coverpick.ranking import compute_primaries
from coverpick.vision import extract
from coverpick.web import page_cache
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, member_client, png_bytes, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous():
    return Client()


@pytest.fixture
def shown_game():
    """A game with two priced listings, a clean verdict on the first and a 3D render on the second."""
    game, (edition,) = make_game("Cached Quest", platforms=(("ps4", "sony"),))
    version = heads_version()
    first = make_listing(edition, "shop-a", preference=0)
    second = make_listing(edition, "shop-b", preference=1)
    predict(first, version, "clean", platform="sony")
    predict(second, version, "3d_render", platform="sony")
    for listing, price in ((first, "39.99"), (second, "44.00")):
        listing.price = Decimal(price)
        listing.currency = "EUR"
        listing.in_stock = True
        listing.save()
    compute_primaries(Game.objects.filter(pk=game.pk))
    game.refresh_from_db()
    return {"game": game, "edition": edition, "first": first, "second": second, "version": version}


def page_path(game) -> str:
    return f"/games/{game.pk}/"


def cached_entry(path: str):
    """Return the page cache's entry for ``path`` as (validity, headers, body), or None."""
    key = "coverpick:page:" + hashlib.sha256(path.encode()).hexdigest()
    return caches[page_cache.PAGE_CACHE_ALIAS].get(key)


def get_cached(client: Client, path: str) -> str:
    """Request ``path`` anonymously, check that the response is now in the page cache, and return the body."""
    response = client.get(path)
    assert response.status_code == 200
    assert cached_entry(path) is not None, f"{path} was not stored in the page cache"
    return response.content.decode()


def candidate_block(body: str, listing) -> str:
    match = re.search(rf'id="listing-{listing.pk}">(.*?)</li>', body, re.S)
    assert match is not None, f"listing {listing.pk} is not on the page"
    return match.group(1)


def verdict_shown(body: str, listing) -> str:
    match = re.search(r"verdict\s*<strong>([^<]*)</strong>", candidate_block(body, listing))
    assert match is not None
    return match.group(1)


def primary_shown(body: str) -> int | None:
    match = re.search(r'id="primary-cover"[^>]*data-listing="(\d+)"', body)
    return int(match.group(1)) if match else None


# Which pages are stored, and which visitors get them -----------------------------------


def test_second_anonymous_request_reads_one_row(anonymous, shown_game, django_assert_num_queries):
    path = page_path(shown_game["game"])
    first = get_cached(anonymous, path)
    # The generation read is the only query of a request served from the cache.
    with django_assert_num_queries(1):
        second = anonymous.get(path)
    assert second.status_code == 200
    assert second.content.decode() == first
    assert second["Content-Type"] == "text/html; charset=utf-8"


def test_stored_page_keeps_response_headers(anonymous, shown_game):
    path = page_path(shown_game["game"])
    fresh = anonymous.get(path)
    assert cached_entry(path) is not None
    served = anonymous.get(path)
    for header in ("Content-Type", "X-Frame-Options", "Vary", "X-Content-Type-Options", "Referrer-Policy"):
        assert served.get(header) == fresh.get(header), header
    assert "Cookie" in served["Vary"]
    assert served["X-Frame-Options"] == "DENY"
    assert not served.cookies


def test_disallowed_host_rejected_with_stored_page(anonymous, shown_game):
    path = page_path(shown_game["game"])
    get_cached(anonymous, path)
    assert anonymous.get(path, HTTP_HOST="evil.example").status_code == 400


def test_head_request_not_served_from_cache(anonymous, shown_game):
    path = page_path(shown_game["game"])
    get_cached(anonymous, path)
    response = anonymous.head(path)
    assert response.status_code == 200
    assert response.content == b""


def test_two_games_keep_their_own_pages(anonymous, shown_game):
    other, (edition,) = make_game("Other Title")
    make_listing(edition, "shop-c")
    first_path, other_path = page_path(shown_game["game"]), page_path(other)
    get_cached(anonymous, first_path)
    get_cached(anonymous, other_path)
    first_again = anonymous.get(first_path).content.decode()
    other_again = anonymous.get(other_path).content.decode()
    assert shown_game["game"].title in first_again
    assert other.title not in first_again
    assert other.title in other_again
    assert shown_game["game"].title not in other_again


def test_staff_never_receive_anonymous_copy(anonymous, staff_client, shown_game):
    path = page_path(shown_game["game"])
    anonymous_body = get_cached(anonymous, path)
    assert "Make primary" not in anonymous_body
    staff_body = staff_client.get(path).content.decode()
    assert "Make primary" in staff_body
    assert "staffer" in staff_body


def test_staff_page_never_stored(anonymous, staff_client, shown_game):
    path = page_path(shown_game["game"])
    staff_body = staff_client.get(path).content.decode()
    assert "Make primary" in staff_body
    assert cached_entry(path) is None
    anonymous_body = get_cached(anonymous, path)
    assert "Make primary" not in anonymous_body
    assert "staffer" not in anonymous_body
    assert "csrfmiddlewaretoken" not in anonymous_body


def test_logged_in_member_bypasses_cache(anonymous, member_client, shown_game):
    path = page_path(shown_game["game"])
    member_body = member_client.get(path).content.decode()
    assert "member" in member_body
    assert cached_entry(path) is None
    assert "member" not in get_cached(anonymous, path)


def test_stale_session_cookie_bypasses_cache(shown_game):
    client = Client()
    client.cookies["sessionid"] = "no-such-session"
    response = client.get(page_path(shown_game["game"]))
    assert response.status_code == 200
    assert cached_entry(page_path(shown_game["game"])) is None


def test_messages_cookie_bypasses_cache(shown_game):
    client = Client()
    client.cookies["messages"] = "unsigned-junk"
    assert client.get(page_path(shown_game["game"])).status_code == 200
    assert cached_entry(page_path(shown_game["game"])) is None


def test_query_string_bypasses_cache(anonymous, shown_game):
    path = page_path(shown_game["game"]) + "?utm_source=mail"
    assert anonymous.get(path).status_code == 200
    assert cached_entry(path) is None


def test_game_list_pages_cached_but_not_searches(anonymous, shown_game):
    get_cached(anonymous, "/")
    get_cached(anonymous, "/?page=1")
    assert anonymous.get("/?q=cached").status_code == 200
    assert cached_entry("/?q=cached") is None


def test_unreadable_entry_renders_page(anonymous, shown_game, caplog, monkeypatch):
    monkeypatch.setattr(page_cache, "_last_warning", float("-inf"))
    path = page_path(shown_game["game"])
    get_cached(anonymous, path)
    cache = caches[page_cache.PAGE_CACHE_ALIAS]
    entry_file = cache._key_to_file("coverpick:page:" + hashlib.sha256(path.encode()).hexdigest())
    with open(entry_file, "r+b") as handle:
        handle.seek(40)
        handle.write(b"\0" * 64)
    response = anonymous.get(path)
    assert response.status_code == 200
    assert shown_game["game"].title in response.content.decode()
    assert "could not be read" in caplog.text
    # The rendered page replaced the damaged entry.
    assert cached_entry(path) is not None


def test_missing_game_not_stored(anonymous):
    assert anonymous.get("/games/999999/").status_code == 404
    assert cached_entry("/games/999999/") is None


def test_code_change_makes_entry_stale(anonymous, shown_game, monkeypatch):
    path = page_path(shown_game["game"])
    get_cached(anonymous, path)
    monkeypatch.setattr(page_cache, "code_version", lambda: "another-build")
    anonymous.get(path)
    # The page was rendered again and stored for the new code.
    assert cached_entry(path)[0][0] == "another-build"


# The generation and its triggers -------------------------------------------------


def catalogue_tables() -> set[str]:
    return {model._meta.db_table for model in apps.get_app_config("catalogue").get_models()}


def test_every_catalogue_table_but_audit_is_tracked():
    assert catalogue_tables() - {"catalogue_auditevent"} == set(generation.TRACKED_TABLES)


def installed_trigger_tables() -> dict[str, set[str]]:
    """Map each table to the write events that a generation trigger watches on it."""
    found: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'coverpick_generation_%'")
            for table, sql in cursor.fetchall():
                event = re.search(r"AFTER (INSERT|UPDATE|DELETE) ON", sql).group(1)
                found.setdefault(table, set()).add(event)
        else:
            cursor.execute(
                "SELECT event_object_table, event_manipulation FROM information_schema.triggers "
                "WHERE trigger_name LIKE 'coverpick_generation_%%'"
            )
            for table, event in cursor.fetchall():
                found.setdefault(table, set()).add(event)
    return found


def test_triggers_watch_every_write_on_tracked_tables():
    found = installed_trigger_tables()
    for table in generation.TRACKED_TABLES:
        assert found.get(table) == {"INSERT", "UPDATE", "DELETE"}, table


@pytest.mark.parametrize("table", generation.TRACKED_TABLES)
def test_raw_update_changes_generation(shown_game, table):
    before = generation.current_generation()
    assert before is not None
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET id = id WHERE id = (SELECT min(id) FROM {table})")
    assert generation.current_generation() != before


def test_raw_delete_changes_generation(shown_game):
    before = generation.current_generation()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM catalogue_verdict WHERE listing_id = %s", [shown_game["second"].pk])
    assert generation.current_generation() != before


def test_audit_event_leaves_generation(shown_game):
    from coverpick.catalogue.models import AuditEvent

    before = generation.current_generation()
    AuditEvent.objects.create(action="note")
    assert generation.current_generation() == before


# Write paths ----------------------------------------------------------------------


def write_feed(folder, rows: list[str]) -> None:
    feeds = folder / "feeds"
    feeds.mkdir(exist_ok=True)
    (feeds / "cacheshop.csv").write_text("id;name;system;price;currency;image\n" + "".join(f"{row}\n" for row in rows))


@pytest.fixture
def imported_game(tmp_path):
    """A game imported from a one-shop feed, with a real cover image."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "red.png").write_bytes(png_bytes(60, 80, (200, 30, 30)))
    (tmp_path / "images" / "blue.png").write_bytes(png_bytes(64, 90, (30, 30, 200)))
    write_feed(tmp_path, ["A1;Feed Cache Game;PS4;19,99;EUR;images/red.png"])
    import_catalogue(tmp_path, with_labels=False)
    listing = Listing.objects.get(shop__code="cacheshop", product_id="A1")
    return {"folder": tmp_path, "listing": listing, "game": listing.edition.game}


def test_import_price_change_shows(anonymous, imported_game):
    path = page_path(imported_game["game"])
    assert "€19.99" in get_cached(anonymous, path)
    write_feed(imported_game["folder"], ["A1;Feed Cache Game;PS4;17,49;EUR;images/red.png"])
    import_catalogue(imported_game["folder"], with_labels=False)
    body = anonymous.get(path).content.decode()
    assert "€17.49" in body
    assert "€19.99" not in body


def test_import_cover_change_shows(anonymous, imported_game):
    path = page_path(imported_game["game"])
    old_sha = imported_game["listing"].cover.sha256
    assert old_sha in get_cached(anonymous, path)
    write_feed(imported_game["folder"], ["A1;Feed Cache Game;PS4;19,99;EUR;images/blue.png"])
    import_catalogue(imported_game["folder"], with_labels=False)
    new_sha = Listing.objects.get(pk=imported_game["listing"].pk).cover.sha256
    body = anonymous.get(path).content.decode()
    assert new_sha != old_sha
    assert new_sha in body
    assert old_sha not in body


def test_import_new_listing_shows(anonymous, imported_game):
    path = page_path(imported_game["game"])
    get_cached(anonymous, path)
    get_cached(anonymous, "/")
    write_feed(
        imported_game["folder"],
        ["A1;Feed Cache Game;PS4;19,99;EUR;images/red.png", "A2;Feed Cache Game;Switch;24,99;EUR;images/blue.png"],
    )
    import_catalogue(imported_game["folder"], with_labels=False)
    added = Listing.objects.get(shop__code="cacheshop", product_id="A2")
    assert f'id="listing-{added.pk}"' in anonymous.get(path).content.decode()
    assert "switch" in anonymous.get("/").content.decode()


def test_import_labels_show(anonymous, imported_game):
    path = page_path(imported_game["game"])
    listing = imported_game["listing"]
    assert verdict_shown(get_cached(anonymous, path), listing) == "none"
    (imported_game["folder"] / "labels.jsonl").write_text(
        '{"shop": "cacheshop", "product_id": "A1", "source": "manual-train", "labels": ["margins"]}\n'
    )
    import_catalogue(imported_game["folder"])
    assert verdict_shown(anonymous.get(path).content.decode(), listing) == "margins"


def test_featurize_statistics_show(anonymous, imported_game):
    path = page_path(imported_game["game"])
    cover = imported_game["listing"].cover
    cover.width = cover.height = None
    cover.save()
    assert "<dt>Pixel size</dt><dd>unknown</dd>" in get_cached(anonymous, path)

    def zero_features(batch):
        return np.zeros((len(batch), 4), dtype=np.float32)

    featurize([cover], "cache-test-backbone", extractor=zero_features)
    body = anonymous.get(path).content.decode()
    assert "60×80 px" in body
    assert "Border whiteness" in body


def test_sweep_verdict_rows_show(anonymous, shown_game):
    """The sweep's write: delete a chunk's rows of one version and insert new ones in one transaction."""
    path = page_path(shown_game["game"])
    second = shown_game["second"]
    assert verdict_shown(get_cached(anonymous, path), second) == "3d_render"
    version = shown_game["version"]
    with transaction.atomic():
        Verdict.objects.filter(classifier_version=version, listing_id__in=[second.pk]).delete()
        Verdict.objects.bulk_create(
            [Verdict(listing=second, source=Verdict.SOURCE_CLASSIFIER, classifier_version=version, quality="placeholder")]
        )
    assert verdict_shown(anonymous.get(path).content.decode(), second) == "placeholder"


def test_rank_command_shows_new_primary(anonymous, shown_game):
    path = page_path(shown_game["game"])
    first, second = shown_game["first"], shown_game["second"]
    Verdict.objects.filter(listing=first, classifier_version=shown_game["version"]).update(quality="wrong_game")
    # The stored primary changes only when the ranking is computed again.
    assert primary_shown(get_cached(anonymous, path)) == first.pk
    call_command("rank", stdout=io.StringIO())
    assert primary_shown(anonymous.get(path).content.decode()) == second.pk


def test_manual_label_shows(anonymous, shown_game):
    path = page_path(shown_game["game"])
    first = shown_game["first"]
    get_cached(anonymous, path)
    set_labels(first, ["bad_background"])
    assert verdict_shown(anonymous.get(path).content.decode(), first) == "bad_background"
    get_cached(anonymous, path)
    clear_labels(first)
    assert verdict_shown(anonymous.get(path).content.decode(), first) == "clean"


def test_confirmed_review_shows(anonymous, shown_game):
    path = page_path(shown_game["game"])
    second = shown_game["second"]
    get_cached(anonymous, path)
    record_review(second, "margins", confirmed=True)
    assert verdict_shown(anonymous.get(path).content.decode(), second) == "margins"


def test_pin_and_unpin_functions_show(anonymous, shown_game):
    path = page_path(shown_game["game"])
    second = shown_game["second"]
    assert "pinned" not in candidate_block(get_cached(anonymous, path), second)
    pin_cover(Listing.objects.select_related("edition").get(pk=second.pk))
    assert "pinned" in candidate_block(get_cached(anonymous, path), second)
    unpin_game(shown_game["game"])
    assert "pinned" not in candidate_block(anonymous.get(path).content.decode(), second)


def test_pin_and_unpin_pages_show(anonymous, staff_client, shown_game):
    game, second = shown_game["game"], shown_game["second"]
    path = page_path(game)
    assert primary_shown(get_cached(anonymous, path)) == shown_game["first"].pk
    response = staff_client.post(f"/games/{game.pk}/pin/", {"listing": second.pk})
    assert response.status_code == 302
    pinned_body = get_cached(anonymous, path)
    assert primary_shown(pinned_body) == second.pk
    assert "pinned" in candidate_block(pinned_body, second)
    response = staff_client.post(f"/games/{game.pk}/unpin/")
    assert response.status_code == 302
    assert primary_shown(anonymous.get(path).content.decode()) == shown_game["first"].pk


def test_pin_shows_on_game_list(anonymous, staff_client, shown_game):
    game, second = shown_game["game"], shown_game["second"]
    assert second.cover.sha256 not in get_cached(anonymous, "/")
    staff_client.post(f"/games/{game.pk}/pin/", {"listing": second.pk})
    assert second.cover.sha256 in anonymous.get("/").content.decode()


def test_label_page_save_and_undo_show(anonymous, staff_client, shown_game):
    path = page_path(shown_game["game"])
    first = shown_game["first"]
    get_cached(anonymous, path)
    response = staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["placeholder"]})
    assert response.status_code == 302
    assert verdict_shown(get_cached(anonymous, path), first) == "placeholder"
    assert staff_client.post("/admin/label/covers/undo/").status_code == 302
    assert verdict_shown(anonymous.get(path).content.decode(), first) == "clean"


def test_grid_confirm_shows(anonymous, staff_client, shown_game):
    path = page_path(shown_game["game"])
    second = shown_game["second"]
    get_cached(anonymous, path)
    response = staff_client.post("/admin/label/covers/grid/", {"shown": [second.pk], "confirm": [second.pk]})
    assert response.status_code == 302
    assert verdict_shown(anonymous.get(path).content.decode(), second) == "clean"


def test_model_activation_shows(anonymous, shown_game, monkeypatch):
    # Activation loads the checkpoint and the ONNX export before its
    # transaction; these tests have neither, and the transaction is what matters.
    monkeypatch.setattr(versions, "load_heads", lambda *args, **kwargs: None)
    monkeypatch.setattr(extract, "ensure_onnx", lambda *args, **kwargs: None)
    path = page_path(shown_game["game"])
    second = shown_game["second"]
    newer = heads_version("heads-cache-newer", active=False)
    predict(second, newer, "low_resolution", platform="sony")
    assert verdict_shown(get_cached(anonymous, path), second) == "3d_render"
    versions.activate_version(newer)
    assert ClassifierVersion.objects.get(pk=newer.pk).is_active
    assert verdict_shown(anonymous.get(path).content.decode(), second) == "low_resolution"


def test_shop_preference_command_shows(anonymous, shown_game):
    path = page_path(shown_game["game"])
    first, second = shown_game["first"], shown_game["second"]
    Verdict.objects.filter(listing=second, classifier_version=shown_game["version"]).update(quality="clean")
    body = get_cached(anonymous, path)
    assert body.index(f'id="listing-{first.pk}"') < body.index(f'id="listing-{second.pk}"')
    call_command("shops", order="shop-b,shop-a", stdout=io.StringIO())
    assert Shop.objects.get(code="shop-b").preference == 0
    body = anonymous.get(path).content.decode()
    assert body.index(f'id="listing-{second.pk}"') < body.index(f'id="listing-{first.pk}"')


# Writes by another process -------------------------------------------------------------

OTHER_PROCESS_UPDATE = "UPDATE catalogue_listing SET price = 12.34 WHERE id = {listing_id}"


def write_from_another_process(sql: str) -> None:
    """Run one SQL statement and commit it from a new Python process, bypassing Django and its code."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        script = "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\ndb.execute(sys.argv[2])\ndb.commit()\n"
        args = [settings["NAME"], sql]
    else:
        script = (
            "import psycopg, sys\n"
            "with psycopg.connect(host=sys.argv[1], port=sys.argv[2], dbname=sys.argv[3], user=sys.argv[4], password=sys.argv[5]) as db:\n"
            "    db.execute(sys.argv[6])\n"
        )
        args = [settings["HOST"] or "localhost", str(settings["PORT"] or 5432), settings["NAME"], settings["USER"], settings["PASSWORD"], sql]
    subprocess.run([sys.executable, "-c", script, *args], check=True, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_write_by_another_process_shows(anonymous):
    game, (edition,) = make_game("Other Process Game")
    listing = make_listing(edition)
    Listing.objects.filter(pk=listing.pk).update(price=Decimal("50.00"), currency="EUR", in_stock=True)
    path = page_path(game)
    assert "€50.00" in get_cached(anonymous, path)
    write_from_another_process(OTHER_PROCESS_UPDATE.format(listing_id=listing.pk))
    body = anonymous.get(path).content.decode()
    assert "€12.34" in body
    assert "€50.00" not in body


@pytest.mark.django_db(transaction=True)
def test_label_and_pin_of_one_game_do_not_deadlock():
    """A pin locks its game's row; a label save's foreign-key check waits for that lock at commit.

    A generation kept in one counter row would make the pin wait for the
    label's counter lock in turn. PostgreSQL's row-per-writer design must let
    both commit.
    """
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one transaction write at a time, so writers never hold locks while waiting")
    game, (edition,) = make_game("Locking Game")
    labelled = Listing.objects.select_related("edition").get(pk=make_listing(edition, "shop-a").pk)
    pinned = make_listing(edition, "shop-b")
    game_locked, label_written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pin() -> None:
        try:
            with transaction.atomic():
                # The first two steps of pin_cover.
                Game.objects.select_for_update().get(pk=game.pk)
                game_locked.set()
                assert label_written.wait(10)
                Verdict.objects.filter(listing__edition__game=game, source=Verdict.SOURCE_MANUAL_PIN).delete()
                Verdict.objects.create(listing=pinned, source=Verdict.SOURCE_MANUAL_PIN, quality="clean")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def label() -> None:
        try:
            assert game_locked.wait(10)
            with transaction.atomic():
                set_labels(labelled, ["clean"])
                label_written.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pin), threading.Thread(target=label)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert Verdict.objects.filter(listing=pinned, source=Verdict.SOURCE_MANUAL_PIN).exists()
    assert Verdict.objects.filter(listing=labelled, source=Verdict.SOURCE_MANUAL_TRAIN).exists()


# The whole pipeline ---------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_shows_new_verdict(trained_sample):
    from coverpick.model.sweep import sweep

    version = trained_sample["version"]
    manual = Verdict.objects.filter(source__in=Verdict.MANUAL_SOURCES).values("listing_id")
    listing = (
        Listing.objects.filter(verdicts__classifier_version=version, verdicts__quality__isnull=False)
        .exclude(pk__in=manual)
        .select_related("edition")
        .first()
    )
    path = page_path(listing.edition.game)
    Verdict.objects.filter(listing=listing, classifier_version=version).delete()
    assert verdict_shown(get_cached(Client(), path), listing) == "none"
    sweep(apply=True)
    restored = Verdict.objects.get(listing=listing, classifier_version=version)
    assert verdict_shown(Client().get(path).content.decode(), listing) == restored.quality

"""Staff rows written for a cover that the listing no longer shows, or under another edition.

A re-import can give a listing a new image, or file it under another platform
or game. Labels, reviews and pins written before stay stored, but they are
outdated: training and the ranking leave them out, the labelling queue serves
the listing first, and the import summary counts them. A pin still chooses
the primary cover, unless the listing has moved to another game.
"""

import io
import json

import pytest
from PIL import Image

from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.manual import pin_cover, record_review, set_labels, unpin_game
from coverpick.catalogue.models import CoverImage, Listing, Verdict, listings_to_relabel
from coverpick.model.dataset import training_rows
from coverpick.ranking import annotate_ranking, compute_primaries
from coverpick.web import labelling
from coverpick.web.queue import TIER_OUTDATED, build_queue
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db


def give_new_image(listing: Listing) -> Listing:
    """Point the listing at a new stored image, as a re-import does when the shop's image changes."""
    listing.cover = CoverImage.objects.create(sha256=f"{listing.pk:032x}{'e' * 32}", path="new.jpg", width=600, height=850)
    listing.save()
    return Listing.objects.select_related("edition").get(pk=listing.pk)


def manual_row(listing: Listing) -> Verdict:
    return Verdict.objects.get(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN)


def ranked(listing: Listing) -> Listing:
    return annotate_ranking(Listing.objects.filter(pk=listing.pk)).get()


@pytest.fixture
def relabelled_game():
    """Return a listing that the model calls a 3D render and staff labelled clean for its earlier image."""
    _game, (edition,) = make_game("Changed Image Game")
    version = heads_version()
    listing = make_listing(edition)
    predict(listing, version, "3d_render", confidence=0.8)
    set_labels(listing, ["clean"])
    return {"listing": give_new_image(listing), "version": version, "edition": edition}


def test_staff_rows_record_their_cover():
    _game, (edition,) = make_game()
    listing, other = make_listing(edition), make_listing(edition)
    label = set_labels(listing, ["clean"])
    review = record_review(listing, "margins", confirmed=False)
    pin_cover(other)
    assert label.cover_id == review.cover_id == listing.cover_id
    pins = dict(Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_PIN).values_list("listing_id", "cover_id"))
    assert pins == {listing.pk: listing.cover_id, other.pk: other.cover_id}


def test_earlier_image_label_not_trained(relabelled_game):
    listing = relabelled_game["listing"]
    assert listing.pk not in {row.listing_id for row in training_rows()}

    set_labels(listing, ["clean"])

    assert manual_row(listing).cover_id == listing.cover_id
    assert [row.labels for row in training_rows() if row.listing_id == listing.pk] == [["clean"]]


def test_ranking_uses_classifier_until_relabelled(relabelled_game):
    listing = relabelled_game["listing"]
    before = ranked(listing)
    assert (before.manual_verdict, before.effective_verdict) == (None, "3d_render")

    set_labels(listing, ["clean"])

    after = ranked(listing)
    assert (after.manual_source, after.effective_verdict) == (Verdict.SOURCE_MANUAL_TRAIN, "clean")


def test_pin_wins_after_image_change():
    _game, (edition,) = make_game()
    pinned, other = make_listing(edition), make_listing(edition)
    pin_cover(pinned)
    pinned = give_new_image(pinned)
    assert ranked(pinned).is_pinned
    assert ranked(pinned).tier < ranked(other).tier


def test_game_page_flags_pin_of_earlier_image(staff_client, client):
    game, (edition,) = make_game()
    listing, other = make_listing(edition), make_listing(edition)
    pin_cover(listing)
    assert 'id="pin-note"' not in staff_client.get(f"/games/{game.pk}/").content.decode()

    give_new_image(listing)

    page = staff_client.get(f"/games/{game.pk}/").content.decode()
    assert "The listing&#x27;s image has changed since it was pinned." in page
    assert f'data-listing="{listing.pk}">Pin again</button>' in page
    assert f'data-listing="{other.pk}">Make primary</button>' in page
    assert 'id="pin-note"' not in client.get(f"/games/{game.pk}/").content.decode()

    staff_client.post(f"/games/{game.pk}/pin/", {"listing": listing.pk})

    page = staff_client.get(f"/games/{game.pk}/").content.decode()
    assert 'id="pin-note"' not in page
    assert "Pin again" not in page
    assert f'data-listing="{listing.pk}">Make primary' not in page


def test_pin_note_mentions_outdated_labels(staff_client):
    game, (edition,) = make_game()
    labelled, unlabelled = make_listing(edition), make_listing(edition)
    set_labels(labelled, ["clean"])
    for listing in (labelled, unlabelled):
        pin_cover(listing)
        give_new_image(listing)

        page = staff_client.get(f"/games/{game.pk}/").content.decode()

        assert "The listing&#x27;s image has changed since it was pinned." in page
        assert ("Pinning again keeps its outdated staff labels" in page) == (listing is labelled)


def test_pin_note_unusable_listing(staff_client):
    game, (edition,) = make_game()
    listing, other = make_listing(edition), make_listing(edition)
    pin_cover(listing)
    listing.cover = None
    listing.save()
    compute_primaries()

    page = staff_client.get(f"/games/{game.pk}/").content.decode()

    assert "The pinned listing has no usable image now, so its pin does not count" in page
    assert "Pin again" not in page
    assert 'id="unpin"' in page
    assert "from staff pin" not in page
    # The game shows the other cover, not an empty frame.
    assert ranked(listing).tier > ranked(other).tier
    assert f'data-listing="{other.pk}"' in page.split('id="primary-cover"', 1)[1].split(">", 1)[0]


def test_queue_serves_earlier_image_first(relabelled_game):
    listing, version, edition = relabelled_game["listing"], relabelled_game["version"], relabelled_game["edition"]
    unsure = make_listing(edition)
    predict(unsure, version, "unknown", confidence=0.1)

    queue = build_queue()
    assert [(item.listing_id, item.tier) for item in queue][:2] == [(listing.pk, TIER_OUTDATED), (unsure.pk, "A")]

    set_labels(listing, ["3d_render"])

    assert [item.listing_id for item in build_queue()] == [unsure.pk]


def test_earlier_image_review_queued_once():
    _game, (edition,) = make_game()
    version = heads_version()
    listing = make_listing(edition)
    predict(listing, version, "unknown", confidence=0.2)
    record_review(listing, "margins", confirmed=True)
    listing = give_new_image(listing)

    queue = build_queue()
    assert [(item.listing_id, item.tier) for item in queue] == [(listing.pk, TIER_OUTDATED)]

    set_labels(listing, ["clean"])
    assert build_queue() == []


def test_label_page_flags_earlier_image(staff_client, relabelled_game):
    listing = relabelled_game["listing"]
    page = staff_client.get("/admin/label/covers/").content.decode()
    assert 'id="outdated-labels"' in page
    assert "earlier image or edition 1" in page
    assert "The image has changed since, so check them" in page

    staff_client.post("/admin/label/covers/save/", {"listing": listing.pk, "labels": ["3d_render"]})

    page = staff_client.get(f"/admin/label/covers/?listing={listing.pk}").content.decode()
    assert 'id="outdated-labels"' not in page
    assert "Current manual labels: 3d_render" in page


def test_undo_restores_earlier_image(staff_client, staff_user, relabelled_game):
    listing = relabelled_game["listing"]
    earlier_cover = manual_row(listing).cover_id
    session = staff_client.session
    labelling.save_labels(session, listing, ["clean"], staff_user)
    assert manual_row(listing).cover_id == listing.cover_id

    labelling.undo_last(session, staff_user)

    assert (manual_row(listing).labels, manual_row(listing).cover_id) == (["clean"], earlier_cover)
    assert listing.pk not in {row.listing_id for row in training_rows()}


def test_label_page_shows_earlier_image_reviews(staff_client):
    _game, (edition,) = make_game()
    listing = make_listing(edition)
    predict(listing, heads_version(), "unknown", confidence=0.2)
    record_review(listing, "margins", confirmed=False)
    give_new_image(listing)

    page = staff_client.get("/admin/label/covers/").content.decode()

    assert 'id="outdated-reviews"' in page
    assert "margins rejected" in page
    assert 'id="outdated-labels"' not in page


def test_export_flags_earlier_image_reviews():
    from coverpick.exports import verdict_records

    _game, (edition,) = make_game()
    reviewed, labelled = make_listing(edition), make_listing(edition)
    record_review(reviewed, "margins", confirmed=True)
    set_labels(labelled, ["clean"])
    give_new_image(reviewed)

    flags = {record["product_id"]: record["staff_labels_for_earlier_image"] for record in verdict_records()}

    assert flags[reviewed.product_id] is True
    assert flags[labelled.product_id] is False


# The import ---------------------------------------------------------------------------


def write_cover(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 420), colour).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def write_catalogue(folder, image: str, labels: str):
    (folder / "feeds").mkdir(parents=True, exist_ok=True)
    (folder / "feeds" / "alpha.csv").write_text(
        "id;name;system;price;currency;image\n"
        f"1;Alpha Game;PS4;10,00;EUR;{image}\n"
        "2;Beta Game;PS4;12,00;EUR;images/b.jpg\n",
        encoding="utf-8",
    )
    (folder / "labels.jsonl").write_text(labels, encoding="utf-8")


LABELS = (
    '{"shop": "alpha", "product_id": "1", "labels": ["clean"], "source": "manual-train"}\n'
    '{"shop": "alpha", "product_id": "2", "labels": ["margins"], "source": "manual-train"}\n'
)
COVERS = {"a": (200, 30, 30), "a2": (30, 30, 200), "b": (30, 200, 30), "b2": (90, 90, 90)}


def quiet_import(folder):
    return import_catalogue(folder, warn=lambda message: None)


def first_import(folder, labels: str):
    """Write the test covers and a feed whose listing 1 shows a.jpg and listing 2 b.jpg, then import them."""
    for name, colour in COVERS.items():
        write_cover(folder / "images" / f"{name}.jpg", colour)
    write_catalogue(folder, "images/a.jpg", labels)
    quiet_import(folder)


def test_import_counts_earlier_image_labels(tmp_path):
    first_import(tmp_path, LABELS)
    changed = Listing.objects.get(product_id="1")
    earlier_cover = changed.cover_id

    write_catalogue(tmp_path, "images/a2.jpg", LABELS)
    summary = quiet_import(tmp_path)

    changed.refresh_from_db()
    assert changed.cover_id != earlier_cover
    assert summary.labels_outdated == 1
    assert "(first in the labelling queue): 1" in "\n".join(summary.lines())
    # The label file repeats the old label, which does not make it a label of the new image.
    assert (manual_row(changed).labels, manual_row(changed).cover_id) == (["clean"], earlier_cover)
    assert [row.listing_id for row in training_rows()] == [Listing.objects.get(product_id="2").pk]


def test_import_counts_after_the_label_file(tmp_path):
    first_import(tmp_path, LABELS)
    feed = (tmp_path / "feeds" / "alpha.csv").read_text(encoding="utf-8")

    # Both images change, and the label file gives listing 2 a new label.
    (tmp_path / "feeds" / "alpha.csv").write_text(
        feed.replace("images/a.jpg", "images/a2.jpg").replace("images/b.jpg", "images/b2.jpg"), encoding="utf-8"
    )
    (tmp_path / "labels.jsonl").write_text(LABELS.replace('["margins"]', '["bad_background"]'), encoding="utf-8")
    summary = quiet_import(tmp_path)

    assert summary.listings_to_predict_again == 2
    assert summary.labels_outdated == 1
    relabelled = Listing.objects.get(product_id="2")
    assert manual_row(relabelled).cover_id == relabelled.cover_id


def test_truncated_image_keeps_stored_cover(tmp_path):
    first_import(tmp_path, LABELS)
    whole = io.BytesIO()
    Image.effect_noise((300, 420), 60).convert("RGB").save(whole, "JPEG")
    (tmp_path / "images" / "cut.jpg").write_bytes(whole.getvalue()[:2000])
    listing = Listing.objects.get(product_id="1")
    stored_cover = listing.cover_id

    write_catalogue(tmp_path, "images/cut.jpg", LABELS)
    summary = quiet_import(tmp_path)

    listing.refresh_from_db()
    assert listing.cover_id == stored_cover
    assert (summary.listings_to_predict_again, summary.labels_outdated) == (0, 0)
    (kept,) = summary.covers_kept
    assert "truncated" in kept.reason


def test_cut_image_of_new_listing_counted_unusable(tmp_path):
    first_import(tmp_path, LABELS)
    whole = io.BytesIO()
    Image.effect_noise((300, 420), 60).convert("RGB").save(whole, "JPEG")
    (tmp_path / "images" / "cut.jpg").write_bytes(whole.getvalue()[:2000])
    feed_path = tmp_path / "feeds" / "alpha.csv"
    feed_path.write_text(feed_path.read_text(encoding="utf-8") + "3;Gamma Game;PS4;9,00;EUR;images/cut.jpg\n", encoding="utf-8")

    summary = quiet_import(tmp_path)

    cover = Listing.objects.select_related("cover").get(product_id="3").cover
    assert cover.decode_error.startswith("image is truncated")
    assert summary.image_errors == 1
    assert (summary.images_stored, summary.images_stored_undecodable) == (1, 1)
    assert (
        "Cover images newly stored: 1 (1 of them does not decode and is kept with the reason), "
        "listings without a usable image: 1"
    ) in summary.lines()


def test_declined_image_not_stored(tmp_path, django_capture_on_commit_callbacks):
    from coverpick.covers.store import absolute_path, relative_path_for, sha256_bytes

    first_import(tmp_path, LABELS)
    stored = set(CoverImage.objects.values_list("path", flat=True))
    cut_path, garbage_path = tmp_path / "images" / "cut.jpg", tmp_path / "images" / "garbage.jpg"
    whole = io.BytesIO()
    Image.effect_noise((300, 420), 60).convert("RGB").save(whole, "JPEG")
    cut_path.write_bytes(whole.getvalue()[:2000])
    garbage_path.write_bytes(b"not an image at all")
    feed = (tmp_path / "feeds" / "alpha.csv").read_text(encoding="utf-8")
    feed = feed.replace("images/b.jpg", "images/garbage.jpg")

    with django_capture_on_commit_callbacks(execute=True):
        (tmp_path / "feeds" / "alpha.csv").write_text(feed.replace("images/a.jpg", "images/cut.jpg"), encoding="utf-8")
        summary = quiet_import(tmp_path)

    assert len(summary.covers_kept) == 2
    assert (summary.images_stored, summary.images_stored_undecodable) == (0, 0)
    assert "Cover images newly stored: 0," in "\n".join(summary.lines())
    assert set(CoverImage.objects.values_list("path", flat=True)) == stored
    for path, image_format in ((cut_path, "JPEG"), (garbage_path, "")):
        declined = relative_path_for(sha256_bytes(path.read_bytes()), image_format or "bin")
        assert not absolute_path(declined).exists()
    assert all(absolute_path(path).is_file() for path in stored)


@pytest.mark.parametrize("shown_by", ["an earlier import", "an earlier row"])
def test_declined_image_shown_elsewhere_stays_stored(tmp_path, django_capture_on_commit_callbacks, shown_by):
    from coverpick.covers.store import absolute_path

    first_import(tmp_path, LABELS)
    whole = io.BytesIO()
    Image.effect_noise((300, 420), 60).convert("RGB").save(whole, "JPEG")
    (tmp_path / "images" / "cut.jpg").write_bytes(whole.getvalue()[:2000])
    feed_path = tmp_path / "feeds" / "alpha.csv"
    header, *rows = feed_path.read_text(encoding="utf-8").splitlines(keepends=True)
    # Listing 3 is new, so it takes the cut image with its decode error: it has no cover to keep.
    new_row = "3;Gamma Game;PS4;9,00;EUR;images/cut.jpg\n"
    if shown_by == "an earlier import":
        feed_path.write_text(header + "".join(rows) + new_row, encoding="utf-8")
        quiet_import(tmp_path)
        new_row = ""
    rows[0] = rows[0].replace("images/a.jpg", "images/cut.jpg")

    with django_capture_on_commit_callbacks(execute=True):
        # The new listing's row comes first, so it stores the image before listing 1 declines it.
        feed_path.write_text(header + new_row + "".join(rows), encoding="utf-8")
        summary = quiet_import(tmp_path)

    (kept,) = summary.covers_kept
    assert "truncated" in kept.reason
    new_listing_cover = Listing.objects.select_related("cover").get(product_id="3").cover
    assert absolute_path(new_listing_cover.path).is_file()
    assert summary.images_stored == (1 if shown_by == "an earlier row" else 0)


def test_declined_image_of_earlier_labels_stays_stored(tmp_path):
    # Listing 1 first shows a cut image, which a new listing takes as it is, and is labelled for it.
    for name, colour in COVERS.items():
        write_cover(tmp_path / "images" / f"{name}.jpg", colour)
    whole = io.BytesIO()
    Image.effect_noise((300, 420), 60).convert("RGB").save(whole, "JPEG")
    (tmp_path / "images" / "cut.jpg").write_bytes(whole.getvalue()[:2000])
    write_catalogue(tmp_path, "images/cut.jpg", LABELS)
    quiet_import(tmp_path)
    listing = Listing.objects.get(product_id="1")
    cut_cover = listing.cover_id
    write_catalogue(tmp_path, "images/a.jpg", LABELS)
    quiet_import(tmp_path)

    # The cut image comes back, and the import declines it in favour of a.jpg.
    write_catalogue(tmp_path, "images/cut.jpg", LABELS)
    summary = quiet_import(tmp_path)

    assert len(summary.covers_kept) == 1
    # The label still names the image it was given for, so it stays outdated.
    assert manual_row(listing).cover_id == cut_cover
    assert CoverImage.objects.filter(pk=cut_cover).exists()


def test_missing_store_file_keeps_stored_cover(tmp_path):
    from coverpick.covers.store import absolute_path

    first_import(tmp_path, LABELS)
    listing = Listing.objects.get(product_id="1")
    stored_cover = listing.cover_id
    # Listing 1 is given listing 2's image, whose copy in the image store is gone.
    absolute_path(Listing.objects.get(product_id="2").cover.path).unlink()

    write_catalogue(tmp_path, "images/b.jpg", LABELS)
    summary = quiet_import(tmp_path)

    listing.refresh_from_db()
    assert listing.cover_id == stored_cover
    (kept,) = summary.covers_kept
    assert "cannot be read" in kept.reason
    assert Listing.objects.get(product_id="2").cover.decode_error is None


def test_removed_image_not_counted_for_relabelling(tmp_path):
    first_import(tmp_path, LABELS)

    write_catalogue(tmp_path, "", LABELS)
    summary = quiet_import(tmp_path)

    assert Listing.objects.get(product_id="1").cover is None
    assert summary.labels_outdated == 0


def test_queue_without_model_serves_earlier_images(relabelled_game):
    relabelled_game["version"].is_active = False
    relabelled_game["version"].save()

    queue = build_queue()

    assert [(item.listing_id, item.tier) for item in queue] == [(relabelled_game["listing"].pk, TIER_OUTDATED)]


def test_summary_groups_image_problems(tmp_path):
    write_cover(tmp_path / "images" / "b.jpg", (30, 200, 30))
    write_catalogue(tmp_path, "images/missing.jpg", "")

    lines = quiet_import(tmp_path).lines()

    count = next(index for index, line in enumerate(lines) if line.startswith("Cover images newly stored"))
    assert lines[count].endswith("listings without a usable image: 1")
    assert lines[count + 1].startswith("  shop alpha, product id '1':")


def test_import_reports_changed_pinned_image(tmp_path):
    first_import(tmp_path, "")
    pin_cover(Listing.objects.select_related("edition").get(product_id="1"))

    write_catalogue(tmp_path, "images/a2.jpg", "")
    summary = quiet_import(tmp_path)

    assert (summary.labels_outdated, summary.pins_outdated) == (0, 1)
    lines = summary.lines()
    header = next(index for index, line in enumerate(lines) if line.startswith("Pinned listings whose image or platform changed"))
    assert lines[header].startswith("Pinned listings whose image or platform changed in this import: 1.")
    assert lines[header + 1] == "  shop alpha, product id '1': game 'Alpha Game'"


# An edition change: a re-import files the listing under another platform or game.


def test_import_reports_pin_after_a_run_without_image(tmp_path):
    first_import(tmp_path, "")
    pin_cover(Listing.objects.select_related("edition").get(product_id="1"))

    write_catalogue(tmp_path, "", "")
    emptied = quiet_import(tmp_path)
    write_catalogue(tmp_path, "images/a2.jpg", "")
    replaced = quiet_import(tmp_path)

    assert emptied.pins_outdated == 1
    # The pin was given for a.jpg, so it is still outdated once a2.jpg arrives.
    assert replaced.pins_outdated == 1
    assert any(line.startswith("Pinned listings whose image or platform changed in this import: 1.") for line in replaced.lines())


def write_platform_and_title(folder, platform: str, title: str = "Alpha Game"):
    feed = folder / "feeds" / "alpha.csv"
    feed.write_text(feed.read_text(encoding="utf-8").replace("Alpha Game;PS4", f"{title};{platform}"), encoding="utf-8")


def test_edition_change_outdates_staff_labels(tmp_path, staff_client):
    from coverpick.exports import verdict_records

    first_import(tmp_path, LABELS)
    listing = Listing.objects.get(product_id="1")
    record_review(listing, "margins", confirmed=False)
    earlier_edition, cover = listing.edition_id, listing.cover_id

    write_platform_and_title(tmp_path, "Xbox One")
    summary = quiet_import(tmp_path)

    listing = Listing.objects.select_related("edition").get(product_id="1")
    assert (listing.cover_id, listing.platform_family) == (cover, "xbox")
    assert manual_row(listing).edition_id == earlier_edition != listing.edition_id
    assert summary.labels_outdated == 1
    assert [row.listing_id for row in training_rows()] == [Listing.objects.get(product_id="2").pk]
    assert ranked(listing).manual_verdict is None
    assert [item.listing_id for item in build_queue()] == [listing.pk]
    page = staff_client.get(f"/admin/label/covers/?listing={listing.pk}").content.decode()
    assert 'id="outdated-labels"' in page
    assert 'id="outdated-reviews"' in page
    assert "The listing&#x27;s platform or game has changed since" in page
    assert {r["product_id"]: r["staff_labels_for_earlier_edition"] for r in verdict_records()} == {"1": True, "2": False}

    # A new image as well: the page names both changes.
    write_catalogue(tmp_path, "images/a2.jpg", LABELS)
    write_platform_and_title(tmp_path, "Xbox One")
    quiet_import(tmp_path)
    page = staff_client.get(f"/admin/label/covers/?listing={listing.pk}").content.decode()
    assert "The image and the listing&#x27;s platform or game have changed since" in page

    listing = Listing.objects.select_related("edition").get(product_id="1")
    set_labels(listing, ["clean"])
    assert manual_row(listing).edition_id == listing.edition_id
    assert ranked(listing).manual_verdict == "clean"
    assert build_queue() == []


def test_undo_restores_earlier_edition(staff_client, staff_user, tmp_path):
    first_import(tmp_path, LABELS)
    write_platform_and_title(tmp_path, "Xbox One")
    quiet_import(tmp_path)
    listing = Listing.objects.select_related("edition").get(product_id="1")
    earlier_edition = manual_row(listing).edition_id

    session = staff_client.session
    labelling.save_labels(session, listing, ["margins"], staff_user)
    labelling.undo_last(session, staff_user)

    assert (manual_row(listing).labels, manual_row(listing).edition_id) == (["clean"], earlier_edition)
    assert list(listings_to_relabel()) == [listing.pk]


def test_pin_of_listing_moved_to_another_game(tmp_path):
    first_import(tmp_path, "")
    moved = Listing.objects.select_related("edition").get(product_id="1")
    pin_cover(moved)
    assert ranked(moved).is_pinned

    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    summary = quiet_import(tmp_path)

    moved = Listing.objects.select_related("edition").get(product_id="1")
    other = Listing.objects.get(product_id="2")
    assert moved.edition_id == other.edition_id
    assert (summary.pins_outdated, summary.pins_for_other_game) == (0, 1)
    lines = summary.lines()
    header = next(index for index, line in enumerate(lines) if line.startswith("Pinned listings that this import moved"))
    assert lines[header].startswith("Pinned listings that this import moved to another game: 1.")
    assert lines[header + 1] == "  shop alpha, product id '1': pinned in game 'Alpha Game', now in game 'Beta Game'"
    assert not ranked(moved).is_pinned

    # A repeated pin row in the label file does not pin it among its new game's covers.
    (tmp_path / "labels.jsonl").write_text('{"shop": "alpha", "product_id": "1", "source": "manual-pin"}\n', encoding="utf-8")
    quiet_import(tmp_path)
    assert not ranked(moved).is_pinned
    # Pinning it on the game page does.
    pin_cover(moved)
    assert ranked(moved).is_pinned
    assert Verdict.objects.get(listing=other, source=Verdict.SOURCE_MANUAL_PIN).quality == "unknown"


def test_games_of_moved_listing_ranked_again(tmp_path, client):
    from django.core.management import call_command

    from coverpick.catalogue.models import Game
    from coverpick.ranking import compute_primaries

    first_import(tmp_path, "")
    compute_primaries()
    moved = Listing.objects.get(product_id="1")
    alpha = Game.objects.get(title="Alpha Game")
    assert alpha.primary_listing_id == moved.pk
    assert "Alpha Game" in client.get("/").content.decode()

    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    summary = quiet_import(tmp_path)

    # Alpha Game no longer shows the cover of a listing that is now Beta Game's.
    alpha.refresh_from_db()
    assert (alpha.primary_listing_id, alpha.primary_tier) == (None, None)
    beta = Game.objects.get(title="Beta Game")
    assert beta.primary_listing_id in set(Listing.objects.values_list("pk", flat=True))
    assert len(summary.games_ranked) == 2
    assert any(line.startswith("Games whose primary cover was chosen again") and line.endswith(": 2") for line in summary.lines())
    page = client.get("/").content.decode()
    assert "Alpha Game" not in page
    assert "Beta Game" in page
    output = io.StringIO()
    call_command("rank", stdout=output)
    assert "no listings: 1" in output.getvalue()
    assert "None" not in output.getvalue()


def test_stopped_import_keeps_primaries_current(tmp_path, monkeypatch):
    from coverpick.catalogue import importer
    from coverpick.catalogue.models import Game
    from coverpick.ranking import compute_primaries

    first_import(tmp_path, "")
    compute_primaries()
    write_platform_and_title(tmp_path, "PS4", "Beta Game")

    def stopped(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(importer, "import_labels", stopped)
    (tmp_path / "labels.jsonl").write_text(LABELS, encoding="utf-8")
    with pytest.raises(OSError):
        quiet_import(tmp_path)

    moved = Listing.objects.select_related("edition__game").get(product_id="1")
    assert moved.edition.game.title == "Beta Game"
    assert Game.objects.get(title="Alpha Game").primary_listing_id is None


@pytest.mark.parametrize("while_away", ["pin another cover", "unpin"])
def test_pin_left_behind_is_replaced(tmp_path, while_away):
    first_import(tmp_path, "")
    feed = (tmp_path / "feeds" / "alpha.csv").read_text(encoding="utf-8")
    # A third listing of Alpha Game, on another platform, stays in the game while listing 1 is away.
    (tmp_path / "feeds" / "alpha.csv").write_text(feed + "3;Alpha Game;Xbox One;11,00;EUR;images/b2.jpg\n", encoding="utf-8")
    quiet_import(tmp_path)
    away = Listing.objects.select_related("edition").get(product_id="1")
    stays = Listing.objects.select_related("edition").get(product_id="3")
    pin_cover(away)

    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    quiet_import(tmp_path)
    if while_away == "unpin":
        unpin_game(stays.edition.game)
    else:
        pin_cover(stays)
    (tmp_path / "feeds" / "alpha.csv").write_text(feed + "3;Alpha Game;Xbox One;11,00;EUR;images/b2.jpg\n", encoding="utf-8")
    summary = quiet_import(tmp_path)

    # Back in its game, the listing's old pin does not count again.
    pinned = [listing.product_id for listing in annotate_ranking(Listing.objects.filter(edition__game=stays.edition.game)) if listing.is_pinned]
    assert pinned == ([] if while_away == "unpin" else ["3"])
    assert summary.returned_pins == []


def test_pin_back_in_its_game_is_reported(tmp_path):
    first_import(tmp_path, "")
    away = Listing.objects.select_related("edition").get(product_id="1")
    pin_cover(away)
    feed = (tmp_path / "feeds" / "alpha.csv").read_text(encoding="utf-8")

    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    assert quiet_import(tmp_path).pins_for_other_game == 1
    (tmp_path / "feeds" / "alpha.csv").write_text(feed, encoding="utf-8")
    summary = quiet_import(tmp_path)

    assert [(note.product_id, note.detail) for note in summary.returned_pins] == [("1", "game 'Alpha Game'")]
    assert "Pinned listings that this import moved back to the game they were pinned in: 1." in "\n".join(summary.lines())
    assert ranked(away).is_pinned
    # An import that leaves the listing where it is reports nothing.
    assert quiet_import(tmp_path).returned_pins == []


def test_pin_away_and_back_in_one_import(tmp_path):
    first_import(tmp_path, "")
    away = Listing.objects.select_related("edition").get(product_id="1")
    pin_cover(away)
    # alpha.csv, read first, files listing 1 under Beta Game; alpha.jsonl, of
    # the same shop, files it back under Alpha Game in the same import.
    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    record = {"url": "1", "name": "Alpha Game", "console": "PS4", "price_text": "10,00 €", "img": "images/a.jpg"}
    (tmp_path / "feeds" / "alpha.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")

    summary = quiet_import(tmp_path)

    assert summary.returned_pins == []
    assert summary.pins_for_other_game == 0
    assert ranked(away).is_pinned


def test_pin_survives_platform_change(tmp_path):
    first_import(tmp_path, "")
    pinned = Listing.objects.select_related("edition").get(product_id="1")
    pin_cover(pinned)

    write_platform_and_title(tmp_path, "Xbox One")
    summary = quiet_import(tmp_path)

    assert (summary.pins_outdated, summary.pins_for_other_game) == (1, 0)
    assert ranked(pinned).is_pinned


def test_migration_fills_staff_row_covers():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("coverpick.catalogue.migrations.0005_verdict_cover")
    _game, (edition,) = make_game()
    labelled, reviewed = make_listing(edition), make_listing(edition)
    set_labels(labelled, ["clean"])
    record_review(reviewed, "margins", confirmed=True)
    predict(labelled, heads_version(), "clean")
    Verdict.objects.update(cover=None)

    migration.fill_covers(apps, None)

    covers = dict(Verdict.objects.exclude(source=Verdict.SOURCE_CLASSIFIER).values_list("listing_id", "cover_id"))
    assert covers == {labelled.pk: labelled.cover_id, reviewed.pk: reviewed.cover_id}
    assert Verdict.objects.get(source=Verdict.SOURCE_CLASSIFIER).cover_id is None


def test_migration_fills_staff_row_editions():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("coverpick.catalogue.migrations.0006_verdict_edition")
    _game, (first, second) = make_game(platforms=(("ps4", "sony"), ("switch", "nintendo")))
    labelled, pinned = make_listing(first), make_listing(second)
    set_labels(labelled, ["clean"])
    pin_cover(pinned)
    predict(labelled, heads_version(), "clean")
    Verdict.objects.update(edition=None)

    migration.fill_editions(apps, None)

    staff = Verdict.objects.exclude(source=Verdict.SOURCE_CLASSIFIER)
    filled = {(row.listing_id, row.source): row.edition_id for row in staff}
    assert filled == {
        (labelled.pk, Verdict.SOURCE_MANUAL_TRAIN): first.pk,
        (labelled.pk, Verdict.SOURCE_MANUAL_PIN): first.pk,
        (pinned.pk, Verdict.SOURCE_MANUAL_PIN): second.pk,
    }
    assert Verdict.objects.get(source=Verdict.SOURCE_CLASSIFIER).edition_id is None


def test_moved_listing_ranks_without_old_verdict(tmp_path):
    from coverpick.catalogue.models import Game

    first_import(tmp_path, "")
    version = heads_version()
    moved, staying = Listing.objects.get(product_id="1"), Listing.objects.get(product_id="2")
    predict(moved, version, "clean", clean_probability=0.95)
    predict(staying, version, "low_resolution", clean_probability=0.1)
    compute_primaries()

    write_platform_and_title(tmp_path, "PS4", "Beta Game")
    quiet_import(tmp_path)

    # The moved listing lost its verdict with its game, so it no longer beats Beta Game's own cover.
    assert Game.objects.get(title="Beta Game").primary_listing_id == staying.pk


THIRD_ROW = "3;Alpha Game;Xbox One;11,00;EUR;images/b2.jpg\n"


def judged_alpha_game(folder):
    """Import Alpha Game with listing 1 (judged clean, so primary) and listing 3 (judged margins); return listings 1 and 3."""
    first_import(folder, "")
    feed = folder / "feeds" / "alpha.csv"
    feed.write_text(feed.read_text(encoding="utf-8") + THIRD_ROW, encoding="utf-8")
    quiet_import(folder)
    version = heads_version()
    primary, other = Listing.objects.get(product_id="1"), Listing.objects.get(product_id="3")
    predict(primary, version, "clean", clean_probability=0.95)
    predict(other, version, "margins", clean_probability=0.2)
    compute_primaries()
    return primary, other


def test_primary_new_image_ranks_again(tmp_path):
    from coverpick.catalogue.models import Game

    primary, other = judged_alpha_game(tmp_path)
    feed = tmp_path / "feeds" / "alpha.csv"
    alpha = Game.objects.get(title="Alpha Game")
    assert alpha.primary_listing_id == primary.pk

    write_catalogue(tmp_path, "images/a2.jpg", "")
    feed.write_text(feed.read_text(encoding="utf-8") + THIRD_ROW, encoding="utf-8")
    summary = quiet_import(tmp_path)

    alpha.refresh_from_db()
    assert alpha.primary_listing_id == other.pk
    assert summary.games_ranked == {alpha.pk}


def test_other_listing_new_image_keeps_primary(tmp_path):
    judged_alpha_game(tmp_path)
    feed = tmp_path / "feeds" / "alpha.csv"

    feed.write_text(feed.read_text(encoding="utf-8").replace("images/b2.jpg", "images/a2.jpg"), encoding="utf-8")
    summary = quiet_import(tmp_path)

    assert summary.listings_to_predict_again == 1
    assert summary.games_ranked == set()

"""Re-importing a copy of the sample catalogue keeps stored covers and newer staff work.

The tests that import the whole sample catalogue are marked slow, as elsewhere in the suite.
"""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.manual import set_labels
from coverpick.catalogue.models import AuditEvent, CoverImage, Game, Listing, Verdict
from coverpick.ranking import compute_primaries
from tests.conftest import SAMPLE_CATALOGUE
from tests.factories import heads_version, phase1_version, predict
from tests.image_http import send_jpeg, send_status
from tests.test_web_support import _clear_cache, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db

HEADER = "id;name;system;price;currency;image\n"


@pytest.fixture(autouse=True)
def _no_configured_preference(monkeypatch):
    monkeypatch.delenv("COVERPICK_SHOP_PREFERENCE", raising=False)


@pytest.fixture
def catalogue(tmp_path):
    """A copy of the sample catalogue that a test may change."""
    if not (SAMPLE_CATALOGUE / "feeds").is_dir():
        pytest.fail(f"Sample catalogue not found at {SAMPLE_CATALOGUE}; set COVERPICK_SAMPLE_CATALOGUE")
    return shutil.copytree(SAMPLE_CATALOGUE, tmp_path / "catalogue")


def run_import(folder, **options):
    warnings: list[str] = []
    return import_catalogue(folder, warn=warnings.append, **options)


def stored_covers() -> dict[int, int | None]:
    return dict(Listing.objects.values_list("pk", "cover_id"))


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def listing_for(row) -> Listing:
    return Listing.objects.select_related("edition").get(shop__code=row["shop"], product_id=row["product_id"])


def manual_labels(listing):
    row = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).first()
    return row.labels if row else None


def pinned_listing_ids(game_id: int) -> list[int]:
    return list(
        Verdict.objects.filter(
            listing__edition__game_id=game_id, source=Verdict.SOURCE_MANUAL_PIN, quality="clean"
        ).values_list("listing_id", flat=True)
    )


# Covers -------------------------------------------------------------------------


@pytest.mark.slow
def test_unreadable_images_keep_stored_covers(catalogue):
    run_import(catalogue, with_labels=False)
    before = stored_covers()
    compute_primaries()
    primaries = dict(Game.objects.values_list("pk", "primary_listing_id"))
    assert None not in before.values()
    (catalogue / "images").rename(catalogue / "images.away")

    summary = run_import(catalogue, with_labels=False)

    assert stored_covers() == before
    assert not Listing.objects.filter(cover_error__isnull=False).exists()
    compute_primaries()
    assert dict(Game.objects.values_list("pk", "primary_listing_id")) == primaries
    assert summary.image_errors == 0
    assert len(summary.covers_kept) == len(before)
    assert "not found" in summary.covers_kept[0].reason
    assert f"Kept the stored cover for {len(before)} listings whose image could not be read" in "\n".join(summary.lines())


@pytest.mark.slow
def test_kept_cover_replaced_once_image_readable(catalogue):
    feed = catalogue / "feeds" / "pixelcrate.csv"
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    first, second = lines[1].split(","), lines[2].split(",")
    run_import(catalogue, with_labels=False)
    listing = Listing.objects.get(shop__code="pixelcrate", product_id=first[0])
    old_cover = listing.cover_id
    new_cover = Listing.objects.get(shop__code="pixelcrate", product_id=second[0]).cover_id
    assert old_cover != new_cover
    # The feed now points the first listing at the second one's image, but the images are not there.
    first[7] = second[7]
    lines[1] = ",".join(first)
    feed.write_text("".join(lines), encoding="utf-8")
    (catalogue / "images").rename(catalogue / "images.away")

    run_import(catalogue, with_labels=False)
    listing.refresh_from_db()
    assert listing.cover_id == old_cover
    assert listing.image_ref == second[7]
    assert listing.cover_error is None

    (catalogue / "images.away").rename(catalogue / "images")
    summary = run_import(catalogue, with_labels=False)
    listing.refresh_from_db()
    assert listing.cover_id == new_cover
    assert summary.covers_kept == []


def point_first_pixelcrate_row_at(catalogue, image_ref: str) -> str:
    """Rewrite the image column of the first row of the Pixel Crate feed; return that row's product id."""
    feed = catalogue / "feeds" / "pixelcrate.csv"
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    first = lines[1].split(",")
    first[7] = image_ref
    lines[1] = ",".join(first)
    feed.write_text("".join(lines), encoding="utf-8")
    return first[0]


@pytest.mark.slow
def test_undecodable_image_keeps_stored_cover(catalogue):
    run_import(catalogue, with_labels=False)
    (catalogue / "images" / "broken.jpg").write_bytes(b"not an image at all")
    product_id = point_first_pixelcrate_row_at(catalogue, "images/broken.jpg")
    listing = Listing.objects.get(shop__code="pixelcrate", product_id=product_id)
    old_cover = listing.cover_id

    summary = run_import(catalogue, with_labels=False)

    listing.refresh_from_db()
    assert listing.cover_id == old_cover
    assert listing.cover_error is None
    assert listing.image_ref == "images/broken.jpg"
    assert summary.image_errors == 0
    assert len(summary.covers_kept) == 1
    assert "cannot be decoded" in summary.covers_kept[0].reason


@pytest.mark.slow
def test_changed_image_drops_classifier_verdicts(catalogue):
    run_import(catalogue, with_labels=False)
    version, phase1 = heads_version(), phase1_version()
    for listing in Listing.objects.filter(shop__code="pixelcrate"):
        predict(listing, version, quality="clean")
        predict(listing, phase1, platform="sony")
    other = Listing.objects.filter(shop__code="pixelcrate").exclude(cover=None).order_by("pk").last()
    product_id = point_first_pixelcrate_row_at(catalogue, other.image_ref)
    changed = Listing.objects.get(shop__code="pixelcrate", product_id=product_id)
    set_labels(changed, ["clean"])

    summary = run_import(catalogue, with_labels=False)

    changed.refresh_from_db()
    assert changed.cover_id == other.cover_id
    assert not Verdict.objects.filter(listing=changed, source=Verdict.SOURCE_CLASSIFIER).exists()
    assert manual_labels(changed) == ["clean"]
    assert summary.listings_to_predict_again == 1
    unchanged = Listing.objects.filter(shop__code="pixelcrate").exclude(pk=changed.pk)
    assert Verdict.objects.filter(listing__in=unchanged, source=Verdict.SOURCE_CLASSIFIER).count() == 2 * unchanged.count()
    assert "to be predicted again by the next sweep: 1" in "\n".join(summary.lines())


def test_never_stored_cover_still_gets_error(catalogue):
    (catalogue / "images").rename(catalogue / "images.away")

    summary = run_import(catalogue, with_labels=False)

    assert not Listing.objects.filter(cover__isnull=False).exists()
    assert not Listing.objects.filter(cover_error__isnull=True).exists()
    assert summary.image_errors == Listing.objects.count()
    assert summary.covers_kept == []


class SampleImageServer:
    """An http server on 127.0.0.1 that serves sample catalogue images with an ETag."""

    def __init__(self, images, port: int = 0):
        self.seen: list[dict] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append({"path": self.path, "if_none_match": self.headers.get("If-None-Match")})
                body = images.get(self.path)
                if body is None:
                    send_status(self, 404)
                    return
                if self.headers.get("If-None-Match") is not None:
                    # Every conditional request gets 304, so an old ETag sent for a new URL keeps the old cover.
                    send_status(self, 304)
                    return
                send_jpeg(self, body, f'"{self.path}"')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_title_in_capitals_takes_mixed_case(tmp_path):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    image = (SAMPLE_CATALOGUE / "images" / "pixelcrate" / "0121.jpg").read_bytes()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "cover.jpg").write_bytes(image)
    (feeds / "loud.csv").write_text(HEADER + "1;RAYMAN ORIGINS;PS3;9,99;EUR;images/cover.jpg\n", encoding="utf-8")
    summary = run_import(tmp_path)
    assert summary.image_errors == 0
    assert Game.objects.get().title == "RAYMAN ORIGINS"

    (feeds / "quiet.csv").write_text(HEADER + "7;Rayman Origins - Standard Edition;Wii;8,99;EUR;images/cover.jpg\n", encoding="utf-8")
    run_import(tmp_path)
    assert Game.objects.get().title == "Rayman Origins"

    # The capitals do not come back on the next import, whichever file is read first.
    run_import(tmp_path)
    assert Game.objects.get().title == "Rayman Origins"


@pytest.fixture
def sample_images():
    return {
        "/one.jpg": (SAMPLE_CATALOGUE / "images" / "pixelcrate" / "0121.jpg").read_bytes(),
        "/two.jpg": (SAMPLE_CATALOGUE / "images" / "pixelcrate" / "0090.jpg").read_bytes(),
    }


def write_url_feed(folder, base: str, path: str):
    feeds = folder / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / "urlshop.csv").write_text(HEADER + f"1;Url Test Game;PS4;19,99;EUR;{base}{path}\n", encoding="utf-8")


def test_image_server_down_keeps_cover(tmp_path, sample_images, monkeypatch):
    monkeypatch.setenv("COVERPICK_FETCH_ALLOWED_HOSTS", "127.0.0.1")
    server = SampleImageServer(sample_images)
    base = f"http://127.0.0.1:{server.port}"
    write_url_feed(tmp_path, base, "/one.jpg")
    run_import(tmp_path)
    listing = Listing.objects.get(product_id="1")
    first_cover = listing.cover_id
    assert first_cover is not None
    server.stop()

    summary = run_import(tmp_path)
    listing.refresh_from_db()
    assert listing.cover_id == first_cover
    assert listing.cover_error is None
    assert listing.image_etag == '"/one.jpg"'
    assert len(summary.covers_kept) == 1
    assert summary.image_errors == 0

    # The URL changes while the server is down. When the server is back, the
    # next import must fetch the new URL in full instead of sending the old ETag.
    write_url_feed(tmp_path, base, "/two.jpg")
    run_import(tmp_path)
    listing.refresh_from_db()
    assert listing.cover_id == first_cover
    assert listing.image_etag == ""
    server = SampleImageServer(sample_images, port=server.port)
    try:
        summary = run_import(tmp_path)
    finally:
        server.stop()
    listing.refresh_from_db()
    assert server.seen[-1] == {"path": "/two.jpg", "if_none_match": None}
    assert listing.cover_id != first_cover
    assert listing.cover_id == CoverImage.objects.get(size_bytes=len(sample_images["/two.jpg"])).pk
    assert summary.covers_kept == []


# Labels and pins ---------------------------------------------------------------------


@pytest.mark.slow
def test_reimport_keeps_newer_staff_labels_and_pins(catalogue, staff_client, staff_user):
    labels_path = catalogue / "labels.jsonl"
    rows = read_rows(labels_path)
    first = run_import(catalogue)
    assert first.labels_imported == len(rows)

    label_rows = [row for row in rows if row["source"] == "manual-train" and row["labels"] != ["clean"]]
    relabelled, changed_in_file = listing_for(label_rows[0]), listing_for(label_rows[1])
    response = staff_client.post("/admin/label/covers/save/", {"listing": relabelled.pk, "labels": ["clean"]})
    assert response.status_code < 400

    pin_rows = [row for row in rows if row["source"] == "manual-pin"]
    pinned_by_file = listing_for(pin_rows[0])
    game_id = pinned_by_file.edition.game_id
    staff_choice = Listing.objects.filter(edition__game_id=game_id).exclude(pk=pinned_by_file.pk).first()
    assert staff_choice is not None
    staff_client.post(f"/games/{game_id}/pin/", {"listing": staff_choice.pk})
    unpinned_game = listing_for(pin_rows[1]).edition.game_id
    staff_client.post(f"/games/{unpinned_game}/unpin/")
    assert pinned_listing_ids(game_id) == [staff_choice.pk]
    assert pinned_listing_ids(unpinned_game) == []

    # A row the import wrote itself still follows the file.
    for row in rows:
        if row is label_rows[1]:
            row["labels"] = ["wrong_game"]
    write_rows(labels_path, rows)

    summary = run_import(catalogue)

    assert manual_labels(relabelled) == ["clean"]
    assert AuditEvent.objects.filter(listing=relabelled, action="label").order_by("-pk").first().user == staff_user
    assert pinned_listing_ids(game_id) == [staff_choice.pk]
    assert pinned_listing_ids(unpinned_game) == []
    assert manual_labels(changed_in_file) == ["wrong_game"]
    assert summary.labels_kept == 3
    assert summary.labels_imported == 1
    assert summary.labels_already_stored == len(rows) - 4
    assert summary.label_lines_refused == 0
    assert f"Label rows imported: 1, already stored: {len(rows) - 4}, kept newer staff labels: 3, refused: 0" in summary.lines()


@pytest.mark.slow
def test_reimport_follows_file_without_staff_work(catalogue):
    first = run_import(catalogue)
    labels_before = dict(
        Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("listing_id", "labels")
    )

    summary = run_import(catalogue)

    assert summary.labels_imported == 0
    assert summary.labels_already_stored == first.labels_imported
    assert summary.labels_kept == 0
    assert dict(Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("listing_id", "labels")) == labels_before


# Withdrawn products --------------------------------------------------------------


@pytest.mark.slow
def test_product_dropped_from_feed_leaves_best_price(catalogue):
    from coverpick.web.prices import is_available

    feed = catalogue / "feeds" / "lootlane.jsonl"
    rows = read_rows(feed)
    run_import(catalogue, with_labels=False)
    dropped = Listing.objects.get(shop__code="lootlane", product_id=rows[0]["url"])
    assert is_available(dropped)

    write_rows(feed, rows[1:])
    summary = run_import(catalogue, with_labels=False)

    dropped.refresh_from_db()
    assert dropped.in_stock is False
    assert not is_available(dropped)
    assert summary.listings_withdrawn == 1
    assert "Listings no longer in their shop's feed, marked out of stock: 1" in summary.lines()
    assert Listing.objects.filter(shop__code="lootlane", in_stock=False).count() == 1

    write_rows(feed, rows)
    summary = run_import(catalogue, with_labels=False)
    dropped.refresh_from_db()
    assert is_available(dropped)
    assert summary.listings_withdrawn == 0


@pytest.mark.slow
def test_truncated_feed_withdraws_nothing(catalogue):
    feed = catalogue / "feeds" / "consolecorner.xml"
    text = feed.read_text(encoding="utf-8")
    run_import(catalogue, with_labels=False)
    offered = Listing.objects.filter(shop__code="consolecorner").exclude(in_stock=False).count()

    # A transfer cut off halfway: the reader stops at the broken XML.
    feed.write_text(text[: len(text) // 2], encoding="utf-8")
    warnings: list[str] = []
    summary = import_catalogue(catalogue, with_labels=False, warn=warnings.append)

    assert summary.listings_withdrawn == 0
    assert Listing.objects.filter(shop__code="consolecorner").exclude(in_stock=False).count() == offered
    assert any("listings in stock was marked out of stock." in warning for warning in warnings)


@pytest.mark.slow
def test_feed_cut_mid_row_withdraws_nothing(catalogue):
    feed = catalogue / "feeds" / "pixelcrate.csv"
    text = feed.read_text(encoding="utf-8")
    run_import(catalogue, with_labels=False)
    offered = Listing.objects.filter(shop__code="pixelcrate").exclude(in_stock=False).count()

    # Cut a few fields into a row at four fifths of the file, as a stopped transfer leaves it.
    # The fifth of the listings lost is too few for the mass-withdrawal guard, so only the cut check keeps them.
    cut = text.index("\n", len(text) * 4 // 5) + 20
    feed.write_text(text[:cut], encoding="utf-8")
    warnings: list[str] = []
    summary = import_catalogue(catalogue, with_labels=False, warn=warnings.append)

    assert summary.listings_withdrawn == 0
    assert Listing.objects.filter(shop__code="pixelcrate").exclude(in_stock=False).count() == offered
    assert any("does not end with a line break, so its last row may be cut off" in warning for warning in warnings)


@pytest.mark.slow
def test_mass_withdrawal_needs_option(catalogue):
    feed = catalogue / "feeds" / "lootlane.jsonl"
    rows = read_rows(feed)
    run_import(catalogue, with_labels=False)
    kept = 5
    write_rows(feed, rows[:kept])

    warnings: list[str] = []
    summary = import_catalogue(catalogue, with_labels=False, warn=warnings.append)

    assert summary.listings_withdrawn == 0
    assert not Listing.objects.filter(shop__code="lootlane", in_stock=False).exists()
    assert any(f"the feed lacks {len(rows) - kept} of its shop's {len(rows)} listings in stock" in warning for warning in warnings)

    summary = run_import(catalogue, with_labels=False, allow_mass_withdrawal=True)

    assert summary.listings_withdrawn == len(rows) - kept
    assert Listing.objects.filter(shop__code="lootlane", in_stock=False).count() == len(rows) - kept


@pytest.mark.slow
def test_json_feed_without_final_newline_withdraws(catalogue):
    feed = catalogue / "feeds" / "boxhaus.json"
    document = json.loads(feed.read_text(encoding="utf-8"))
    run_import(catalogue, with_labels=False)
    dropped = document["products"].pop(0)
    # A JSON document that parses is complete, final line break or not.
    feed.write_text(json.dumps(document), encoding="utf-8")

    summary = run_import(catalogue, with_labels=False)

    assert summary.listings_withdrawn == 1
    assert Listing.objects.get(shop__code="boxhaus", product_id=dropped["sku"]).in_stock is False


@pytest.mark.slow
def test_csv_without_final_newline_withdraws_nothing(catalogue):
    feed = catalogue / "feeds" / "quickkeys.csv"
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    run_import(catalogue, with_labels=False)
    # One product dropped, and the file cut inside the last field of its last row, which still parses.
    feed.write_text("".join(lines[:1] + lines[2:])[:-6], encoding="utf-8")

    warnings: list[str] = []
    summary = import_catalogue(catalogue, with_labels=False, warn=warnings.append)

    assert summary.listings_withdrawn == 0
    assert not Listing.objects.filter(shop__code="quickkeys", in_stock=False).exists()
    assert any("does not end with a line break, so its last row may be cut off" in warning for warning in warnings)

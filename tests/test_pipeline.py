"""The whole pipeline on the sample catalogue: import, train, sweep, rank, export."""

import csv
import io
import json
import shutil

import pytest
from django.core.management import call_command

from coverpick.catalogue.importer import IMAGE_PROBLEMS_SHOWN, import_catalogue
from coverpick.catalogue.manual import set_labels
from coverpick.catalogue.models import ClassifierVersion, CoverImage, Game, Listing, Verdict
from coverpick.labels import LABEL_CLASSES
from coverpick.model.dataset import LabelLintError, lint_labels, training_rows
from coverpick.model.sweep import sweep
from coverpick.model.train import build_training_data
from coverpick.web.queue import TIER_NEW_TEXT, build_queue, version_new_text_level
from tests.conftest import HOSTILE_IMAGES

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def feed_data_rows(catalogue) -> int:
    """Count data rows in the sample's feeds independently of the readers."""
    feeds = catalogue / "feeds"
    total = 0
    for path in feeds.iterdir():
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".csv":
            total += len([line for line in text.splitlines()[1:] if line.strip()])
        elif path.suffix == ".jsonl":
            total += len([line for line in text.splitlines() if line.strip()])
        elif path.suffix == ".json":
            total += len(json.loads(text)["products"])
        elif path.suffix == ".xml":
            total += text.count("<item>")
    return total


def test_listing_count_is_feed_rows_minus_refused(trained_sample, sample_catalogue):
    summary = trained_sample["import"]
    assert summary.rows_read == feed_data_rows(sample_catalogue)
    assert Listing.objects.count() == summary.rows_read - summary.rows_refused
    assert Game.objects.count() == 254


def test_every_listing_has_a_verdict_and_every_game_a_primary(trained_sample):
    version = trained_sample["version"]
    assert Verdict.objects.filter(classifier_version=version).count() == Listing.objects.count()
    assert not Game.objects.filter(primary_listing__isnull=True).exists()


def test_reimport_updates_without_duplicates(trained_sample, sample_catalogue):
    counts = (Listing.objects.count(), CoverImage.objects.count(), Verdict.objects.count(), Game.objects.count())
    summary = import_catalogue(sample_catalogue)
    assert summary.listings_created == 0
    # The same feeds again: nothing in any row changed, so nothing is written.
    assert (summary.listings_updated, summary.listings_unchanged) == (0, counts[0])
    assert (Listing.objects.count(), CoverImage.objects.count(), Verdict.objects.count(), Game.objects.count()) == counts


def test_resweep_replaces_rows_without_duplicates(trained_sample):
    version = trained_sample["version"]
    before = Verdict.objects.filter(classifier_version=version).count()
    pending = sweep(apply=True)
    assert pending.selected == 0
    again = sweep(rescan_all=True, apply=True)
    assert again.selected == Listing.objects.count()
    assert Verdict.objects.filter(classifier_version=version).count() == before
    # The heads' rows and phase 1's platform rows are counted apart.
    assert again.written == again.predicted + again.errors == before
    assert again.phase1_written > 0


def test_sweep_repredicts_a_new_listings_game(trained_sample):
    """The listings of a game get fresh verdicts when one of its listings is swept, because each reads the others."""
    version = trained_sample["version"]
    edition = next(e for e in Listing.objects.values_list("edition", flat=True).distinct() if Listing.objects.filter(edition=e).count() >= 3)
    new, *siblings = Listing.objects.filter(edition=edition).order_by("pk")
    game_listings = Listing.objects.filter(edition__game=new.edition.game, cover__decode_error__isnull=True, cover__isnull=False)
    Verdict.objects.filter(classifier_version=version, listing__in=game_listings).exclude(listing=new).update(platform_confidence=-1.0)
    Verdict.objects.filter(classifier_version=version, listing=new).delete()

    summary = sweep(apply=True)

    assert summary.selected == 1
    assert summary.refreshed == game_listings.count() - 1
    assert summary.predicted == game_listings.count()
    assert Verdict.objects.filter(classifier_version=version, listing=new).count() == 1
    assert not Verdict.objects.filter(classifier_version=version, platform_confidence=-1.0).exists()
    assert Verdict.objects.filter(classifier_version=version, listing__in=siblings).count() == len(siblings)
    assert "compared with each other: " + str(summary.refreshed) + "." in "\n".join(summary.lines())


def test_sweep_without_apply_writes_nothing(trained_sample):
    version = trained_sample["version"]
    Verdict.objects.filter(classifier_version=version, listing__shop__code="quickkeys").delete()
    before = Verdict.objects.count()
    summary = sweep(apply=False)
    assert summary.selected > 0
    assert Verdict.objects.count() == before


def test_clean_threshold_turns_clean_into_unknown(trained_sample, monkeypatch):
    normal = sweep(rescan_all=True, apply=False)
    assert normal.verdicts["clean"] > 0
    monkeypatch.setenv("CLEAN_THRESHOLD", "1.0")
    strict = sweep(rescan_all=True, apply=False)
    assert strict.verdicts["clean"] == 0
    assert strict.verdicts["unknown"] >= normal.verdicts["unknown"] + normal.verdicts["clean"]


def test_platform_threshold_makes_the_head_abstain(trained_sample, monkeypatch):
    monkeypatch.setenv("PLATFORM_THRESHOLD", "0.0")
    lenient = sweep(rescan_all=True, apply=False)
    assert lenient.platforms["unknown"] == 0
    monkeypatch.setenv("PLATFORM_THRESHOLD", "0.999")
    strict = sweep(rescan_all=True, apply=False)
    assert strict.platforms["unknown"] > lenient.platforms["unknown"]


def test_stored_verdicts_use_class_names_verbatim(trained_sample):
    version = trained_sample["version"]
    names = set(Verdict.objects.filter(classifier_version=version).values_list("quality", flat=True))
    assert names <= set(LABEL_CLASSES) | {"unknown"}
    for probs in Verdict.objects.filter(classifier_version=version).values_list("quality_probs", flat=True)[:20]:
        # PostgreSQL's jsonb does not keep key order, so compare the names only.
        assert set(probs) == set(LABEL_CLASSES)


def test_relabel_then_retrain_uses_the_new_label(trained_sample):
    listing = Listing.objects.filter(verdicts__source=Verdict.SOURCE_MANUAL_TRAIN, verdicts__labels=["clean"]).first()
    set_labels(listing, ["placeholder"])
    rows = {row.listing_id: row.labels for row in training_rows()}
    assert rows[listing.pk] == ["placeholder"]
    data = build_training_data(trained_sample["version"].backbone)
    position = list(data.catalogue.listing_ids).index(listing.pk)
    row = list(data.rows).index(position)
    assert data.targets[row, LABEL_CLASSES.index("placeholder")] == 1.0
    assert data.targets[row, LABEL_CLASSES.index("clean")] == 0.0


def test_label_lint_names_unknown_classes(trained_sample):
    listing = Listing.objects.first()
    Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).delete()
    Verdict.objects.create(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN, labels=["holographic"], quality="holographic")
    with pytest.raises(LabelLintError) as caught:
        lint_labels()
    assert "'holographic' (1 rows)" in str(caught.value)
    with pytest.raises(Exception) as command_error:
        call_command("train")
    assert "holographic" in str(command_error.value)


def test_export_verdicts_has_one_object_per_listing(trained_sample):
    out = io.StringIO()
    call_command("export", "verdicts", stdout=out, stderr=io.StringIO())
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == Listing.objects.count()
    keys = {"shop", "product_id", "game", "platform_declared", "quality", "quality_probs", "text_novelty", "platform",
            "platform_probs", "classifier_version", "tier", "error"}
    assert keys <= set(records[0])
    assert any(isinstance(r["text_novelty"], float) for r in records)
    assert {r["classifier_version"] for r in records} == {trained_sample["version"].name}


def test_export_primaries_has_one_object_per_game(trained_sample):
    out = io.StringIO()
    call_command("export", "primaries", stdout=out, stderr=io.StringIO())
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == Game.objects.count()
    assert set(records[0]) == {"game", "shop", "product_id", "tier"}


def test_hostile_images_get_a_verdict_or_a_worded_error(trained_sample, tmp_path):
    catalogue = tmp_path / "hostile"
    (catalogue / "feeds").mkdir(parents=True)
    (catalogue / "images").mkdir()
    names = sorted(p.name for p in HOSTILE_IMAGES.iterdir() if p.name != "INDEX.tsv")
    assert len(names) >= 30
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["aw_product_id", "product_name", "merchant_category", "platform", "edition", "search_price",
                     "currency", "merchant_image_url", "ean", "in_stock", "deep_link"])
    for number, name in enumerate(names):
        shutil.copy(HOSTILE_IMAGES / name, catalogue / "images" / name)
        writer.writerow([f"H{number}", f"Hostile Test Game {number}", "Video Games > PS4", "PS4", "Standard", "9.99",
                         "GBP", f"images/{name}", "", "1", f"https://shop.example/p/{number}"])
    (catalogue / "feeds" / "hostileshop.csv").write_text(buffer.getvalue())
    summary = import_catalogue(catalogue)
    assert summary.rows_refused == 0
    result = sweep(apply=True)
    version = trained_sample["version"]
    for listing in Listing.objects.filter(shop__code="hostileshop").select_related("cover"):
        verdict = Verdict.objects.get(listing=listing, classifier_version=version)
        if verdict.quality is None:
            assert verdict.error, listing.image_ref
            assert len(verdict.error.split()) >= 3, verdict.error
        else:
            assert verdict.quality in set(LABEL_CLASSES) | {"unknown"}
    assert result.errors >= 6
    named = [line for line in result.lines() if line.startswith("  shop hostileshop, product id 'H")]
    assert len(named) == min(result.errors, IMAGE_PROBLEMS_SHOWN)
    assert result.errors == Verdict.objects.filter(
        classifier_version=version, listing__shop__code="hostileshop", quality__isnull=True
    ).count()


def test_active_version_is_unique(trained_sample):
    assert ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).count() == 1


def truth_labels(catalogue) -> dict:
    """Return the reference labels of the catalogue's listings by (shop, product_id)."""
    rows = [json.loads(line) for line in (catalogue / "truth.jsonl").read_text().splitlines() if line.strip()]
    return {(row["shop"], row["product_id"]): row["labels"] for row in rows}


def test_sweep_stores_text_novelty(trained_sample, sample_catalogue):
    """Covers with a notice carry more text that their siblings lack than clean covers do."""
    truth = truth_labels(sample_catalogue)
    verdicts = Verdict.objects.filter(classifier_version=trained_sample["version"], quality__isnull=False)
    measured = {"clean": [], "notice": []}
    for shop, product_id, novelty in verdicts.values_list("listing__shop__code", "listing__product_id", "text_novelty"):
        labels = truth.get((shop, product_id), [])
        if novelty is None:
            continue
        if labels == ["clean"]:
            measured["clean"].append(novelty)
        elif {"gkc", "ciab", "placeholder", "multi_platform"} & set(labels):
            measured["notice"].append(novelty)

    assert sum(len(values) for values in measured.values()) > 0.4 * verdicts.count()
    assert len(measured["notice"]) > 100
    clean_median = sorted(measured["clean"])[len(measured["clean"]) // 2]
    notice_median = sorted(measured["notice"])[len(measured["notice"]) // 2]
    assert notice_median > clean_median + 1.0


def test_new_text_tier_finds_notices(trained_sample, sample_catalogue):
    """The new-text tier serves clean verdicts whose covers carry a notice more often than clean verdicts at large."""
    truth = truth_labels(sample_catalogue)
    version = trained_sample["version"]
    keys = {pk: (shop, product_id) for pk, shop, product_id in Listing.objects.values_list("pk", "shop__code", "product_id")}
    notices = {"gkc", "ciab", "placeholder", "multi_platform"}
    level = version_new_text_level(version)
    labelled = set(Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("listing_id", flat=True))
    clean_verdicts = {
        listing_id: novelty
        for listing_id, novelty in Verdict.objects.filter(classifier_version=version, quality="clean").values_list("listing_id", "text_novelty")
        if listing_id not in labelled
    }

    queued = [item.listing_id for item in build_queue(version=version) if item.tier == TIER_NEW_TEXT]

    assert level is not None
    assert queued
    for listing_id in queued:
        assert clean_verdicts[listing_id] > level
    share_queued = sum(bool(notices & set(truth[keys[i]])) for i in queued) / len(queued)
    share_clean = sum(bool(notices & set(truth[keys[i]])) for i in clean_verdicts) / len(clean_verdicts)
    assert share_queued > 2 * share_clean

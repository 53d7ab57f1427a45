"""Import a catalogue folder: every feed in ``feeds/``, their cover images, and ``labels.jsonl``.

Re-importing updates listings in place (keyed by shop and product id) and
never duplicates rows. A bad feed row or label line is reported with its file,
line and reason, skipped, and counted in the summary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from coverpick import conf
from coverpick.catalogue.feeds import FeedProblem, FeedRow, iter_feed_files, read_feed
from coverpick.catalogue.manual import pin_cover, record_review, set_labels
from coverpick.catalogue.models import Edition, Game, Listing, Shop, Verdict
from coverpick.catalogue.normalise import game_key, platform_family
from coverpick.covers.fetch import FetchError, fetch_image
from coverpick.covers.store import CoverSourceError, load_reference, store_image_created
from coverpick.labels import LabelError

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    rows_read: int = 0
    rows_refused: int = 0
    listings_created: int = 0
    listings_updated: int = 0
    images_stored: int = 0
    image_errors: int = 0
    labels_imported: int = 0
    label_lines_refused: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def listings(self) -> int:
        return self.listings_created + self.listings_updated

    def lines(self) -> list[str]:
        return [
            f"Feed rows read: {self.rows_read}, refused: {self.rows_refused}",
            f"Listings created: {self.listings_created}, updated: {self.listings_updated}",
            f"Cover images newly stored: {self.images_stored}, listings without a usable image: {self.image_errors}",
            f"Label rows imported: {self.labels_imported}, refused: {self.label_lines_refused}",
        ]


Reporter = Callable[[str], None]


def import_catalogue(
    catalogue_dir: Path, *, with_labels: bool = True, warn: Reporter | None = None, progress: bool = False
) -> ImportSummary:
    """Import every feed of a catalogue folder, then its labels unless ``with_labels`` is false."""
    catalogue_dir = Path(catalogue_dir)
    feeds_dir = catalogue_dir / "feeds"
    if not feeds_dir.is_dir():
        raise FileNotFoundError(
            f"No feeds/ folder in {catalogue_dir}. A catalogue folder holds feeds/ (one file per shop) "
            "and, optionally, labels.jsonl."
        )
    summary = ImportSummary()
    report = _reporter(summary, warn)
    _apply_configured_preference()
    for feed_path in iter_feed_files(feeds_dir):
        _import_feed(feed_path, catalogue_dir, summary, report, progress)
    labels_path = catalogue_dir / "labels.jsonl"
    if with_labels and labels_path.is_file():
        import_labels(labels_path, summary, report)
    return summary


def _reporter(summary: ImportSummary, warn: Reporter | None) -> Reporter:
    def report(message: str) -> None:
        summary.problems.append(message)
        logger.warning("%s", message)
        if warn is not None:
            warn(message)

    return report


def _apply_configured_preference() -> None:
    for rank, code in enumerate(conf.shop_preference()):
        Shop.objects.update_or_create(code=code, defaults={"preference": rank})


def _import_feed(feed_path: Path, catalogue_dir: Path, summary: ImportSummary, report: Reporter, progress: bool) -> None:
    shop, _ = Shop.objects.get_or_create(code=feed_path.stem, defaults={"name": feed_path.stem})
    items = read_feed(feed_path)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"import {feed_path.name}", unit="row")
    for item in items:
        summary.rows_read += 1
        if isinstance(item, FeedProblem):
            summary.rows_refused += 1
            report(str(item))
            continue
        try:
            with transaction.atomic():
                _store_row(shop, item, catalogue_dir, summary)
        except (ValueError, LabelError) as exc:
            summary.rows_refused += 1
            report(f"{item.source_file} line {item.line}: {exc}; row skipped")


def _store_row(shop: Shop, row: FeedRow, catalogue_dir: Path, summary: ImportSummary) -> None:
    if not row.product_id:
        raise ValueError("missing product id")
    key = game_key(row.title)
    if not key:
        raise ValueError(f"title {row.title!r} has no letters or digits to match a game by")
    family, platform_code = platform_family(row.platform_raw)
    game, _ = Game.objects.get_or_create(key=key, defaults={"title": _display_title(row.title)})
    edition, _ = Edition.objects.get_or_create(game=game, platform=platform_code, defaults={"family": family})
    previous = Listing.objects.filter(shop=shop, product_id=row.product_id).select_related("cover").first()
    cover, cover_error, validators = _store_cover(row, catalogue_dir, summary, previous)
    values = {
        "edition": edition,
        "title": row.title,
        "edition_text": row.edition_text or "",
        "platform_raw": row.platform_raw,
        "platform_family": family,
        "price": row.price,
        "currency": row.currency or "",
        "in_stock": row.in_stock,
        "gtin": row.gtin or "",
        "url": row.url or "",
        "image_ref": row.image_ref or "",
        "cover": cover,
        "cover_error": cover_error,
        "image_etag": validators[0],
        "image_last_modified": validators[1],
    }
    _, created = Listing.objects.update_or_create(shop=shop, product_id=row.product_id, defaults=values)
    if created:
        summary.listings_created += 1
    else:
        summary.listings_updated += 1


def _display_title(title: str) -> str:
    return " ".join(title.replace("™", "").replace("®", "").split())


def _store_cover(row: FeedRow, catalogue_dir: Path, summary: ImportSummary, previous: Listing | None):
    """Store the row's image; return (cover, error, (etag, last_modified)).

    An http(s) image that the listing already had is fetched conditionally,
    and a 304 keeps the stored cover without downloading it again.
    """
    no_validators = ("", "")
    if not row.image_ref:
        summary.image_errors += 1
        return None, "the feed row has no image reference", no_validators
    is_url = row.image_ref.startswith(("http://", "https://"))
    try:
        if is_url:
            data, validators, kept = _fetch_cover(row.image_ref, previous)
            if kept is not None:
                return kept, None, validators
        else:
            data, validators = load_reference(row.image_ref, catalogue_dir), no_validators
    except OSError as exc:
        summary.image_errors += 1
        message = str(exc) if isinstance(exc, (CoverSourceError, FetchError)) else f"could not read image {row.image_ref!r}: {exc}"
        return None, message, no_validators
    cover, created = store_image_created(data)
    if created:
        summary.images_stored += 1
    if cover.decode_error:
        summary.image_errors += 1
    return cover, None, validators


def _fetch_cover(url: str, previous: Listing | None):
    """Fetch an image URL; return (bytes or None, validators, the previous cover when unchanged)."""
    unchanged_candidate = previous is not None and previous.image_ref == url and previous.cover is not None
    result = fetch_image(
        url,
        etag=(previous.image_etag or None) if unchanged_candidate else None,
        last_modified=(previous.image_last_modified or None) if unchanged_candidate else None,
    )
    validators = (result.etag or "", result.last_modified or "")
    if result.not_modified:
        return None, validators, previous.cover
    return result.content, validators, None


def import_labels(labels_path: Path, summary: ImportSummary, report: Reporter) -> None:
    """Import labels.jsonl: manual-train label sets, reviews and pins, each validated."""
    listings = {(shop, pid): listing_id for shop, pid, listing_id in Listing.objects.values_list("shop__code", "product_id", "pk")}
    with open(labels_path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{labels_path.name} line {number}"
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                key = (record.get("shop"), str(record.get("product_id", "")))
                if key not in listings:
                    raise ValueError(f"no listing for shop {key[0]!r} and product id {key[1]!r}; import its feed first")
                listing = Listing.objects.select_related("edition").get(pk=listings[key])
                _import_label_record(listing, record)
            except (ValueError, LabelError) as exc:
                summary.label_lines_refused += 1
                report(f"{where}: {exc}; line skipped")
                continue
            summary.labels_imported += 1


def _import_label_record(listing: Listing, record: dict) -> None:
    source = record.get("source")
    if source == Verdict.SOURCE_MANUAL_TRAIN:
        labels = record.get("labels")
        if not isinstance(labels, list):
            raise ValueError(f"'labels' must be a list of class names, got {labels!r}")
        set_labels(listing, labels, note="import")
    elif source == Verdict.SOURCE_REVIEW:
        decision = record.get("verdict")
        if decision not in (Verdict.REVIEW_CONFIRMED, Verdict.REVIEW_REJECTED):
            raise ValueError(f"review verdict must be 'confirmed' or 'rejected', got {decision!r}")
        record_review(listing, str(record.get("predicted")), decision == Verdict.REVIEW_CONFIRMED)
    elif source == Verdict.SOURCE_MANUAL_PIN:
        already = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_PIN, quality="clean").exists()
        if not already:
            pin_cover(listing)
    else:
        raise ValueError(f"unknown source {source!r}; expected manual-train, review or manual-pin")

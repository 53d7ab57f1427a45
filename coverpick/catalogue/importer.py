"""Import a catalogue folder: every feed in ``feeds/``, their cover images, and ``labels.jsonl``.

Re-importing updates listings in place (keyed by shop and product id) and
never duplicates rows. A bad feed row or label line is reported with its file,
line and reason, skipped, and counted in the summary. So is a feed file whose
format cannot be identified or read. A shop row is created only for a feed
that yields at least one stored listing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from coverpick import conf
from coverpick.catalogue.feeds import FEED_EXTENSIONS, FeedFormatError, FeedProblem, FeedRow, iter_feed_files, read_feed
from coverpick.catalogue.feeds.records import json_error_text
from coverpick.catalogue.manual import IMPORT_NOTE, pin_changed_by_staff, pin_cover, record_review, set_labels
from coverpick.catalogue.models import (
    CoverImage,
    Edition,
    Game,
    Listing,
    Shop,
    Verdict,
    for_other_game,
    for_outdated,
    listings_to_relabel,
    save_shop_order,
)
from coverpick.catalogue.normalise import better_cased, display_title, game_key, is_iso_currency, platform_family
from coverpick.covers.fetch import FetchError, check_fetch_settings, fetch_image
from coverpick.covers.store import CoverSourceError, check_pixels, delete_stored_file, load_reference, store_image_created
from coverpick.labels import LabelError, validate_label_set
from coverpick.ranking import compute_primaries

# Listings marked out of stock per UPDATE, under SQLite's limit on query parameters.
WITHDRAW_BATCH = 500
# A feed that would mark more than this share of its shop's listings out of
# stock, and at least WITHDRAW_GUARD_MIN of them, is taken for a cut export
# and marks none, unless the import is run with --allow-mass-withdrawal.
WITHDRAW_GUARD_SHARE = 0.5
WITHDRAW_GUARD_MIN = 10
# Feed formats read line by line, where a file cut short can still end in a row that parses.
# A cut JSON or XML document fails to parse instead.
LINE_FEED_SUFFIXES = (".csv", ".jsonl", ".ndjson")
# Listing ids per query when counting staff rows of changed images.
ID_BATCH = 500

logger = logging.getLogger(__name__)

# Listings without a usable image that the summary names one by one. The rest
# are counted in an "and N more" line.
IMAGE_PROBLEMS_SHOWN = 20


class ImageProblem(NamedTuple):
    """A stored listing that has no usable cover image, and why."""

    shop: str
    product_id: str
    reason: str


class PinNote(NamedTuple):
    """A pinned listing that an import changed, and the games concerned."""

    shop: str
    product_id: str
    detail: str


@dataclass
class ImportSummary:
    feed_files_read: int = 0
    feed_files_skipped: int = 0
    rows_read: int = 0
    rows_refused: int = 0
    listings_created: int = 0
    listings_updated: int = 0
    # Stored listings whose feed row matched what was stored, so nothing was written.
    listings_unchanged: int = 0
    images_stored: int = 0
    # Of images_stored, those that do not decode. A new listing keeps such an
    # image with the reason, which the game page and `sweep --rescan-verdicts error` show.
    images_stored_undecodable: int = 0
    image_errors: int = 0
    image_problems: list[ImageProblem] = field(default_factory=list)
    # Listings whose image could not be read, fetched or decoded on this import, so
    # they kept the cover stored by an earlier one.
    covers_kept: list[ImageProblem] = field(default_factory=list)
    # Stored listings whose cover or edition changed, so their classifier verdicts were removed
    # and the next sweep predicts them again.
    listings_to_predict_again: int = 0
    # Over the listings whose image or edition this import changed, taken once
    # the label file is read. labels_outdated counts those with outdated staff
    # labels or reviews, which the labelling queue serves first. outdated_pins
    # lists the pinned ones whose pin still counts, and moved_pins those moved
    # to another game, whose pin no longer counts. returned_pins lists those
    # moved back to the game they were pinned in, whose pin counts again.
    labels_outdated: int = 0
    outdated_pins: list[PinNote] = field(default_factory=list)
    moved_pins: list[PinNote] = field(default_factory=list)
    returned_pins: list[PinNote] = field(default_factory=list)
    changed_ids: set[int] = field(default_factory=set, repr=False)
    # The CoverImage rows this import created, so that one it declines can be removed again.
    stored_ids: set[int] = field(default_factory=set, repr=False)
    # Games that a listing left or joined by moving to another game in this
    # import, or whose primary listing got a new image or platform. Each such row chooses
    # the primary covers of its games again at once.
    games_ranked: set[int] = field(default_factory=set, repr=False)
    # The listings that moved to another game in this import, each with the game it was in before.
    moved_from: dict[int, int] = field(default_factory=dict, repr=False)
    labels_imported: int = 0
    # Games whose primary cover was chosen again because the label file wrote a label, review or pin of theirs.
    games_ranked_for_labels: int = 0
    # Label rows that matched what was stored, so nothing was written.
    labels_already_stored: int = 0
    # Label rows not applied because a staff member changed that label, review or pin after the import last wrote it.
    labels_kept: int = 0
    listings_withdrawn: int = 0
    label_lines_refused: int = 0
    # Whether the import read labels.jsonl. It is false with --no-labels or when the file is absent.
    labels_read: bool = False
    # Games re-ranked because COVERPICK_SHOP_PREFERENCE changed the shop order, or None when it did not.
    games_ranked_for_shop_order: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def pins_outdated(self) -> int:
        return len(self.outdated_pins)

    @property
    def pins_for_other_game(self) -> int:
        return len(self.moved_pins)

    @property
    def listings(self) -> int:
        return self.listings_created + self.listings_updated + self.listings_unchanged

    def _undecodable_note(self) -> str:
        count = self.images_stored_undecodable
        if not count:
            return ""
        verb, be = ("does", "is") if count == 1 else ("do", "are")
        return f" ({count} of them {verb} not decode and {be} kept with the reason)"

    def lines(self) -> list[str]:
        feed_files = self.feed_files_read + self.feed_files_skipped
        lines = [
            f"Feed files skipped: {self.feed_files_skipped} of {feed_files}",
            f"Feed rows read: {self.rows_read}, refused: {self.rows_refused}",
            f"Listings created: {self.listings_created}, updated: {self.listings_updated}, "
            f"unchanged: {self.listings_unchanged}",
            f"Cover images newly stored: {self.images_stored}{self._undecodable_note()}, "
            f"listings without a usable image: {self.image_errors}",
        ]
        lines.extend(listing_lines(self.image_problems))
        lines += [
            f"Listings no longer in their shop's feed, marked out of stock: {self.listings_withdrawn}",
            f"Listings whose image or edition changed, to be predicted again by the next sweep: {self.listings_to_predict_again}",
            f"Listings whose image or edition changed in this import and whose staff labels are now outdated "
            f"(first in the labelling queue): {self.labels_outdated}",
        ]
        if self.pins_outdated:
            lines.append(
                f"Pinned listings whose image or platform changed in this import: {self.pins_outdated}. Their pins still "
                "choose the primary cover while the listing has a usable image. Check them on their game pages, then "
                "pin again or unpin."
            )
            lines.extend(listing_lines(self.outdated_pins))
        if self.pins_for_other_game:
            lines.append(
                f"Pinned listings that this import moved to another game: {self.pins_for_other_game}. Their pins no "
                "longer count. Choose the primary cover of each game affected again on its game page."
            )
            lines.extend(listing_lines(self.moved_pins))
        if self.returned_pins:
            lines.append(
                f"Pinned listings that this import moved back to the game they were pinned in: {len(self.returned_pins)}. "
                "Their pins choose the primary cover again. Check them on their game pages."
            )
            lines.extend(listing_lines(self.returned_pins))
        if self.covers_kept:
            kept_count = len(self.covers_kept)
            plural = kept_count != 1
            lines.append(
                f"Kept the stored cover for {kept_count} listing{'s' if plural else ''} whose image could not "
                f"be read this time. The next import replaces {'them' if plural else 'it'} once the image can be read."
            )
            lines.extend(listing_lines(self.covers_kept))
        if self.games_ranked:
            lines.append(
                "Games whose primary cover was chosen again because a listing left or joined them, or the primary "
                f"listing's image or platform changed: {len(self.games_ranked)}"
            )
        if self.games_ranked_for_shop_order is not None:
            games = self.games_ranked_for_shop_order
            lines.append(
                f"COVERPICK_SHOP_PREFERENCE changed the shop order; primary covers chosen again for {games} "
                f"game{'s' if games != 1 else ''}"
            )
        if self.labels_read:
            lines.append(
                f"Label rows imported: {self.labels_imported}, already stored: {self.labels_already_stored}, "
                f"kept newer staff labels: {self.labels_kept}, refused: {self.label_lines_refused}"
            )
            if self.games_ranked_for_labels:
                games = self.games_ranked_for_labels
                lines.append(f"Primary covers chosen again for {games} game{'s' if games != 1 else ''} whose labels, reviews or pins changed")
        else:
            lines.append("Label file: not read (--no-labels, or no labels.jsonl in the catalogue folder)")
        return lines


def listing_lines(problems: list[ImageProblem] | list[PinNote], total: int | None = None) -> list[str]:
    """Return one indented line per listing, at most IMAGE_PROBLEMS_SHOWN, then an "and N more" line.

    ``total`` is the number of listings when ``problems`` lists only the first of them.
    """
    lines = []
    for shop, product_id, text in problems[:IMAGE_PROBLEMS_SHOWN]:
        lines.append(f"  shop {shop}, product id {product_id!r}: {text}")
    hidden = (len(problems) if total is None else total) - min(len(problems), IMAGE_PROBLEMS_SHOWN)
    if hidden > 0:
        lines.append(f"  and {hidden} more")
    return lines


Reporter = Callable[[str], None]


def import_catalogue(
    catalogue_dir: Path,
    *,
    with_labels: bool = True,
    warn: Reporter | None = None,
    progress: bool = False,
    allow_mass_withdrawal: bool = False,
) -> ImportSummary:
    """Import every feed of a catalogue folder, then its labels unless ``with_labels`` is false.

    ``allow_mass_withdrawal`` lets a feed mark most of its shop's listings out
    of stock (see WITHDRAW_GUARD_SHARE).

    Each warning goes to ``warn`` when it is given, and to this module's logger
    otherwise. Raises FileNotFoundError when the folder or its feeds/ folder is
    missing, NotADirectoryError when ``catalogue_dir`` is a file, and
    conf.SettingError when a COVERPICK_FETCH_* variable is invalid.
    """
    catalogue_dir = Path(catalogue_dir)
    check_fetch_settings()
    feeds_dir = _feeds_folder(catalogue_dir)
    summary = ImportSummary()
    report = _reporter(summary, warn)
    feed_paths = iter_feed_files(feeds_dir)
    if not feed_paths:
        report(
            f"No feed files found in {feeds_dir}. The importer reads files ending in "
            f"{', '.join(FEED_EXTENSIONS)}, one per shop, and ignores hidden files."
        )
    # Files named alike (shop.csv and shop.jsonl) feed one shop, so its withdrawn products are
    # decided once, over all of them.
    reads_by_shop: dict[str, list[tuple[Path, FeedRead | None]]] = {}
    for feed_path in feed_paths:
        read = _import_feed(feed_path, catalogue_dir, summary, report, progress)
        reads_by_shop.setdefault(feed_path.stem, []).append((feed_path, read))
    for shop_code, reads in reads_by_shop.items():
        _withdraw_missing(shop_code, reads, summary, report, allow_mass_withdrawal)
    _apply_configured_preference(summary, report)
    labels_path = catalogue_dir / "labels.jsonl"
    if with_labels and labels_path.is_file():
        summary.labels_read = True
        import_labels(labels_path, summary, report)
    _count_outdated_rows(summary)
    return summary


def _count_outdated_rows(summary: ImportSummary) -> None:
    """Count the changed listings that the labelling queue now serves first, and list the pinned ones.

    Counted after the label file, because a changed label row there is written
    for the new image and edition.
    """
    ids = sorted(summary.changed_ids)
    labelled: set[int] = set()
    fields = ("listing__shop__code", "listing__product_id", "listing__edition__game__title", "edition__game__title")
    for start in range(0, len(ids), ID_BATCH):
        batch = ids[start : start + ID_BATCH]
        labelled.update(listings_to_relabel(batch))
        pins = Verdict.objects.filter(
            for_outdated(), listing_id__in=batch, source=Verdict.SOURCE_MANUAL_PIN, quality="clean"
        ).order_by("listing__shop__code", "listing__product_id")
        for shop, product_id, game, _pinned_in in pins.exclude(for_other_game()).values_list(*fields):
            summary.outdated_pins.append(PinNote(shop, product_id, f"game {game!r}"))
        for shop, product_id, game, pinned_in in pins.filter(for_other_game()).values_list(*fields):
            summary.moved_pins.append(PinNote(shop, product_id, f"pinned in game {pinned_in!r}, now in game {game!r}"))
        returned = Verdict.objects.filter(
            listing_id__in=[pk for pk in batch if pk in summary.moved_from], source=Verdict.SOURCE_MANUAL_PIN, quality="clean"
        ).exclude(for_outdated())
        rows = returned.order_by("listing__shop__code", "listing__product_id").values_list(
            "listing_id", "listing__edition__game_id", *fields
        )
        for listing_id, game_id, shop, product_id, game, _pinned_in in rows:
            # A listing that two feed files moved away and back ends in the game it started in.
            if summary.moved_from[listing_id] != game_id:
                summary.returned_pins.append(PinNote(shop, product_id, f"game {game!r}"))
    summary.labels_outdated = len(labelled)


def _feeds_folder(catalogue_dir: Path) -> Path:
    """Return ``catalogue_dir/feeds``. The OSError raised otherwise names the folder to pass instead."""
    if catalogue_dir.is_file():
        holder = catalogue_dir.parent.parent if catalogue_dir.parent.name == "feeds" else catalogue_dir.parent
        raise NotADirectoryError(
            f"{catalogue_dir} is a file, not a folder. Pass the catalogue folder that contains feeds/, "
            f"such as {holder}."
        )
    if not catalogue_dir.is_dir():
        raise FileNotFoundError(f"Catalogue folder {catalogue_dir} does not exist. Pass a folder that contains feeds/.")
    feeds_dir = catalogue_dir / "feeds"
    if not feeds_dir.is_dir():
        raise FileNotFoundError(
            f"No feeds/ folder in {catalogue_dir}. A catalogue folder holds feeds/ (one file per shop) "
            "and, optionally, labels.jsonl."
        )
    return feeds_dir


def _reporter(summary: ImportSummary, warn: Reporter | None) -> Reporter:
    def report(message: str) -> None:
        summary.problems.append(message)
        if warn is not None:
            warn(message)
        else:
            logger.warning("%s", message)

    return report


def _apply_configured_preference(summary: ImportSummary, report: Reporter) -> None:
    """Set the shop order from COVERPICK_SHOP_PREFERENCE, as `coverpick shops --order` does.

    The named shops come first, in the variable's order, and every other shop
    after them, so no order saved earlier leaves a tie with a named shop. When
    the order changes, every game's primary cover is chosen again. A code that
    matches no shop row is reported and skipped, because it is most likely a
    misspelt feed name. Run after the feeds, so that the shops they created
    count as known.
    """
    codes = conf.shop_preference()
    if not codes:
        return
    known = set(Shop.objects.values_list("code", flat=True))
    unknown = [code for code in codes if code not in known]
    if unknown:
        report(
            f"COVERPICK_SHOP_PREFERENCE names shop codes that match no feed: {', '.join(map(repr, unknown))}. "
            "They were ignored and no shop was created for them. "
            f"Known shop codes: {', '.join(sorted(known)) or 'none'}. Correct the spelling in COVERPICK_SHOP_PREFERENCE."
        )
    # Repeated codes keep their first place, and a list that names no known
    # shop leaves the saved order as it is instead of levelling every shop.
    named = [code for code in dict.fromkeys(codes) if code in known]
    if not named:
        return
    with transaction.atomic():
        # One transaction, so an import stopped here cannot save the order without re-ranking.
        if save_shop_order(named):
            summary.games_ranked_for_shop_order = compute_primaries()


class _PriceNote(NamedTuple):
    """A price problem of one feed file that was stored anyway: where it first appears and how many rows have it."""

    first_line: int
    first_product_id: str
    rows: int


# Price problems reported once per feed file, keyed by (kind, value).
NOTE_UNKNOWN_CURRENCY = "unknown currency"
NOTE_NO_CURRENCY = "no currency"
NOTE_ZERO_PRICE = "zero price"


def _open_feed(feed_path: Path, report: Reporter):
    """Return the feed's row iterator, or None after reporting why the file is skipped."""
    try:
        return read_feed(feed_path)
    except FeedFormatError as exc:
        report(f"{exc}. File skipped: convert it to one of these formats or move it out of feeds/.")
    except OSError as exc:
        report(f"{feed_path}: reading the file failed ({exc.strerror or exc}). File skipped: check its permissions.")
    return None


class FeedRead(NamedTuple):
    """One feed file's outcome: the products it stored, why it looks incomplete (or None), and its count of refused rows."""

    seen: set[str]
    incomplete: str | None
    refused: int


def _import_feed(feed_path: Path, catalogue_dir: Path, summary: ImportSummary, report: Reporter, progress: bool) -> FeedRead | None:
    """Store one feed file's rows; return what it confirmed, or None when the file was skipped."""
    items = _open_feed(feed_path, report)
    if items is None:
        summary.feed_files_skipped += 1
        return None
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"import {feed_path.name}", unit="row")
    shop: Shop | None = None
    price_notes: dict[tuple[str, str], _PriceNote] = {}
    seen_products: set[str] = set()
    stopped_early = False
    rows_in_file = refused_here = 0
    for index, item in enumerate(items):
        if isinstance(item, FeedProblem) and index == 0 and item.outcome != "row skipped":
            # The reader stopped before its first row, so nothing of this file is imported.
            summary.feed_files_skipped += 1
            report(str(item))
            return None
        summary.rows_read += 1
        rows_in_file += 1
        if isinstance(item, FeedProblem):
            summary.rows_refused += 1
            refused_here += 1
            stopped_early = stopped_early or item.outcome != "row skipped"
            report(str(item))
            continue
        try:
            with transaction.atomic():
                # The shop row is created with the first stored listing, so a
                # feed that yields none leaves no shop behind.
                current = shop or Shop.objects.get_or_create(code=feed_path.stem, defaults={"name": feed_path.stem})[0]
                _store_row(current, item, catalogue_dir, summary)
            shop = current
        except (ValueError, LabelError) as exc:
            summary.rows_refused += 1
            refused_here += 1
            report(f"{item.source_file} line {item.line}: {_and_skipped(exc, 'row')}")
            continue
        # Only a stored row confirms its product's offer, so a refused one counts as missing.
        seen_products.add(item.product_id)
        for key in _price_note_keys(item):
            seen = price_notes.get(key)
            price_notes[key] = _PriceNote(item.line, item.product_id, 1) if seen is None else seen._replace(rows=seen.rows + 1)
    summary.feed_files_read += 1
    _report_price_notes(feed_path, price_notes, report)
    if stopped_early:
        reason = "reading stopped before its end"
    elif feed_path.suffix.lower() in LINE_FEED_SUFFIXES and not _ends_with_newline(feed_path):
        # A cut inside the last field leaves a row that still parses, with a shortened value.
        reason = "it does not end with a line break, so its last row may be cut off"
    elif not rows_in_file:
        reason = "it has no rows"
    else:
        reason = None
    return FeedRead(seen_products, reason, refused_here)


def _ends_with_newline(path: Path) -> bool:
    """Return whether the file's last byte ends a line, as the last row of a complete text export does."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) in (b"\n", b"\r")


def _withdraw_missing(
    shop_code: str, reads: list[tuple[Path, FeedRead | None]], summary: ImportSummary, report: Reporter, allow_mass_withdrawal: bool
) -> None:
    """Mark the shop's listings that its feed files no longer contain as out of stock, so their old prices are not shown as offers.

    ``reads`` pairs each of the shop's feed files with what it confirmed
    (None for a skipped file). A product whose row was refused counts as
    missing too: its price cannot be confirmed. Nothing is marked when a file
    was skipped or looks incomplete (the reader stopped early, a line-based
    file does not end with a line break, or there are no rows). Nothing is
    marked either when the files would mark most of the shop's listings and
    ``allow_mass_withdrawal`` is false, since a broken export would otherwise
    take a whole shop out of stock. A later import that contains the product
    again stores its stock state from the feed.
    """
    shop = Shop.objects.filter(code=shop_code).first()
    if shop is None:
        return
    if any(read is None for _path, read in reads):
        return  # the skipped file was reported when it was skipped
    if len(reads) == 1:
        where = str(reads[0][0])
    else:
        where = f"feed files {', '.join(path.name for path, _read in reads)} of shop {shop_code}"
    offered = Listing.objects.filter(shop=shop).exclude(in_stock=False)
    incomplete = [(path, read.incomplete) for path, read in reads if read.incomplete]
    if incomplete:
        unchecked = offered.count()
        if unchecked:
            reason = incomplete[0][1] if len(reads) == 1 else "; ".join(f"{path.name}: {why}" for path, why in incomplete)
            report(f"{where}: {reason}. None of its shop's {unchecked} listings in stock was marked out of stock.")
        return
    seen = set().union(*(read.seen for _path, read in reads))
    refused = sum(read.refused for _path, read in reads)
    in_stock = list(offered.values_list("pk", "product_id"))
    missing = [pk for pk, product_id in in_stock if product_id not in seen]
    if not allow_mass_withdrawal and len(missing) >= WITHDRAW_GUARD_MIN and len(missing) > WITHDRAW_GUARD_SHARE * len(in_stock):
        message = f"{where}: the feed lacks {len(missing)} of its shop's {len(in_stock)} listings in stock"
        if refused:
            message += f" ({refused} of its rows were refused, see above)"
        message += ", which looks like a cut export, so none were marked out of stock. "
        if refused:
            message += "Fix the refused rows, or, if the shop did drop the products, import again with --allow-mass-withdrawal."
        else:
            message += "If the shop did drop them, import again with --allow-mass-withdrawal."
        report(message)
        return
    for start in range(0, len(missing), WITHDRAW_BATCH):
        batch = missing[start : start + WITHDRAW_BATCH]
        Listing.objects.filter(pk__in=batch).update(in_stock=False, updated_at=timezone.now())
    summary.listings_withdrawn += len(missing)


def _price_note_keys(row: FeedRow) -> list[tuple[str, str]]:
    """Return the price problems of a stored row that the import reports: an unknown currency, none, or a zero price."""
    keys = []
    if row.currency and not is_iso_currency(row.currency):
        keys.append((NOTE_UNKNOWN_CURRENCY, row.currency))
    if row.price is not None and not row.currency:
        keys.append((NOTE_NO_CURRENCY, ""))
    if row.price is not None and row.price == 0:
        keys.append((NOTE_ZERO_PRICE, ""))
    return keys


def _report_price_notes(feed_path: Path, notes: dict[tuple[str, str], _PriceNote], report: Reporter) -> None:
    """Report each price problem of one feed file once, with its first row and the count of the others."""
    for (kind, value), seen in notes.items():
        more = seen.rows - 1
        where = f"{feed_path} line {seen.first_line}"
        product = repr(seen.first_product_id)
        rows = f"{more} more row{'s' if more != 1 else ''} in this file"
        others = f", and {rows}" if more else ""
        also = f", as {'does' if more == 1 else 'do'} {rows}" if more else ""
        if kind == NOTE_UNKNOWN_CURRENCY:
            report(
                f"{where}: currency {value!r} of product {product}{others} is not a current ISO 4217 currency code. "
                "The listings were stored with that code. Correct the feed's currency field if it is a typo."
            )
        elif kind == NOTE_NO_CURRENCY:
            report(
                f"{where}: product {product} has a price without a currency (no sign, code or currency field){also}. "
                "The listings were stored, but no best price shows them until the feed names the currency."
            )
        else:
            report(
                f"{where}: product {product} has a price of zero{also}. The listings were stored, but a zero "
                "price is never shown as an offer. Correct the feed's price if it is a placeholder."
            )


def _store_row(shop: Shop, row: FeedRow, catalogue_dir: Path, summary: ImportSummary) -> None:
    if not row.product_id:
        raise ValueError("missing product id")
    key = game_key(row.title)
    if not key:
        raise ValueError(f"title {row.title!r} has no letters or digits to match a game by")
    if not (row.platform_raw or "").strip():
        # Without a platform the listing would join an edition "unknown" beside the game's real ones.
        raise ValueError("missing platform: fill the row's platform (PS4, Switch, PC and the like)")
    family, platform_code = platform_family(row.platform_raw)
    title = display_title(row.title)
    game, created = Game.objects.get_or_create(key=key, defaults={"title": title})
    if not created and better_cased(game.title, title):
        game.title = title
        game.save(update_fields=["title"])
    edition, _ = Edition.objects.get_or_create(game=game, platform=platform_code, defaults={"family": family})
    previous = Listing.objects.filter(shop=shop, product_id=row.product_id).select_related("cover", "edition").first()
    cover, cover_error, validators = _store_cover(row, catalogue_dir, summary, previous)
    # An image that cannot be read or fetched now (a server down, a folder not
    # mounted) must not erase the cover an earlier import stored, and one that
    # does not decode must not replace a stored cover that does. A row that
    # has no image reference at all still clears it.
    kept_reason = None
    if previous is not None and previous.cover is not None:
        if cover_error is not None and row.image_ref:
            kept_reason = cover_error
        elif not previous.cover.decode_error:
            unreadable = None
            if cover is not None and cover.pk != previous.cover_id and cover.pk not in summary.stored_ids:
                # An image stored while coverpick checked the header only may be
                # cut short, so one that would replace a good cover is decoded whole.
                # One this import stored was decoded as it was stored.
                unreadable = check_pixels(cover)
            kept_reason = _decode_problem(cover, row) or (
                f"image {row.image_ref!r}: {unreadable}" if unreadable else None
            )
    if kept_reason is not None:
        _discard_declined(cover, previous.cover_id, summary)
        cover, validators = _keep_stored_cover(previous, row)
        summary.covers_kept.append(ImageProblem(shop.code, row.product_id, kept_reason))
        cover_error = None
    values = {
        "edition": edition,
        "title": row.title,
        "edition_text": row.edition_text or "",
        "platform_raw": row.platform_raw,
        "platform_family": family,
        "price": _stored_price(row.price),
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
    new_cover_id = cover.pk if cover else None
    old_cover_id = previous.cover_id if previous is not None else None
    image_changed = previous is not None and old_cover_id != new_cover_id
    edition_changed = previous is not None and previous.edition_id != edition.pk
    replaced = image_changed or edition_changed
    # Read before the update below, which gives the listing its new edition.
    left_game_id = previous.edition.game_id if edition_changed else None
    if previous is None:
        Listing.objects.create(shop=shop, product_id=row.product_id, **values)
        summary.listings_created += 1
    elif _differs(previous, values):
        for name, value in values.items():
            setattr(previous, name, value)
        previous.save()
        summary.listings_updated += 1
    else:
        # Writing an identical row would still move updated_at and the
        # catalogue generation, and with it every cached public page.
        summary.listings_unchanged += 1
    if replaced:
        # The classifier's rows describe the old image or edition. Without
        # them the listing is pending, so the next sweep (or tick) predicts it
        # again. Staff rows stay, but they describe the earlier image or
        # edition (Verdict.cover, Verdict.edition). Training and the ranking
        # skip such labels and reviews. A pin still counts within its game.
        Verdict.objects.filter(listing_id=previous.pk, source=Verdict.SOURCE_CLASSIFIER).delete()
        summary.listings_to_predict_again += 1
        # Also after an import that left the listing without an image: a
        # pin or label written for the image before that is outdated too.
        summary.changed_ids.add(previous.pk)
    # Ranked again after the classifier's rows are gone, or the listing would rank by its old verdict.
    rerank: set[int] = set()
    if left_game_id is not None and left_game_id != edition.game_id:
        # The game the listing left may still show its cover, and in the game it
        # joined it now competes with that game's own covers.
        rerank.update((left_game_id, edition.game_id))
        summary.moved_from.setdefault(previous.pk, left_game_id)
    elif replaced and Game.objects.filter(pk=edition.game_id, primary_listing_id=previous.pk).exists():
        # The game's primary would show a new, unjudged image, or rank by a verdict given for its old platform.
        rerank.add(edition.game_id)
    if rerank:
        # In this row's transaction, which an import stopped later cannot undo.
        # Other games keep their primaries until the next `coverpick rank` or tick.
        compute_primaries(Game.objects.filter(pk__in=rerank))
        summary.games_ranked.update(rerank)
    image_problem = cover_error or _decode_problem(cover, row)
    if image_problem:
        summary.image_errors += 1
        summary.image_problems.append(ImageProblem(shop.code, row.product_id, image_problem))


def _stored_price(price: Decimal | None) -> Decimal | None:
    """Round a feed price to the places the database keeps, so a re-import compares it with the stored value."""
    if price is None:
        return None
    places = Listing._meta.get_field("price").decimal_places
    return price.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _differs(listing: Listing, values: dict) -> bool:
    """Return True when any of ``values`` differs from the stored listing's field of that name."""
    for name, value in values.items():
        field = Listing._meta.get_field(name)
        if field.is_relation:
            stored, value = getattr(listing, field.attname), (value.pk if value is not None else None)
        else:
            stored = getattr(listing, name)
        if stored != value:
            return True
    return False


def _discard_declined(cover, kept_cover_id: int, summary: ImportSummary) -> None:
    """Remove an image that this import stored but declined to use, so it neither lingers nor counts as stored.

    Only an image that this import stored first and that no listing shows is
    removed. An image that an earlier import stored, or that an earlier row of
    this import gave to a listing, stays.
    """
    if cover is None or cover.pk == kept_cover_id or cover.pk not in summary.stored_ids:
        return
    if Listing.objects.filter(cover=cover).exists():
        return
    summary.stored_ids.discard(cover.pk)
    summary.images_stored -= 1
    if cover.decode_error:
        summary.images_stored_undecodable -= 1
    path = cover.path
    cover.delete()
    # After the commit, so that a row rolled back still finds its file. By
    # then a later row may have stored the same image again under that path.
    transaction.on_commit(lambda: _delete_unless_stored(path))


def _delete_unless_stored(path: str) -> None:
    """Delete an image store file unless a CoverImage row names it."""
    if not CoverImage.objects.filter(path=path).exists():
        delete_stored_file(path)


def _keep_stored_cover(previous: Listing, row: FeedRow):
    """Return (the listing's stored cover, the HTTP validators to keep with it).

    The caller leaves ``cover_error`` null, because the sweep, the game page and
    the verdict export read it as the reason a listing has no usable cover. The validators are kept only
    while the image reference is unchanged. A changed URL is then fetched in
    full on the next import, because the old image's ETag could get a 304 reply.
    """
    if previous.image_ref == row.image_ref:
        return previous.cover, (previous.image_etag, previous.image_last_modified)
    return previous.cover, ("", "")


def _decode_problem(cover, row: FeedRow) -> str | None:
    if cover is None or not cover.decode_error:
        return None
    return f"image {row.image_ref!r} cannot be decoded: {cover.decode_error}"


def _store_cover(row: FeedRow, catalogue_dir: Path, summary: ImportSummary, previous: Listing | None):
    """Store the row's image; return (cover, error, (etag, last_modified)).

    An http(s) image that the listing already had is fetched conditionally,
    and a 304 keeps the stored cover without downloading it again. The error
    is set, and the cover None, when the row has no image reference or the
    image could not be read or fetched.
    """
    no_validators = ("", "")
    if not row.image_ref:
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
        message = str(exc) if isinstance(exc, (CoverSourceError, FetchError)) else f"could not read image {row.image_ref!r}: {exc}"
        return None, message, no_validators
    cover, created = store_image_created(data)
    if created:
        summary.images_stored += 1
        summary.images_stored_undecodable += bool(cover.decode_error)
        summary.stored_ids.add(cover.pk)
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
    """Import labels.jsonl: manual-train label sets, reviews and pins, each validated.

    A row is skipped, and counted in ``labels_kept``, when a staff member
    changed that listing's labels, that review or that game's pin after the
    import last wrote it. A row that the import itself wrote last is updated.
    """
    listings = {(shop, pid): listing_id for shop, pid, listing_id in Listing.objects.values_list("shop__code", "product_id", "pk")}
    relabelled_games: set[int] = set()
    with open(labels_path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{labels_path} line {number}"
            try:
                record = _parse_label_line(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                key = (record.get("shop"), str(record.get("product_id", "")))
                if key not in listings:
                    raise ValueError(f"no listing for shop {key[0]!r} and product id {key[1]!r}; import its feed first")
                listing = Listing.objects.select_related("edition").get(pk=listings[key])
                outcome = _import_label_record(listing, record)
            except (ValueError, LabelError) as exc:
                summary.label_lines_refused += 1
                report(f"{where}: {_and_skipped(exc, 'line')}")
                continue
            if outcome == LABEL_WRITTEN:
                summary.labels_imported += 1
                relabelled_games.add(listing.edition.game_id)
            elif outcome == LABEL_ALREADY_STORED:
                summary.labels_already_stored += 1
            else:
                summary.labels_kept += 1
                logger.info("%s: kept the newer staff %s of listing %s", where, record.get("source"), listing.pk)
    # A label, review or pin changes its cover's tier, so a game whose primary
    # cover staff labelled wrong_game no longer shows it.
    if relabelled_games:
        compute_primaries(Game.objects.filter(pk__in=relabelled_games))
        summary.games_ranked_for_labels = len(relabelled_games)


def _and_skipped(error: Exception, unit: str) -> str:
    """Return the error's message followed by "<unit> skipped", joined to suit how the message ends."""
    message = str(error).rstrip()
    if message.endswith("."):
        return f"{message} {unit.capitalize()} skipped."
    return f"{message}; {unit} skipped"


def _parse_label_line(line: str) -> object:
    try:
        # Without its line break, an error at the end of the line names a column of this line.
        return json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({json_error_text(exc)})") from exc


# The outcomes _import_label_record returns for a row of the label file.
LABEL_WRITTEN = "written"
LABEL_ALREADY_STORED = "already stored"
LABEL_KEPT_STAFF = "kept newer staff work"


def _import_label_record(listing: Listing, record: dict) -> str:
    """Write one label row and return LABEL_WRITTEN, LABEL_ALREADY_STORED or LABEL_KEPT_STAFF.

    Staff work is a manual row stored with a user, because the web pages always
    pass the signed-in staff member and the import passes none. A row already
    stored, by staff or by an earlier import, is LABEL_ALREADY_STORED.

    NOTE: deleting a staff account sets the user of its rows to null, so the
    next import treats those rows as its own and may overwrite them.
    """
    source = record.get("source")
    if source == Verdict.SOURCE_MANUAL_TRAIN:
        labels = record.get("labels")
        if not isinstance(labels, list):
            raise ValueError(f"'labels' must be a list of class names, got {labels!r}")
        checked = validate_label_set(labels)
        stored = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).first()
        if stored is not None and stored.labels == checked:
            # Already stored. Repeating it does not make it a label of the
            # listing's new image when the image has changed since.
            return LABEL_ALREADY_STORED
        if stored is not None and stored.user_id is not None:
            return LABEL_KEPT_STAFF
        set_labels(listing, checked, note=IMPORT_NOTE)
    elif source == Verdict.SOURCE_REVIEW:
        decision = record.get("verdict")
        if decision not in (Verdict.REVIEW_CONFIRMED, Verdict.REVIEW_REJECTED):
            raise ValueError(f"review verdict must be 'confirmed' or 'rejected', got {decision!r}")
        predicted = str(record.get("predicted"))
        stored = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_REVIEW, review_predicted=predicted).first()
        if stored is not None and stored.review_verdict == decision:
            return LABEL_ALREADY_STORED
        if stored is not None and stored.user_id is not None:
            return LABEL_KEPT_STAFF
        record_review(listing, predicted, decision == Verdict.REVIEW_CONFIRMED)
    elif source == Verdict.SOURCE_MANUAL_PIN:
        # Already stored. Repeating it does not pin a listing that has moved
        # to another game since, whose covers no one compared it with.
        already = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_PIN, quality="clean").exists()
        if already:
            return LABEL_ALREADY_STORED
        if pin_changed_by_staff(listing.edition.game_id):
            return LABEL_KEPT_STAFF
        pin_cover(listing, note=IMPORT_NOTE)
    elif source is None:
        raise ValueError("missing 'source' field; expected manual-train, review or manual-pin")
    else:
        raise ValueError(f"unknown source {source!r}; expected manual-train, review or manual-pin")
    return LABEL_WRITTEN

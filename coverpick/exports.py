"""JSONL exports of verdicts (one object per listing) and primaries (one object per game)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from coverpick.catalogue.models import ClassifierVersion, Game, Listing, Verdict, for_earlier_edition, for_earlier_image
from coverpick.ranking import annotate_ranking


def verdict_records() -> Iterator[dict]:
    active = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()
    rows = {}
    if active is not None:
        rows = {v.listing_id: v for v in Verdict.objects.filter(classifier_version=active)}
    manual = {
        listing_id: labels
        for listing_id, labels in Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("listing_id", "labels")
    }
    staff_rows = Verdict.objects.filter(source__in=Verdict.JUDGEMENT_SOURCES)
    earlier_image = set(staff_rows.filter(for_earlier_image()).values_list("listing_id", flat=True))
    earlier_edition = set(staff_rows.filter(for_earlier_edition()).values_list("listing_id", flat=True))
    listings = annotate_ranking(Listing.objects.select_related("shop", "edition__game", "cover"))
    for listing in listings.iterator(chunk_size=1000):
        verdict = rows.get(listing.pk)
        error = listing.cover_error or (listing.cover.decode_error if listing.cover else None)
        if error is None and verdict is not None:
            error = verdict.error
        yield {
            "shop": listing.shop.code,
            "product_id": listing.product_id,
            "game": listing.edition.game.title,
            "platform_declared": listing.platform_family,
            "quality": verdict.quality if verdict else None,
            "quality_probs": verdict.quality_probs if verdict else None,
            "text_novelty": verdict.text_novelty if verdict else None,
            "platform": verdict.platform if verdict else None,
            "platform_probs": verdict.platform_probs if verdict else None,
            "classifier_version": active.name if active else None,
            "tier": listing.tier,
            "effective_verdict": listing.effective_verdict,
            "manual_labels": manual.get(listing.pk),
            # True when the listing's staff labels or reviews were given for an
            # earlier image of it, or while it was filed under another edition.
            "staff_labels_for_earlier_image": listing.pk in earlier_image,
            "staff_labels_for_earlier_edition": listing.pk in earlier_edition,
            "error": error,
        }


def primary_records() -> Iterator[dict]:
    games = Game.objects.select_related("primary_listing__shop").order_by("title", "pk")
    for game in games.iterator(chunk_size=1000):
        listing = game.primary_listing
        yield {
            "game": game.title,
            "shop": listing.shop.code if listing else None,
            "product_id": listing.product_id if listing else None,
            "tier": game.primary_tier,
        }


def check_output_path(path: Path) -> Path | None:
    """Raise ValueError, naming the path and the fix, when a JSONL file cannot be written at ``path``.

    A missing folder for the file is created. Returns the outermost folder
    created, for the command to report, or None when the folder existed.
    """
    if path.is_dir():
        raise ValueError(f"Output path {path} is a folder; give a file name, such as {path / 'export.jsonl'}.")
    folder = path.parent.absolute()
    created = next((step for step in [*reversed(folder.parents), folder] if not step.exists()), None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"Cannot create the folder for {path} ({exc.strerror}); choose another --out.") from exc
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"The folder {path.parent} is not writable; choose another --out.")
    return created


def write_jsonl_file(records, path: Path) -> int:
    """Write ``records`` as JSONL to ``path`` through a temporary file, so a failure leaves any earlier file whole."""
    check_output_path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            count = write_jsonl(records, handle)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def write_jsonl(records, handle) -> int:
    count = 0
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count

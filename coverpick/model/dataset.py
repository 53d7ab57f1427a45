"""Training rows from human labels, and the per-listing context both training and the sweep need.

Precedence for one listing: a confirmed review < a direct manual label set <
a pin's clean row. A rejected review never becomes a positive label; it is
kept as a negative, which the soft targets already encode as zero. Demotion
markers (manual-pin/unknown) are never labels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from coverpick.catalogue.models import Listing, Verdict, for_outdated
from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES, UNKNOWN

# Training stops with fewer labelled covers than this.
MIN_TRAINING_ROWS = 10


class LabelLintError(ValueError):
    """Stored verdicts use a class name that LABEL_CLASSES does not contain."""


def lint_labels() -> None:
    """Stop when any stored verdict names a class outside LABEL_CLASSES, naming each one.

    A new label must be appended to LABEL_CLASSES before training, or its
    covers would be dropped from training without anyone noticing.
    """
    known = set(LABEL_CLASSES) | {UNKNOWN}
    found: Counter[str] = Counter()
    for quality, labels, predicted in Verdict.objects.values_list("quality", "labels", "review_predicted"):
        names = set(labels or [])
        if quality:
            names.add(quality)
        if predicted:
            names.add(predicted)
        for name in names - known:
            found[name] += 1
    if found:
        listed = ", ".join(f"{name!r} ({count} rows)" for name, count in sorted(found.items()))
        raise LabelLintError(
            f"Stored verdicts use class names that are not in LABEL_CLASSES: {listed}. "
            "Append them to LABEL_CLASSES in coverpick/labels.py (never reorder it), or relabel those covers."
        )


@dataclass
class ListingContext:
    """Listing context the heads read besides pixels: ids, image hashes, families, games, editions and game titles."""

    listing_ids: list[int] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    game_ids: list[int] = field(default_factory=list)
    edition_ids: list[int] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)


def usable_listings():
    """Listings whose cover is stored and decodes."""
    return Listing.objects.filter(cover__isnull=False, cover__decode_error__isnull=True)


def listing_context(listings) -> ListingContext:
    context = ListingContext()
    rows = listings.values_list("pk", "cover__sha256", "platform_family", "edition__game_id", "edition_id", "edition__game__title").order_by("pk")
    for pk, sha, family, game_id, edition_id, title in rows:
        context.listing_ids.append(pk)
        context.sha256.append(sha)
        context.families.append(family)
        context.game_ids.append(game_id)
        context.edition_ids.append(edition_id)
        context.titles.append(title)
    return context


@dataclass
class TrainingRow:
    listing_id: int
    labels: list[str]
    negatives: list[str]
    source: str


def training_rows() -> list[TrainingRow]:
    """Build one row per usable listing that has a human label, with the precedence rules applied."""
    by_listing: dict[int, dict] = {}
    # A row written for an earlier image of the listing would pair the current
    # image's features with a verdict on another image, and one written under
    # another edition judged the cover against another declared platform or game.
    manual = (
        Verdict.objects.filter(source__in=Verdict.MANUAL_SOURCES, listing__in=usable_listings())
        .exclude(for_outdated())
        .values_list("listing_id", "source", "quality", "labels", "review_predicted", "review_verdict")
    )
    for listing_id, source, quality, labels, predicted, decision in manual:
        entry = by_listing.setdefault(listing_id, {"review": set(), "rejected": set(), "manual": None, "pin": False})
        if source == Verdict.SOURCE_REVIEW:
            if decision == Verdict.REVIEW_CONFIRMED:
                entry["review"].add(predicted)
            else:
                entry["rejected"].add(predicted)
        elif source == Verdict.SOURCE_MANUAL_TRAIN:
            entry["manual"] = list(labels)
        elif source == Verdict.SOURCE_MANUAL_PIN and quality == "clean":
            entry["pin"] = True
    rows = []
    for listing_id, entry in sorted(by_listing.items()):
        if entry["pin"]:
            labels, source = ["clean"], Verdict.SOURCE_MANUAL_PIN
        elif entry["manual"]:
            labels, source = entry["manual"], Verdict.SOURCE_MANUAL_TRAIN
        elif entry["review"]:
            labels, source = sorted(entry["review"] - entry["rejected"]), Verdict.SOURCE_REVIEW
        else:
            continue
        if labels:
            rows.append(TrainingRow(listing_id, labels, sorted(entry["rejected"] - set(labels)), source))
    return rows


def soft_targets(label_sets: list[list[str]]) -> np.ndarray:
    """Quality targets: a row with k labels puts 1/k on each of them (softmax cross-entropy on soft targets)."""
    targets = np.zeros((len(label_sets), len(LABEL_CLASSES)), dtype=np.float32)
    for row, labels in enumerate(label_sets):
        for label in labels:
            targets[row, LABEL_CLASSES.index(label)] = 1.0 / len(labels)
    return targets


# Labels under which the declared family is not what the image shows, or the
# image shows no platform at all; such rows do not teach the platform head.
PLATFORM_UNTRUSTED = frozenset({"wrong_console", "wrong_game", "placeholder", "unclear"})


def platform_targets(label_sets: list[list[str]], families: list[str]) -> np.ndarray:
    """Index of the family each row's image shows, or -1 where it is not known from the labels."""
    targets = np.full(len(label_sets), -1, dtype=np.int64)
    for row, (labels, family) in enumerate(zip(label_sets, families)):
        if family in PLATFORM_FAMILIES and not (set(labels) & PLATFORM_UNTRUSTED):
            targets[row] = PLATFORM_FAMILIES.index(family)
    return targets

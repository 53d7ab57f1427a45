"""The labelling queue: which covers staff should label next, and in what order.

A listing is queued when it has a usable cover, carries no manual-train label
yet, and the active heads version has a quality verdict for it. The queue has
five tiers, served in order, after two tiers of labelled covers to check again:

- E: covers whose staff labels or reviews are outdated: given for an earlier
  image of the listing, or while it was filed under another edition (a
  re-import changed the image, the platform or the game), until someone
  labels it again;
- S: labelled covers that ``coverpick audit-labels`` ranked most likely to be
  mislabelled (its JSONL in COVERPICK_HOME/audit/), most suspect first, until
  someone saves their labels again after the audit ran;
- A: the active verdict is ``unknown`` (the head was not confident enough);
- D: the active verdict is ``clean``, but another class has a probability of
  ``DOUBT_LEVEL`` or more (a key-card or code notice included, which the
  ranking puts beside clean covers). A wrong clean verdict can put a flawed
  cover on a game page, so these come before the rare classes;
- N: the active verdict is ``clean``, but the cover prints text that even
  its closest sibling cover lacks, more of it than NEW_TEXT_PERCENTILE % of
  the covers staff labelled clean (see ``version_new_text_level``). A notice
  in words no labelled cover prints ("licence card", another language) is
  read as ordinary text and called clean. A label on such a cover teaches
  the text head its words;
- B: the active verdict is a class with fewer than ``RARE_CLASS_LIMIT``
  manual-train labels, counted live on every call;
- C: a boundary case among the look-alike classes in ``BOUNDARY_CLASSES``,
  where both of the two most probable classes are in that set and their
  probabilities differ by less than ``BOUNDARY_GAP``.

Until a heads version is active there are no verdicts. Then the queue contains
tier E, then tier M: every usable cover without a manual-train label, those
of the games with the fewest labelled covers first (``unlabelled_covers``),
so that a catalogue imported without labels can be labelled for its first
training.

Covers predicted as a well-supported class are not queued unless they are
boundary cases, doubtful clean verdicts or clean verdicts with new text.
Within a tier the least confident verdict comes first.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from django.db.models import Exists, OuterRef

from coverpick import conf
from coverpick.catalogue.models import ClassifierVersion, Listing, Verdict, for_outdated, listings_to_relabel
from coverpick.labels import LABEL_CLASSES, UNKNOWN
from coverpick.model.inputs import NEW_TEXT_PERCENTILE, new_text_level

logger = logging.getLogger(__name__)

RARE_CLASS_LIMIT = 100
BOUNDARY_CLASSES = frozenset({"3d_render", "deluxe_bundle", "margins"})
BOUNDARY_GAP = 0.2
# Measured out of fold on a catalogue of 879 covers, one clean verdict in six or
# seven has another class at this level. A quarter to a third of those are flawed, against one
# in twelve of all clean verdicts.
DOUBT_LEVEL = 0.1

# Suspects served at most; the audit ranks every labelled cover, and only the
# head of its list is worth a second look.
SUSPECT_LIMIT = 50
SUSPECT_MIN_SCORE = 0.5

TIER_OUTDATED = "E"
TIER_NO_MODEL = "M"
TIER_SUSPECT = "S"
TIER_UNKNOWN = "A"
TIER_DOUBTFUL_CLEAN = "D"
TIER_NEW_TEXT = "N"
TIER_RARE = "B"
TIER_BOUNDARY = "C"
TIER_ORDER = (TIER_OUTDATED, TIER_NO_MODEL, TIER_SUSPECT, TIER_UNKNOWN, TIER_DOUBTFUL_CLEAN, TIER_NEW_TEXT, TIER_RARE, TIER_BOUNDARY)
TIER_DESCRIPTIONS = {
    TIER_OUTDATED: "its staff labels were given for an earlier image or edition of this listing",
    TIER_NO_MODEL: "no trained model is active yet, and labels like this one start the first training",
    TIER_SUSPECT: "the label audit ranks its labels among the most likely to be wrong",
    TIER_UNKNOWN: "the model's verdict is unknown",
    TIER_DOUBTFUL_CLEAN: f"the model calls it clean but gives another class {DOUBT_LEVEL:.2f} or more",
    TIER_NEW_TEXT: "the model calls it clean, but it prints text that its game's other covers lack",
    TIER_RARE: f"predicted class has fewer than {RARE_CLASS_LIMIT} manual labels",
    TIER_BOUNDARY: "close call between 3d_render, deluxe_bundle and margins",
}


@dataclass(frozen=True)
class QueueItem:
    listing_id: int
    tier: str
    verdict: str
    confidence: float | None


def manual_label_counts() -> Counter[str]:
    """Count the manual-train rows that contain each class.

    Counted in Python because SQLite cannot query inside a JSON list. One
    pass reads only the ``labels`` column of manual-train rows.
    """
    counts: Counter[str] = Counter({name: 0 for name in LABEL_CLASSES})
    rows = Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("labels", flat=True)
    for labels in rows.iterator(chunk_size=2000):
        counts.update(set(labels or ()))
    return counts


def rare_classes(counts: Counter[str], limit: int = RARE_CLASS_LIMIT) -> frozenset[str]:
    return frozenset(name for name in LABEL_CLASSES if counts[name] < limit)


def top_two_gap(probs: dict[str, float] | None) -> tuple[str, str, float] | None:
    """Return the two most probable classes and the difference of their probabilities."""
    if not probs or len(probs) < 2:
        return None
    first, second = sorted(probs.items(), key=lambda item: item[1], reverse=True)[:2]
    return first[0], second[0], first[1] - second[1]


def is_boundary_case(probs: dict[str, float] | None, gap: float = BOUNDARY_GAP) -> bool:
    top = top_two_gap(probs)
    if top is None:
        return False
    first, second, difference = top
    return first in BOUNDARY_CLASSES and second in BOUNDARY_CLASSES and difference < gap


def doubtful_clean(probs: dict[str, float] | None, level: float = DOUBT_LEVEL) -> bool:
    """Return True when a class other than clean has a probability of ``level`` or more."""
    if not probs:
        return False
    return any(value >= level for name, value in probs.items() if name != "clean")


def version_new_text_level(version: ClassifierVersion, percentile: float = NEW_TEXT_PERCENTILE) -> float | None:
    """Return the ``new_text_level`` of the covers staff labelled clean alone, or else of the version's clean verdicts.

    The version's verdicts give each cover its new text. Clean verdicts
    include the flawed covers the model calls clean, which would raise the
    level, so the covers staff labelled clean and nothing else set it when
    NEW_TEXT_MIN_VERDICTS of them have it measured. Labels given for an
    earlier image or edition do not count.
    """
    measured = Verdict.objects.filter(classifier_version=version, text_novelty__isnull=False)
    staff_rows = Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).exclude(for_outdated())
    # Filtered in Python because SQLite cannot query inside a JSON list.
    staff_clean = {listing_id for listing_id, labels in staff_rows.values_list("listing_id", "labels") if labels == ["clean"]}
    labelled = [novelty for listing_id, novelty in measured.values_list("listing_id", "text_novelty") if listing_id in staff_clean]
    level = new_text_level(labelled, percentile)
    if level is not None:
        return level
    return new_text_level(list(measured.filter(quality="clean").values_list("text_novelty", flat=True)), percentile)


def unlabelled_active_verdicts(version: ClassifierVersion, exclude_listing_ids: Collection[int] = ()):
    """Return the version's verdicts on usable covers whose listing has no manual-train label."""
    labelled = Verdict.objects.filter(listing=OuterRef("listing_id"), source=Verdict.SOURCE_MANUAL_TRAIN)
    verdicts = (
        Verdict.objects.filter(
            classifier_version=version,
            quality__isnull=False,
            listing__cover__isnull=False,
            listing__cover__decode_error__isnull=True,
        )
        .exclude(Exists(labelled))
    )
    if exclude_listing_ids:
        verdicts = verdicts.exclude(listing_id__in=list(exclude_listing_ids))
    return verdicts


def suspects_path():
    return conf.home() / "audit" / "suspects.jsonl"


def audit_suspects(skipped: Collection[int] = (), limit: int = SUSPECT_LIMIT) -> list[QueueItem]:
    """Queue items for the audit's most suspect labels that nobody has relabelled since the audit."""
    path = suspects_path()
    if not path.is_file():
        return []
    audited_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    wanted: list[tuple[tuple[str, str], float]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                key, score = (record["shop"], str(record["product_id"])), float(record["score"])
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("Skipping line %d of %s: %s", number, path, exc)
                continue
            if score >= SUSPECT_MIN_SCORE:
                wanted.append((key, score))
            if len(wanted) >= limit:
                break
    if not wanted:
        return []
    shops = {key[0] for key, _ in wanted}
    ids = {
        (shop, product_id): pk
        for pk, shop, product_id in Listing.objects.filter(shop__code__in=shops).values_list("pk", "shop__code", "product_id")
    }
    relabelled = set(
        Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN, updated_at__gt=audited_at).values_list("listing_id", flat=True)
    )
    items = []
    for key, score in wanted:
        listing_id = ids.get(key)
        if listing_id is not None and listing_id not in relabelled and listing_id not in skipped:
            items.append(QueueItem(listing_id, TIER_SUSPECT, "suspect", round(1.0 - score, 4)))
    return items


def outdated_items(skipped: Collection[int] = ()) -> list[QueueItem]:
    """Queue items for usable covers whose staff labels describe an earlier image or edition of the listing.

    A listing leaves this tier once it has a manual-train label for the image and edition it has now.
    """
    listing_ids = set(listings_to_relabel()) - set(skipped)
    return [QueueItem(listing_id, TIER_OUTDATED, "earlier image or edition", None) for listing_id in sorted(listing_ids)]


def unlabelled_covers(skipped: Collection[int] = ()) -> list[QueueItem]:
    """Queue items for every usable cover without a manual-train label, for a catalogue that has no trained model yet.

    A cover of a game with fewer labelled covers comes first, counting the
    game's covers served before it, so the first labels spread over many
    games instead of one game's listings, also after some are saved.
    """
    labelled = Verdict.objects.filter(listing=OuterRef("pk"), source=Verdict.SOURCE_MANUAL_TRAIN)
    usable = Listing.objects.filter(cover__isnull=False, cover__decode_error__isnull=True)
    # Per game, the labelled covers plus the unlabelled ones served so far.
    counted: Counter[int] = Counter(usable.filter(Exists(labelled)).values_list("edition__game_id", flat=True).iterator(chunk_size=2000))
    rows = (
        usable.exclude(Exists(labelled))
        .exclude(pk__in=list(skipped))
        .order_by("edition__game_id", "pk")
        .values_list("pk", "edition__game_id")
    )
    ordered = []
    for listing_id, game_id in rows.iterator(chunk_size=2000):
        ordered.append((counted[game_id], game_id, listing_id))
        counted[game_id] += 1
    ordered.sort()
    return [QueueItem(listing_id, TIER_NO_MODEL, "no model", None) for _, _, listing_id in ordered]


def build_queue(
    skipped: Iterable[int] = (),
    *,
    rare_limit: int = RARE_CLASS_LIMIT,
    gap: float = BOUNDARY_GAP,
    doubt: float = DOUBT_LEVEL,
    version: ClassifierVersion | None = None,
) -> list[QueueItem]:
    """Return the whole queue in serving order, leaving out the listing ids in ``skipped``.

    ``version`` defaults to the active heads version. With none active, the
    queue contains the listings whose labels are outdated, then every other
    unlabelled cover (``unlabelled_covers``), so that staff can give the
    labels the first training needs.
    """
    if version is None:
        version = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()
    if version is None:
        # Outdated labels need no model verdict to be checked again.
        # A listing with outdated labels has a manual-train row, so it is not also an unlabelled cover.
        return outdated_items(skipped) + unlabelled_covers(skipped)
    rare = rare_classes(manual_label_counts(), rare_limit)
    skipped = set(skipped)
    verdicts = unlabelled_active_verdicts(version, skipped)

    items: list[QueueItem] = outdated_items(skipped) + audit_suspects(skipped)
    rows = verdicts.values_list("listing_id", "quality", "quality_confidence")
    for listing_id, quality, confidence in rows.iterator(chunk_size=2000):
        if quality == UNKNOWN:
            items.append(QueueItem(listing_id, TIER_UNKNOWN, quality, confidence))
        elif quality in rare:
            items.append(QueueItem(listing_id, TIER_RARE, quality, confidence))

    # Only the few rows predicted as a boundary class, or clean without much
    # margin, need their probabilities. The probabilities sum to 1, so a clean
    # probability above 1 - doubt leaves every other class below doubt.
    boundary = verdicts.filter(quality__in=BOUNDARY_CLASSES)
    items += _items_where(boundary, TIER_BOUNDARY, lambda probs: is_boundary_case(probs, gap))
    unsure_clean = verdicts.filter(quality="clean").exclude(quality_confidence__gt=1.0 - doubt)
    items += _items_where(unsure_clean, TIER_DOUBTFUL_CLEAN, lambda probs: doubtful_clean(probs, doubt))
    level = version_new_text_level(version)
    if level is not None:
        new_text = verdicts.filter(quality="clean", text_novelty__gt=level).values_list("listing_id", "quality", "quality_confidence")
        items += [QueueItem(listing_id, TIER_NEW_TEXT, quality, confidence) for listing_id, quality, confidence in new_text]

    # A missing confidence sorts first, because nothing is known about that verdict.
    items.sort(key=lambda item: (TIER_ORDER.index(item.tier), item.confidence or 0.0, item.listing_id))
    # A listing can qualify for several tiers, and it is served once, in the first.
    served: set[int] = set()
    unique = []
    for item in items:
        if item.listing_id not in served:
            served.add(item.listing_id)
            unique.append(item)
    return unique


def _items_where(verdicts, tier: str, test) -> list[QueueItem]:
    """Return queue items of ``tier`` for the ``verdicts`` whose probabilities pass ``test``."""
    rows = verdicts.values_list("listing_id", "quality", "quality_confidence", "quality_probs")
    return [QueueItem(listing_id, tier, quality, confidence) for listing_id, quality, confidence, probs in rows if test(probs)]


def queue_counts(items: Iterable[QueueItem]) -> dict[str, int]:
    counts = {tier: 0 for tier in TIER_ORDER}
    for item in items:
        counts[item.tier] += 1
    return counts

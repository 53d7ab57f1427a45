"""Plain-language reasons for where each candidate cover ranks on a game page.

The ranking itself lives in coverpick.ranking. This module only reads the
annotations that ``ranked_covers`` puts on each listing (tier, verdicts,
``is_pinned``, ``platform_mismatch``, ``is_unusable``, ``natural_pixels``)
and the platforms that ``annotate_platforms`` adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import OuterRef, QuerySet, Subquery

from coverpick.catalogue.models import ClassifierVersion, CoverImage, Listing, Verdict
from coverpick.labels import PINNED_TIER
from coverpick.ranking import (
    GROUP_CLEAN_LEANING,
    GROUP_OTHER,
    GROUP_PINNED,
    GROUP_UNUSABLE,
    MISMATCH_TIER,
    UNUSABLE_TIER,
    verdict_source,
)
from coverpick.vision.stats import STAT_NAMES

TIER_NAMES = {
    PINNED_TIER: "pinned by staff",
    0: "clean cover, or one whose only flaw is a key-card or code notice",
    1: "3D render",
    2: "bundle or low resolution",
    3: "margins or background",
    4: "unknown",
    5: "box contents",
    6: "wrong cover",
    UNUSABLE_TIER: "no usable image",
}

SOURCE_NAMES = {
    "manual-pin": "staff pin",
    "manual-train": "staff label",
    "review": "staff review",
    "classifier": "classifier",
    "none": "no verdict yet",
}


def annotate_platforms(listings: QuerySet[Listing]) -> QuerySet[Listing]:
    """Add the platform family that the active heads and phase 1 read on each cover."""
    heads = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True)
    phase1 = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_PHASE1, is_active=True)
    heads_row = Verdict.objects.filter(listing=OuterRef("pk"), classifier_version__in=heads)
    phase1_row = Verdict.objects.filter(listing=OuterRef("pk"), classifier_version__in=phase1)
    return listings.annotate(
        heads_platform=Subquery(heads_row.values("platform")[:1]),
        heads_probs=Subquery(heads_row.values("quality_probs")[:1]),
        phase1_platform=Subquery(phase1_row.values("platform")[:1]),
    )


def tier_name(tier: int | None) -> str:
    return TIER_NAMES.get(tier, "unknown")


def tier_reason(listing: Listing) -> str:
    """Say which ranking rule put this listing in its tier."""
    if listing.tier == UNUSABLE_TIER:
        if listing.cover_id is None:
            problem = listing.cover_error or "the image was never stored"
        else:
            problem = listing.cover.decode_error or "the image does not decode"
        if listing.is_pinned:
            return f"Pinned by staff, but the pin does not count while the listing has no usable image: {problem}."
        return f"No usable image: {problem}."
    if listing.is_pinned:
        return "Pinned by staff, so it always comes first."
    if listing.platform_mismatch and not listing.has_staff_label and listing.tier == MISMATCH_TIER:
        read = _mismatching_platform(listing)
        return (
            f"Declared platform family is {listing.platform_family}, but a classifier reads {read} "
            "on the cover, so it ranks as a wrong console."
        )
    verdict = listing.effective_verdict
    source = SOURCE_NAMES.get(verdict_source(listing), verdict_source(listing))
    if verdict is None:
        return "No verdict yet, so it ranks with the unknown covers."
    return f"Verdict {verdict} ({source}) puts it in tier {listing.tier}, {tier_name(listing.tier)}."


def _mismatching_platform(listing: Listing) -> str:
    for platform in (getattr(listing, "heads_platform", None), getattr(listing, "phase1_platform", None)):
        if platform and platform not in ("unknown", listing.platform_family):
            return platform
    return "another family"


GROUP_NAMES = {
    GROUP_PINNED: "the pinned cover",
    GROUP_CLEAN_LEANING: "covers judged clean or leaning clean",
    GROUP_OTHER: "other usable covers",
    GROUP_UNUSABLE: "unusable covers",
}


def _score(value: float) -> str:
    """Format a clean score with two decimals, or as "below 0.01" where two decimals would show 0.00."""
    return "below 0.01" if 0.0 < value < 0.005 else f"{value:.2f}"


def _score_pair(mine: float, theirs: float) -> tuple[str, str]:
    """Format two different clean scores with as many decimals as it takes (two to six) to show them apart."""
    if _score(mine) != _score(theirs):
        return _score(mine), _score(theirs)
    for places in range(3, 7):
        if f"{mine:.{places}f}" != f"{theirs:.{places}f}":
            return f"{mine:.{places}f}", f"{theirs:.{places}f}"
    return f"{mine:.6f} ({'lower' if mine < theirs else 'higher'} beyond six decimals)", f"{theirs:.6f}"


def order_reason(previous: Listing | None, listing: Listing) -> str:
    """Say which sort key puts ``listing`` right after ``previous``.

    The keys are those of coverpick.ranking: group, a clean verdict before a
    key-card or code notice, clean score (higher first), tier, shop preference,
    natural pixel count (larger first), then listing id.
    """
    if previous is None:
        # A pin's tier reason already says that it comes first.
        return "" if listing.is_pinned else "Ranks first."
    if listing.rank_group != previous.rank_group:
        return f"Below the cover above because it is among {GROUP_NAMES[listing.rank_group]}, which rank after {GROUP_NAMES[previous.rank_group]}."
    if listing.notice_rank != previous.notice_rank:
        return f"Same group as the cover above, but its verdict {listing.effective_verdict} carries a notice that a plain clean cover does not."
    if listing.clean_score != previous.clean_score:
        mine, theirs = _score_pair(listing.clean_score, previous.clean_score)
        return f"Same group as the cover above; its clean score is {mine} against {theirs}."
    if listing.tier != previous.tier:
        return f"Same group and clean score as the cover above; its tier is {listing.tier} against {previous.tier}."
    if listing.shop.preference != previous.shop.preference:
        return (
            f"Same tier and clean score as the cover above; its shop's preference is {listing.shop.preference} "
            f"against {previous.shop.preference} (lower wins)."
        )
    if listing.natural_pixels != previous.natural_pixels:
        return (
            f"Same tier, clean score and shop preference as the cover above; its image is smaller "
            f"({pixel_size(listing.cover)} against {pixel_size(previous.cover)})."
        )
    return "Ties with the cover above on tier, clean score, shop preference and size; the older listing comes first."


def pixel_size(cover: CoverImage | None, unknown: str = "size unknown") -> str:
    """Return the cover's width and height in pixels, or ``unknown`` when either was never measured."""
    if cover is None or not cover.width or not cover.height:
        return unknown
    return f"{cover.width}×{cover.height} px"


def image_statistics(cover: CoverImage | None) -> dict[str, float]:
    """Map STAT_NAMES to the cover's stored statistics, or return {} when they were never computed."""
    if cover is None or not cover.stats or len(cover.stats) != len(STAT_NAMES):
        return {}
    return dict(zip(STAT_NAMES, (float(value) for value in cover.stats)))


def image_facts(cover: CoverImage | None) -> list[tuple[str, str]]:
    """Return (name, value) rows of the image statistics that explain a quality verdict."""
    facts = [("Pixel size", pixel_size(cover, unknown="unknown"))]
    stats = image_statistics(cover)
    if not stats:
        return facts
    borders = [stats[f"border_white_{side}"] for side in ("top", "bottom", "left", "right")]
    corners = [stats[name] for name in STAT_NAMES if name.startswith("corner_bg_")]
    facts.append(("Border whiteness (top, bottom, left, right)", " / ".join(f"{value:.0%}" for value in borders)))
    facts.append(("Corners showing background", f"{sum(value >= 0.5 for value in corners)} of 4"))
    facts.append(("Sharpness (log10 Laplacian variance)", f"{stats['log10_laplacian_var']:.2f}"))
    return facts


def top_probabilities(probs: dict[str, float] | None, count: int = 3) -> list[tuple[str, float]]:
    if not probs:
        return []
    return sorted(probs.items(), key=lambda item: item[1], reverse=True)[:count]


def classifier_note(listing: Listing) -> str:
    """Describe the active classifier's verdict beside the verdict that decides the tier."""
    if listing.classifier_verdict is None:
        return ""
    confidence = listing.classifier_confidence
    share = f" at {confidence:.0%}" if confidence is not None else ""
    if verdict_source(listing) == "classifier":
        return f"confidence {confidence:.0%}" if confidence is not None else ""
    return f"classifier says {listing.classifier_verdict}{share}"


@dataclass
class Candidate:
    listing: Listing
    position: int
    source: str
    tier_label: str
    tier_reason: str
    order_reason: str
    classifier_note: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    probabilities: list[tuple[str, float]] = field(default_factory=list)


def describe_candidates(ranked: list[Listing]) -> list[Candidate]:
    """Wrap ranked listings with the reasons the game page shows for each."""
    candidates = []
    previous = None
    for position, listing in enumerate(ranked, start=1):
        source = verdict_source(listing)
        candidates.append(
            Candidate(
                listing=listing,
                position=position,
                source=SOURCE_NAMES.get(source, source),
                tier_label=tier_name(listing.tier),
                tier_reason=tier_reason(listing),
                order_reason=order_reason(previous, listing),
                classifier_note=classifier_note(listing),
                facts=image_facts(listing.cover),
                probabilities=top_probabilities(getattr(listing, "heads_probs", None)),
            )
        )
        previous = listing
    return candidates

"""The label vocabulary: quality classes, platform families, exclusivity rules and tiers.

``LABEL_CLASSES`` is append-only. Checkpoints store the list they were trained
with, and the ranking reads class names verbatim, so renaming or reordering a
class would silently change what old verdicts mean.
"""

from __future__ import annotations

from collections.abc import Iterable

LABEL_CLASSES: tuple[str, ...] = (
    "clean",
    "3d_render",
    "deluxe_bundle",
    "contents",
    "wrong_console",
    "wrong_game",
    "low_resolution",
    "multi_platform",
    "gkc",
    "ciab",
    "placeholder",
    "margins",
    "unclear",
    "bad_background",
)

# The verdict written when a head's confidence is below its floor, and the
# value of a pin's demotion markers. It is not a class a head can predict.
UNKNOWN = "unknown"
# The sweep summary's and --rescan-verdicts' name for a listing whose image could not be used.
ERROR_VERDICT = "error"

# Platform families the platform head predicts. Listings on other systems are
# stored with family "other", which no head predicts.
PLATFORM_FAMILIES: tuple[str, ...] = ("nintendo", "sony", "xbox", "pc")
OTHER_FAMILY = "other"
ALL_FAMILIES: tuple[str, ...] = PLATFORM_FAMILIES + (OTHER_FAMILY,)

# Labels that describe the SKU rather than a defect of the picture.
SKU_LABELS = frozenset({"gkc", "ciab"})
DEFECT_LABELS = frozenset(LABEL_CLASSES) - {"clean", "unclear"} - SKU_LABELS

# Ranking tiers: lower wins. Anything not listed (unknown, no verdict) is tier 4.
TIER_BY_VERDICT: dict[str, int] = {
    "clean": 0,
    "gkc": 0,
    "ciab": 0,
    "3d_render": 1,
    "low_resolution": 2,
    "deluxe_bundle": 2,
    # bad_background is a presentation defect like margins: the cover itself is
    # right, so it ranks beside margins rather than among the unknowns.
    "margins": 3,
    "bad_background": 3,
    "unknown": 4,
    "unclear": 4,
    "contents": 5,
    "multi_platform": 6,
    "wrong_console": 6,
    "wrong_game": 6,
    "placeholder": 6,
}
DEFAULT_TIER = 4
PINNED_TIER = -1


class LabelError(ValueError):
    """A manual label set that breaks the vocabulary or the exclusivity rules."""


def validate_label_set(labels: Iterable[str]) -> list[str]:
    """Check a manual multi-label set and return it deduplicated in class-list order.

    Raises LabelError naming the offending labels and the rule they break.
    """
    given = list(labels)
    unknown = sorted({label for label in given if label not in LABEL_CLASSES})
    if unknown:
        raise LabelError(
            f"Unknown label(s) {', '.join(unknown)}. "
            f"Valid labels are: {', '.join(LABEL_CLASSES)}."
        )
    chosen = set(given)
    if not chosen:
        raise LabelError("A label set needs at least one label.")
    for exclusive in ("wrong_game", "unclear"):
        if exclusive in chosen and len(chosen) > 1:
            others = ", ".join(sorted(chosen - {exclusive}))
            raise LabelError(
                f"'{exclusive}' excludes every other label, but it was given with {others}. "
                f"Keep '{exclusive}' alone or remove it."
            )
    if "clean" in chosen:
        defects = sorted(chosen & DEFECT_LABELS)
        if defects:
            raise LabelError(
                f"'clean' excludes defect labels, but it was given with {', '.join(defects)}. "
                "'clean' may only be combined with 'gkc' or 'ciab'."
            )
    if SKU_LABELS <= chosen:
        raise LabelError("'gkc' and 'ciab' exclude each other: a box holds either a key card or a code.")
    return [label for label in LABEL_CLASSES if label in chosen]


def tier_for(verdict: str | None) -> int:
    """Return the ranking tier of a quality verdict (lower wins)."""
    if verdict is None:
        return DEFAULT_TIER
    return TIER_BY_VERDICT.get(verdict, DEFAULT_TIER)

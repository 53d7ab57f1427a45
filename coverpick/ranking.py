"""The ranking: one annotated query orders every candidate cover of a game; lower wins.

Rules, in order:
- a pinned cover (manual-pin/clean) always wins (tier -1), unless a re-import
  has moved its listing to another game since;
- a listing whose image could not be stored or decoded is unusable (tier 7);
- a cover that a classifier assigns to a family other than the listing's
  declared family ranks as wrong_console (tier 6): the active platform head when
  it does not abstain, or phase 1 when its confidence reaches PHASE1_CONFIDENT.
  A staff label set (manual-train) overrides this, since staff judged the cover
  for the listing, but a review, which confirms one class only, does not;
- otherwise the tier of the latest manual verdict (manual-train, a confirmed
  review, a pin's clean) if there is one, else the active heads' verdict.
  Demotion markers (manual-pin/unknown) and rejected reviews are never read as
  verdicts;
- covers then fall into groups, in this order: the pinned cover, the
  clean-leaning covers (tier 0, or an active-heads verdict of `unknown`, which
  the heads give when clean is their best guess but below the clean
  threshold), every other usable cover, and unusable covers last;
- within a group, a `clean` verdict comes before `gkc` and `ciab` (a plain
  cover beats one that carries a key-card or code notice). Then the higher
  clean score wins: 1 for a manual verdict of tier 0 (clean, gkc or ciab),
  MANUAL_DEFECT_SCORE for one of tiers 1 to 4, 0 for any other manual
  verdict, otherwise the active heads' probability of `clean`. Tier, shop
  preference, natural resolution and listing id break the remaining ties.

The clean score comes before the tier inside a group because the tier follows
the argmax class alone: a clean cover that the heads mistake for wrong_game
would otherwise sink below every 3D render. Under cross-validation by game on
the sample catalogue, the truly clean cover ranks first in 0.93 of the games
that have one with this order, against 0.73 when the tier decides.
"""

from __future__ import annotations

from django.db.models import (
    Case,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from coverpick.catalogue.models import ClassifierVersion, Game, Listing, Verdict
from coverpick.labels import DEFAULT_TIER, OTHER_FAMILY, PINNED_TIER, TIER_BY_VERDICT, UNKNOWN

PHASE1_CONFIDENT = 0.8
UNUSABLE_TIER = 7
MISMATCH_TIER = TIER_BY_VERDICT["wrong_console"]
TIER_ZERO_VERDICTS = tuple(verdict for verdict, tier in TIER_BY_VERDICT.items() if tier == 0)
# A staff verdict of tiers 1 to 4 (3d_render, low_resolution, deluxe_bundle,
# margins, bad_background, unclear) ranks like this clean score. So it ranks
# above covers the heads find almost surely not clean, such as a placeholder
# at 0.0002, and below covers the heads give a real chance of being clean. Staff found none
# of those covers wrong for the listing, unlike the verdicts of tiers 5 and 6. The value is a judgement, not measured: the sample has no staff labels
# in its cross-validation.
MANUAL_DEFECT_SCORE = 0.05
USABLE_DEFECT_VERDICTS = tuple(verdict for verdict, tier in TIER_BY_VERDICT.items() if 1 <= tier <= DEFAULT_TIER)
# Ranking groups, in order: the pin, clean-leaning covers, other usable covers, unusable covers.
GROUP_PINNED, GROUP_CLEAN_LEANING, GROUP_OTHER, GROUP_UNUSABLE = -1, 0, 1, 2


def _manual_verdicts():
    """Manual rows that count as verdicts: labels, confirmed reviews and pins' clean rows.

    A row written for an earlier image of the listing, or while it was filed
    under another edition, does not count, so the classifier's verdict decides
    until someone labels the listing again. The tier of a pinned listing comes
    from the pin itself.
    """
    return (
        Verdict.objects.filter(listing=OuterRef("pk"), source__in=Verdict.MANUAL_SOURCES, quality__isnull=False)
        .filter(Q(cover__isnull=True) | Q(cover=OuterRef("cover")))
        .filter(Q(edition__isnull=True) | Q(edition=OuterRef("edition")))
        .exclude(source=Verdict.SOURCE_MANUAL_PIN, quality=UNKNOWN)
    )


def annotate_ranking(listings: QuerySet[Listing]) -> QuerySet[Listing]:
    """Annotate listings with tier, verdict and its source, and order them best first within each game."""
    heads = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True)
    phase1 = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_PHASE1, is_active=True)
    latest_manual = _manual_verdicts().order_by("-updated_at", "-pk")
    active_verdict = Verdict.objects.filter(listing=OuterRef("pk"), classifier_version__in=heads)

    mismatch = Verdict.objects.filter(listing=OuterRef("pk"), platform__isnull=False).exclude(
        platform=UNKNOWN
    ).exclude(platform=OuterRef("platform_family")).filter(
        Q(classifier_version__in=heads)
        | Q(classifier_version__in=phase1, platform_confidence__gte=PHASE1_CONFIDENT)
    )
    # A pin chose the listing among its game's covers. It still wins after the
    # image or the platform changed, but not once the listing belongs to
    # another game, whose covers no one compared it with.
    pinned = Verdict.objects.filter(listing=OuterRef("pk"), source=Verdict.SOURCE_MANUAL_PIN, quality="clean").filter(
        Q(edition__isnull=True) | Q(edition__game=OuterRef("edition__game"))
    )

    tier_cases = [When(effective_verdict=verdict, then=Value(tier)) for verdict, tier in TIER_BY_VERDICT.items()]
    return (
        listings.annotate(
            manual_verdict=Subquery(latest_manual.values("quality")[:1]),
            manual_source=Subquery(latest_manual.values("source")[:1]),
            classifier_verdict=Subquery(active_verdict.values("quality")[:1]),
            classifier_confidence=Subquery(active_verdict.values("quality_confidence")[:1]),
            classifier_clean=Subquery(
                active_verdict.annotate(clean=Cast(KT("quality_probs__clean"), FloatField())).values("clean")[:1]
            ),
            effective_verdict=Coalesce("manual_verdict", "classifier_verdict"),
            is_pinned=Exists(pinned),
            # A label set is a full judgement of the cover, while a review confirms one class only.
            has_staff_label=Exists(_manual_verdicts().filter(source=Verdict.SOURCE_MANUAL_TRAIN)),
            # Declared family "other" has no class in the platform head, so a
            # mismatch there would only mean the head cannot say "other".
            platform_mismatch=Exists(mismatch) & ~Q(platform_family=OTHER_FAMILY),
            is_unusable=Q(cover__isnull=True) | Q(cover__decode_error__isnull=False),
            natural_pixels=Coalesce(F("cover__width"), 0) * Coalesce(F("cover__height"), 0),
        )
        .annotate(
            tier=Case(
                # A pin of a listing with no usable image left would show no
                # cover at all, so it counts again only once the image is usable.
                When(is_unusable=True, then=Value(UNUSABLE_TIER)),
                When(is_pinned=True, then=Value(PINNED_TIER)),
                # Staff labelled the cover for this listing, so the label beats a classifier's platform reading.
                When(platform_mismatch=True, has_staff_label=False, then=Value(MISMATCH_TIER)),
                *tier_cases,
                default=Value(DEFAULT_TIER),
                output_field=IntegerField(),
            )
        )
        .annotate(
            rank_group=Case(
                When(tier=PINNED_TIER, then=Value(GROUP_PINNED)),
                When(tier=UNUSABLE_TIER, then=Value(GROUP_UNUSABLE)),
                When(tier=TIER_BY_VERDICT["clean"], then=Value(GROUP_CLEAN_LEANING)),
                When(
                    manual_verdict__isnull=True,
                    platform_mismatch=False,
                    classifier_verdict=UNKNOWN,
                    then=Value(GROUP_CLEAN_LEANING),
                ),
                default=Value(GROUP_OTHER),
                output_field=IntegerField(),
            ),
            notice_rank=Case(When(effective_verdict__in=("gkc", "ciab"), then=Value(1)), default=Value(0), output_field=IntegerField()),
            clean_score=Case(
                When(is_pinned=True, then=Value(1.0)),
                When(manual_verdict__in=TIER_ZERO_VERDICTS, then=Value(1.0)),
                When(manual_verdict__in=USABLE_DEFECT_VERDICTS, then=Value(MANUAL_DEFECT_SCORE)),
                When(manual_verdict__isnull=False, then=Value(0.0)),
                default=Coalesce("classifier_clean", Value(0.0)),
                output_field=FloatField(),
            ),
        )
        .order_by(
            "edition__game_id", "rank_group", "notice_rank", "-clean_score", "tier", "shop__preference", "-natural_pixels", "pk"
        )
    )


def ranked_covers(game: Game) -> QuerySet[Listing]:
    """Return every candidate cover of one game, best first."""
    return annotate_ranking(
        Listing.objects.filter(edition__game=game).select_related("shop", "cover", "edition")
    )


def verdict_source(listing: Listing) -> str:
    """Name where a ranked listing's verdict came from, for display."""
    if listing.is_pinned:
        return "manual-pin"
    if listing.manual_verdict is not None:
        return listing.manual_source
    if listing.classifier_verdict is not None:
        return "classifier"
    return "none"


def compute_primaries(games: QuerySet[Game] | None = None) -> int:
    """Recompute and store the primary cover of every game (or of the given games) in one UPDATE.

    Returns the number of games updated.
    """
    games = games if games is not None else Game.objects.all()
    best = annotate_ranking(Listing.objects.filter(edition__game=OuterRef("pk")))
    return games.update(
        primary_listing=Subquery(best.values("pk")[:1]),
        primary_tier=Subquery(best.values("tier")[:1]),
        primary_computed_at=timezone.now(),
    )

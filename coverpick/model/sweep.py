"""The sweep: predict verdicts for listings with the active heads, and store phase-1 platform rows.

Work goes in chunks of games, because a listing's prototype needs the features
of its game's other editions. The other usable listings of a selected
listing's game are predicted again with it, since their inputs read it too.
Each chunk's verdicts are written in one
transaction, replacing any row of the same listing and classifier version, so
a killed sweep resumes where it stopped and never duplicates a row.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from coverpick import conf
from coverpick.catalogue.importer import IMAGE_PROBLEMS_SHOWN, ImageProblem, listing_lines
from coverpick.catalogue.models import CoverImage, Listing, Verdict
from coverpick.labels import ERROR_VERDICT
from coverpick.model.dataset import listing_context, usable_listings
from coverpick.model.featurize import featurize, load_image_features, load_phase1, load_stats
from coverpick.model.heads import decide
from coverpick.model.inputs import new_text, text_novelty
from coverpick.model.versions import load_active_heads, phase1_version

logger = logging.getLogger(__name__)

GAMES_PER_CHUNK = 200


@dataclass
class SweepSummary:
    version: str = ""
    selected: int = 0
    predicted: int = 0
    errors: int = 0
    # The first listings without a usable image, as (shop code, product id, reason).
    unusable: list[ImageProblem] = field(default_factory=list)
    # Listings predicted again because they share a game with a selected one (see _predict_chunk).
    refreshed: int = 0
    written: int = 0
    phase1_written: int = 0
    seconds: float = 0.0
    verdicts: Counter = field(default_factory=Counter)
    platforms: Counter = field(default_factory=Counter)
    applied: bool = False

    def lines(self) -> list[str]:
        rate = self.selected / self.seconds if self.seconds else 0.0
        lines = [
            f"Classifier version: {self.version}",
            f"Listings selected: {self.selected}, predicted: {self.predicted}, unusable images: {self.errors}",
            *listing_lines(self.unusable, total=self.errors),
            f"Other listings of the same games predicted again, because a game's covers are compared with each other: "
            f"{self.refreshed}. Their verdicts are replaced and counted below.",
            "Verdicts: " + (", ".join(f"{k} {v}" for k, v in self.verdicts.most_common()) or "none"),
            "Platforms: " + (", ".join(f"{k} {v}" for k, v in self.platforms.most_common()) or "none"),
            f"Time: {self.seconds:.1f} s ({rate:.1f} listings/s)",
        ]
        if self.applied:
            lines.append(
                f"Verdict rows written: {self.written}, and {self.phase1_written} phase-1 platform rows "
                "(the banner heuristic's platform calls, for the selected listings only)"
            )
        else:
            lines.append("Dry run: nothing written (pass --apply to store verdicts)")
        return lines


def select_listings(version, *, rescan_all: bool = False, rescan_verdicts: list[str] | None = None):
    listings = Listing.objects.all()
    if rescan_all:
        return listings
    if rescan_verdicts:
        picked = Q(verdicts__quality__in=[v for v in rescan_verdicts if v != ERROR_VERDICT])
        if ERROR_VERDICT in rescan_verdicts:
            picked |= Q(verdicts__error__isnull=False)
        return listings.filter(picked, verdicts__classifier_version=version).distinct()
    has_row = Verdict.objects.filter(listing=OuterRef("pk"), classifier_version=version)
    return listings.exclude(Exists(has_row))


def count_pending(version) -> int:
    return select_listings(version).count()


def sweep(*, rescan_all: bool = False, rescan_verdicts: list[str] | None = None, apply: bool = False, progress: bool = False) -> SweepSummary:
    started = time.monotonic()
    version, heads = load_active_heads()
    phase1 = phase1_version()
    summary = SweepSummary(version=version.name, applied=apply)
    targets = select_listings(version, rescan_all=rescan_all, rescan_verdicts=rescan_verdicts)
    target_ids = list(targets.values_list("pk", "edition__game_id").order_by("edition__game_id", "pk"))
    summary.selected = len(target_ids)
    games = sorted({game_id for _, game_id in target_ids})
    clean_floor = conf.clean_threshold() if _env_set("CLEAN_THRESHOLD") else heads.clean_threshold
    platform_floor = conf.platform_threshold() if _env_set("PLATFORM_THRESHOLD") else heads.platform_threshold
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=summary.selected, desc="sweep", unit="listing")
    wanted = {listing_id for listing_id, _ in target_ids}
    for start in range(0, len(games), GAMES_PER_CHUNK):
        chunk_games = games[start : start + GAMES_PER_CHUNK]
        rows = _predict_chunk(chunk_games, wanted, version, phase1, heads, clean_floor, platform_floor, summary)
        if apply:
            _write_rows(rows, version, phase1)
            heads_rows = sum(1 for row in rows if row.classifier_version_id == version.pk)
            summary.written += heads_rows
            summary.phase1_written += len(rows) - heads_rows
        if bar is not None:
            bar.update(sum(1 for row in rows if row.classifier_version_id == version.pk and row.listing_id in wanted))
    if bar is not None:
        bar.close()
    summary.seconds = time.monotonic() - started
    return summary


def _env_set(name: str) -> bool:
    return bool(os.environ.get(name))


def _predict_chunk(game_ids, wanted, version, phase1, heads, clean_floor, platform_floor, summary) -> list[Verdict]:
    listings = Listing.objects.filter(edition__game_id__in=game_ids)
    covers = CoverImage.objects.filter(listings__in=listings).distinct()
    featurize(covers, heads.backbone)
    context = listing_context(usable_listings().filter(edition__game_id__in=game_ids))
    rows: list[Verdict] = []
    # A verdict reads the other covers of its game (prototype, comparisons,
    # title match, the edition's platform evidence), so a selected listing
    # changes its siblings' inputs too, and every usable listing of the game
    # is predicted again.
    picked = list(range(len(context.listing_ids))) if any(listing_id in wanted for listing_id in context.listing_ids) else []
    if picked:
        features = load_image_features(context.sha256, heads.backbone)
        quality_probs, platform_probs = heads.heads.predict(
            features,
            context.families,
            context.game_ids,
            context.edition_ids,
            load_stats(context.sha256),
            load_phase1(context.sha256),
            context.titles,
            picked,
        )
        predictions = decide(quality_probs, platform_probs, clean_floor, platform_floor)
        novelty = text_novelty(features, context.game_ids)
        for i, prediction in zip(picked, predictions):
            measured = new_text(novelty, i)
            rows.append(
                Verdict(
                    listing_id=context.listing_ids[i],
                    source=Verdict.SOURCE_CLASSIFIER,
                    classifier_version=version,
                    quality=prediction.quality,
                    quality_confidence=prediction.quality_confidence,
                    quality_probs=prediction.quality_probs,
                    text_novelty=None if measured is None else round(measured, 4),
                    platform=prediction.platform,
                    platform_confidence=prediction.platform_confidence,
                    platform_probs=prediction.platform_probs,
                )
            )
            summary.predicted += 1
            if context.listing_ids[i] not in wanted:
                summary.refreshed += 1
            summary.verdicts[prediction.quality] += 1
            summary.platforms[prediction.platform] += 1
    usable = set(context.listing_ids)
    for listing in listings.filter(pk__in=wanted).select_related("cover", "shop").order_by("shop__code", "product_id"):
        if listing.pk not in usable:
            reason = listing.cover_error or (listing.cover.decode_error if listing.cover else None) or "no usable image"
            rows.append(Verdict(listing=listing, source=Verdict.SOURCE_CLASSIFIER, classifier_version=version, error=reason))
            summary.errors += 1
            if len(summary.unusable) < IMAGE_PROBLEMS_SHOWN:
                summary.unusable.append(ImageProblem(listing.shop.code, listing.product_id, reason))
            summary.verdicts[ERROR_VERDICT] += 1
        elif listing.cover.phase1:
            result = listing.cover.phase1
            rows.append(
                Verdict(
                    listing=listing,
                    source=Verdict.SOURCE_CLASSIFIER,
                    classifier_version=phase1,
                    platform=result.get("family"),
                    platform_confidence=result.get("confidence"),
                    platform_probs={"reason": result.get("reason")},
                )
            )
    return rows


def _write_rows(rows: list[Verdict], version, phase1) -> None:
    by_version: dict[int, list[int]] = {}
    for row in rows:
        by_version.setdefault(row.classifier_version_id or row.classifier_version.pk, []).append(row.listing_id or row.listing.pk)
    with transaction.atomic():
        for version_id, listing_ids in by_version.items():
            Verdict.objects.filter(classifier_version_id=version_id, listing_id__in=listing_ids).delete()
        Verdict.objects.bulk_create(rows, batch_size=500)

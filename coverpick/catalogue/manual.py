"""Manual writes: labels, reviews, pins and unpins, each checked and audited.

Every manual write goes through this module, so the exclusivity rules and the
audit log hold for the importer, the CLI and the web pages alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q

from coverpick.catalogue.models import AuditEvent, Game, Listing, Verdict
from coverpick.labels import LABEL_CLASSES, UNKNOWN, LabelError, tier_for, validate_label_set

logger = logging.getLogger(__name__)

# The note that `coverpick import` writes on its audit events. The import
# writes with no user, and the web pages always pass the staff member.
IMPORT_NOTE = "import"


def ranking_label(labels: Iterable[str]) -> str:
    """Return the label of a multi-label set that decides its tier: the worst one.

    A 3D render of the wrong console ranks as wrong_console; a clean cover that
    carries a key-card notice ranks as clean. Ties keep class-list order.
    """
    ordered = [label for label in LABEL_CLASSES if label in set(labels)]
    return max(ordered, key=tier_for)


def set_labels(listing: Listing, labels: Iterable[str], user=None, note: str = "") -> Verdict:
    """Store a manual-train label set for the cover a listing shows now, under its edition now, replacing the previous one.

    Raises LabelError when the set breaks the vocabulary or the exclusivity rules;
    nothing is written then.
    """
    checked = validate_label_set(labels)
    with transaction.atomic():
        previous = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).first()
        if previous is not None and previous.labels == checked and not previous.is_outdated(listing):
            return previous
        verdict, _ = Verdict.objects.update_or_create(
            listing=listing,
            source=Verdict.SOURCE_MANUAL_TRAIN,
            defaults={
                "labels": checked,
                "quality": ranking_label(checked),
                "user": user,
                "quality_confidence": 1.0,
                "cover_id": listing.cover_id,
                "edition_id": listing.edition_id,
            },
        )
        AuditEvent.objects.create(
            action="label",
            user=user,
            listing=listing,
            game_id=listing.edition.game_id,
            detail={"labels": checked, "previous": previous.labels if previous else None, "note": note},
        )
    return verdict


def clear_labels(listing: Listing, user=None) -> None:
    with transaction.atomic():
        deleted, _ = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).delete()
        if deleted:
            AuditEvent.objects.create(action="unlabel", user=user, listing=listing, game_id=listing.edition.game_id)


def record_review(listing: Listing, predicted: str, confirmed: bool, user=None) -> Verdict:
    """Store a reviewer's decision on a suggested class.

    A confirmed review is a verdict (``quality`` = the class); a rejected one only
    says what the cover is not, so its ``quality`` stays null.
    """
    if predicted not in LABEL_CLASSES:
        raise LabelError(f"Unknown label {predicted!r} in review. Valid labels are: {', '.join(LABEL_CLASSES)}.")
    decision = Verdict.REVIEW_CONFIRMED if confirmed else Verdict.REVIEW_REJECTED
    with transaction.atomic():
        previous = Verdict.objects.filter(
            listing=listing, source=Verdict.SOURCE_REVIEW, review_predicted=predicted, review_verdict=decision
        ).first()
        if previous is not None and not previous.is_outdated(listing):
            return previous
        verdict, _ = Verdict.objects.update_or_create(
            listing=listing,
            source=Verdict.SOURCE_REVIEW,
            review_predicted=predicted,
            defaults={
                "review_verdict": decision,
                "quality": predicted if confirmed else None,
                "labels": [predicted] if confirmed else [],
                "user": user,
                "cover_id": listing.cover_id,
                "edition_id": listing.edition_id,
            },
        )
        AuditEvent.objects.create(
            action="review",
            user=user,
            listing=listing,
            game_id=listing.edition.game_id,
            detail={"predicted": predicted, "verdict": decision},
        )
    return verdict


def _pin_rows_of(game_id: int) -> Q:
    """Filter for the pin rows a new pin or an unpin of the game replaces.

    These are the rows of the game's listings, and those written under one of
    its editions for a listing that a re-import has moved to another game
    since. Left in place, such a row would count again if the listing moved back.
    """
    return Q(listing__edition__game_id=game_id) | Q(edition__game_id=game_id)


def pin_cover(listing: Listing, user=None, note: str = "") -> None:
    """Make a listing's cover the primary of its game.

    Writes manual-pin/clean on the chosen listing and manual-pin/unknown
    demotion markers on every other listing of the game, replacing any earlier pin.
    ``note`` is stored in the audit event's detail when given.
    """
    game_id = listing.edition.game_id
    with transaction.atomic():
        Game.objects.select_for_update().filter(pk=game_id).first()
        siblings = Listing.objects.filter(edition__game_id=game_id)
        Verdict.objects.filter(_pin_rows_of(game_id), source=Verdict.SOURCE_MANUAL_PIN).delete()
        rows = [
            Verdict(
                listing_id=other_id,
                source=Verdict.SOURCE_MANUAL_PIN,
                quality="clean" if other_id == listing.pk else UNKNOWN,
                labels=["clean"] if other_id == listing.pk else [],
                user=user,
                cover_id=other_cover_id,
                edition_id=other_edition_id,
            )
            for other_id, other_cover_id, other_edition_id in siblings.values_list("pk", "cover_id", "edition_id")
        ]
        Verdict.objects.bulk_create(rows)
        AuditEvent.objects.create(
            action="pin", user=user, listing=listing, game_id=game_id, detail={"note": note} if note else {}
        )
    logger.info(
        "Pinned cover: game=%s listing=%s by=%s", game_id, listing.pk, getattr(user, "username", None) or "import"
    )


def pin_changed_by_staff(game_id: int) -> bool:
    """Return whether the game's latest pin or unpin audit event was made by a staff member (has a user)."""
    latest = (
        AuditEvent.objects.filter(game_id=game_id, action__in=("pin", "unpin")).order_by("-created_at", "-pk").first()
    )
    return latest is not None and latest.user_id is not None


def unpin_game(game: Game, user=None) -> int:
    """Remove a game's pin and its demotion markers; return the number of rows removed."""
    with transaction.atomic():
        deleted, _ = Verdict.objects.filter(_pin_rows_of(game.pk), source=Verdict.SOURCE_MANUAL_PIN).delete()
        AuditEvent.objects.create(action="unpin", user=user, game=game, detail={"rows_removed": deleted})
    logger.info("Unpinned game: game=%s by=%s", game.pk, getattr(user, "username", None) or "cli")
    return deleted

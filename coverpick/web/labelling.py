"""Labelling decisions and the per-session state of the labelling page.

The session keeps three things, all as plain JSON:

- the listing ids a staff member skipped (at most ``MAX_SKIPPED``, oldest
  dropped first), which only hide covers from that session's queue;
- an undo stack of saved decisions (at most ``MAX_UNDO``), each with the
  labels a listing had before and the labels that were saved;
- the number of decisions made in this session, for the "n of N" counter.

Every database write goes through coverpick.catalogue.manual, which audits it.
Each decision chooses the primary cover of its listings' games again in the
same transaction, so a label on a game's primary cover (``wrong_game``, say)
takes it off the game page at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction

from coverpick.catalogue.manual import clear_labels, set_labels
from coverpick.catalogue.models import Game, Listing, Verdict
from coverpick.labels import DEFECT_LABELS, LABEL_CLASSES, SKU_LABELS, validate_label_set
from coverpick.ranking import compute_primaries

logger = logging.getLogger(__name__)

MAX_SKIPPED = 500
MAX_UNDO = 50

SKIPPED_KEY = "label_skipped"
UNDO_KEY = "label_undo"
DONE_KEY = "label_done"

# One key per class, in LABEL_CLASSES order. "u", "s" and Enter are taken by
# undo, skip and save, so the last four classes use q, w, e and r.
CLASS_KEYS: dict[str, str] = dict(zip(LABEL_CLASSES, "1234567890qwer"))

# The exclusivity rules of coverpick.labels.validate_label_set in the form the
# page's script reads, so the script and the server cannot drift apart.
EXCLUSIVITY_RULES = {
    "alone": ["wrong_game", "unclear"],
    "clean": "clean",
    "defects": sorted(DEFECT_LABELS),
    "pairs": [sorted(SKU_LABELS)],
}


class UndoError(RuntimeError):
    """The last saved decision cannot be undone."""


@dataclass(frozen=True)
class UndoResult:
    listing_ids: list[int]
    restored: list[list[str] | None]


# Session state ---------------------------------------------------------------


def skipped_ids(session) -> list[int]:
    return [int(value) for value in session.get(SKIPPED_KEY, [])]


def remember_skip(session, listing_id: int) -> None:
    skipped = [value for value in skipped_ids(session) if value != listing_id]
    skipped.append(listing_id)
    session[SKIPPED_KEY] = skipped[-MAX_SKIPPED:]


def decisions_made(session) -> int:
    return int(session.get(DONE_KEY, 0))


def _push_undo(session, entries: list[dict]) -> None:
    stack = list(session.get(UNDO_KEY, []))
    stack.append(entries)
    session[UNDO_KEY] = stack[-MAX_UNDO:]
    session[DONE_KEY] = decisions_made(session) + 1


def undo_depth(session) -> int:
    return len(session.get(UNDO_KEY, []))


# Writes ------------------------------------------------------------------------


def _manual_row(listing: Listing) -> Verdict | None:
    return Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).only("labels", "cover_id", "edition_id").first()


def current_labels(listing: Listing) -> list[str] | None:
    row = _manual_row(listing)
    return list(row.labels) if row is not None else None


def _rank_games_of(listings: Iterable[Listing]) -> None:
    """Choose the primary cover of the listings' games again."""
    game_ids = {listing.edition.game_id for listing in listings}
    if game_ids:
        compute_primaries(Game.objects.filter(pk__in=game_ids))


def save_labels(session, listing: Listing, labels: Iterable[str], user) -> list[str]:
    """Validate and store a label set for one listing, rank its game again, and push the decision on the undo stack.

    Raises coverpick.labels.LabelError when the set breaks the rules. Then
    nothing is written and the undo stack is unchanged.
    """
    checked = validate_label_set(labels)
    row = _manual_row(listing)
    previous = list(row.labels) if row is not None else None
    with transaction.atomic():
        set_labels(listing, checked, user, note="labelling page")
        _rank_games_of([listing])
    entry = {"listing": listing.pk, "previous": previous, "saved": checked}
    if row is not None:
        # Undo restores the cover and edition that the replaced labels were
        # given for, so labels of an earlier image or edition describe it again.
        entry["previous_cover"] = row.cover_id
        entry["previous_edition"] = row.edition_id
    _push_undo(session, [entry])
    logger.info("Labelled cover: listing=%s labels=%s by=%s", listing.pk, ",".join(checked), user.username)
    return checked


def confirm_clean(session, listings: Sequence[Listing], user) -> list[int]:
    """Store manual-train ["clean"] on listings that still have no manual-train label, and rank their games again.

    A listing that gained a label since the grid page was drawn is left as it
    is. Returns the ids written. The whole batch is one entry on the undo stack.
    """
    written = []
    entries = []
    with transaction.atomic():
        labelled = []
        for listing in listings:
            if current_labels(listing) is not None:
                continue
            set_labels(listing, ["clean"], user, note="labelling grid")
            labelled.append(listing)
            written.append(listing.pk)
            entries.append({"listing": listing.pk, "previous": None, "saved": ["clean"]})
        _rank_games_of(labelled)
    if entries:
        _push_undo(session, entries)
    logger.info("Confirmed clean covers: listings=%s by=%s", ",".join(map(str, written)) or "none", user.username)
    return written


def undo_last(session, user) -> UndoResult:
    """Restore the labels that the last saved decision replaced, or delete the rows it created, and rank the games again.

    Raises UndoError when there is nothing to undo, or when someone changed a
    listing's labels after that decision. Then nothing is written and the
    decision stays on the stack.
    """
    stack = list(session.get(UNDO_KEY, []))
    if not stack:
        raise UndoError("Nothing to undo in this session.")
    entries = stack[-1]
    listings = Listing.objects.select_related("edition").in_bulk([entry["listing"] for entry in entries])
    with transaction.atomic():
        for entry in entries:
            listing = listings.get(entry["listing"])
            if listing is None:
                raise UndoError(f"Listing {entry['listing']} no longer exists, so its decision cannot be undone.")
            if current_labels(listing) != entry["saved"]:
                raise UndoError(
                    f"Listing {listing.pk} was relabelled after this decision, so undo would overwrite "
                    "someone else's labels. Open it from the queue and correct it there."
                )
        for entry in entries:
            listing = listings[entry["listing"]]
            if entry["previous"] is None:
                clear_labels(listing, user)
            else:
                set_labels(listing, entry["previous"], user, note="undo")
                if "previous_cover" in entry:
                    # Entries pushed before editions were recorded have no previous_edition.
                    Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).update(
                        cover_id=entry["previous_cover"], edition_id=entry.get("previous_edition", listing.edition_id)
                    )
        _rank_games_of(listings[entry["listing"]] for entry in entries)
    session[UNDO_KEY] = stack[:-1]
    session[DONE_KEY] = max(0, decisions_made(session) - 1)
    ids = [entry["listing"] for entry in entries]
    logger.info("Undid labelling decision: listings=%s by=%s", ",".join(map(str, ids)), user.username)
    return UndoResult(listing_ids=ids, restored=[entry["previous"] for entry in entries])

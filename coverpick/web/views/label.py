"""The staff labelling page: one queued cover at a time, and a grid for confirming clean covers."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db.models import Exists, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from coverpick.catalogue.models import ClassifierVersion, Listing, Verdict, for_earlier_edition, for_earlier_image, for_outdated
from coverpick.labels import LABEL_CLASSES, LabelError
from coverpick.model.dataset import MIN_TRAINING_ROWS
from coverpick.web import labelling
from coverpick.web.access import staff_required
from coverpick.web.explain import pixel_size, top_probabilities
from coverpick.web.queue import TIER_DESCRIPTIONS, build_queue, queue_counts
from coverpick.web.views import bad_request

logger = logging.getLogger(__name__)

GRID_SIZE = 24
# NOTE: a guessed threshold. How many covers reach it depends on how the
# active heads are calibrated, so the grid can hold fewer than 24 covers.
GRID_MIN_CONFIDENCE = 0.9
TOP_PROBABILITIES = 5


def _listing_id(request) -> int | None:
    try:
        return int(request.POST.get("listing", ""))
    except ValueError:
        return None


def _outdated_change(outdated_rows) -> str:
    """Return the sentence naming what changed since the outdated staff rows were written."""
    image = outdated_rows.filter(for_earlier_image()).exists()
    edition = outdated_rows.filter(for_earlier_edition()).exists()
    if image and edition:
        return "The image and the listing's platform or game have changed since"
    if image:
        return "The image has changed since"
    return "The listing's platform or game has changed since"


def _item_context(listing: Listing, queue: list, session) -> dict:
    """Collect what the page shows about one cover: the image, the listing and the model's verdict."""
    active = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()
    verdict = None
    if active is not None:
        verdict = Verdict.objects.filter(listing=listing, classifier_version=active).first()
    siblings = (
        Listing.objects.filter(edition__game_id=listing.edition.game_id, cover__isnull=False)
        .exclude(pk=listing.pk)
        .select_related("shop", "cover", "edition")
        .order_by("edition__platform", "shop__preference", "pk")
    )
    existing = labelling.current_labels(listing)
    outdated_rows = Verdict.objects.filter(for_outdated(), listing=listing, source__in=Verdict.JUDGEMENT_SOURCES)
    outdated_labels = outdated_rows.filter(source=Verdict.SOURCE_MANUAL_TRAIN).exists()
    outdated_reviews = [
        f"{predicted} {decision}"
        for predicted, decision in outdated_rows.filter(source=Verdict.SOURCE_REVIEW)
        .order_by("review_predicted")
        .values_list("review_predicted", "review_verdict")
    ]
    position = next((index for index, item in enumerate(queue) if item.listing_id == listing.pk), None)
    done = labelling.decisions_made(session)
    return {
        "listing": listing,
        "size": pixel_size(listing.cover),
        "siblings": siblings,
        "verdict": verdict,
        "probabilities": top_probabilities(verdict.quality_probs if verdict else None, TOP_PROBABILITIES),
        "existing_labels": existing or [],
        "outdated_labels": outdated_labels,
        "outdated_reviews": outdated_reviews,
        "outdated_change": _outdated_change(outdated_rows) if outdated_labels or outdated_reviews else "",
        "queue_tier": queue[position].tier if position is not None else None,
        "tier_description": TIER_DESCRIPTIONS.get(queue[position].tier) if position is not None else "",
        "counter_n": done + 1,
        "counter_total": done + len(queue) + (0 if position is not None else 1),
    }


def _render_page(request, listing: Listing | None, queue: list, status: int = 200, chosen: list[str] | None = None):
    context = {
        "queue_size": len(queue),
        "queue_counts": queue_counts(queue),
        "classes": [(name, labelling.CLASS_KEYS[name]) for name in LABEL_CLASSES],
        "rules": labelling.EXCLUSIVITY_RULES,
        "undo_depth": labelling.undo_depth(request.session),
        "skipped_count": len(labelling.skipped_ids(request.session)),
        "chosen": chosen or [],
        "decided": labelling.decisions_made(request.session),
        "has_model": ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).exists(),
        "min_training_rows": MIN_TRAINING_ROWS,
    }
    if not context["has_model"]:
        context["labelled_count"] = Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).exclude(for_outdated()).count()
    if listing is not None:
        context.update(_item_context(listing, queue, request.session))
        if chosen is None:
            context["chosen"] = context["existing_labels"]
    return render(request, "web/label.html", context, status=status)


def _load_listing(listing_id: int) -> Listing:
    return get_object_or_404(Listing.objects.select_related("shop", "cover", "edition__game"), pk=listing_id)


@require_http_methods(["GET", "HEAD"])
@staff_required
def label_page(request):
    """Show the next cover in the queue, or the listing named by ?listing= (after an undo)."""
    queue = build_queue(labelling.skipped_ids(request.session))
    requested = request.GET.get("listing")
    if requested:
        if not requested.isdigit():
            return bad_request(f"Invalid listing id {requested!r}: expected a number.")
        return _render_page(request, _load_listing(int(requested)), queue)
    listing = _load_listing(queue[0].listing_id) if queue else None
    return _render_page(request, listing, queue)


@require_POST
@staff_required
def label_save(request):
    """Store the posted label set for one listing, then show the next cover."""
    listing_id = _listing_id(request)
    if listing_id is None:
        return bad_request("Missing or invalid listing id: post listing=<id>.")
    listing = _load_listing(listing_id)
    chosen = request.POST.getlist("labels")
    try:
        saved = labelling.save_labels(request.session, listing, chosen, request.user)
    except LabelError as exc:
        messages.error(request, str(exc))
        queue = build_queue(labelling.skipped_ids(request.session))
        return _render_page(request, listing, queue, status=400, chosen=[c for c in chosen if c in LABEL_CLASSES])
    messages.success(request, f"Saved listing {listing.pk}: {', '.join(saved)}.")
    return redirect("web:label")


@require_POST
@staff_required
def label_skip(request):
    """Hide one listing from this session's queue without writing anything to the catalogue."""
    listing_id = _listing_id(request)
    if listing_id is None:
        return bad_request("Missing or invalid listing id: post listing=<id>.")
    labelling.remember_skip(request.session, listing_id)
    messages.info(request, f"Skipped listing {listing_id} for this session.")
    return redirect("web:label")


@require_POST
@staff_required
def label_undo(request):
    """Undo the last saved decision of this session and show that cover again."""
    try:
        result = labelling.undo_last(request.session, request.user)
    except labelling.UndoError as exc:
        messages.error(request, str(exc))
        return redirect("web:label")
    if len(result.listing_ids) == 1:
        messages.success(request, f"Undid the labels of listing {result.listing_ids[0]}.")
        return redirect(f"{reverse('web:label')}?listing={result.listing_ids[0]}")
    messages.success(request, f"Undid the clean confirmation of {len(result.listing_ids)} covers.")
    return redirect("web:label_grid")


def grid_candidates(skipped: list[int], limit: int = GRID_SIZE):
    """Return listings whose active verdict is clean with high confidence and that carry no manual-train label.

    The least confident of them come first, because that is where exceptions hide.
    """
    active = ClassifierVersion.objects.filter(kind=ClassifierVersion.KIND_HEADS, is_active=True).first()
    if active is None:
        return Listing.objects.none()
    confident_clean = Verdict.objects.filter(
        listing=OuterRef("pk"),
        classifier_version=active,
        quality="clean",
        quality_confidence__gte=GRID_MIN_CONFIDENCE,
    )
    labelled = Verdict.objects.filter(listing=OuterRef("pk"), source=Verdict.SOURCE_MANUAL_TRAIN)
    return (
        Listing.objects.filter(Exists(confident_clean), cover__isnull=False, cover__decode_error__isnull=True)
        .exclude(Exists(labelled))
        .exclude(pk__in=skipped)
        .annotate(clean_confidence=Subquery(confident_clean.values("quality_confidence")[:1]))
        .select_related("shop", "cover", "edition__game")
        .order_by("clean_confidence", "pk")[:limit]
    )


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def label_grid(request):
    """Show up to 24 confident clean covers, and on POST store ["clean"] for the ticked ones."""
    if request.method == "POST":
        shown_ids = _id_list(request.POST.getlist("shown"))
        ticked_ids = _id_list(request.POST.getlist("confirm"))
        if shown_ids is None or ticked_ids is None:
            return bad_request("Invalid listing id: the grid posts numeric ids only.")
        # A ticked id that the page did not show is ignored.
        confirmed = [listing_id for listing_id in shown_ids if listing_id in set(ticked_ids)]
        listings = Listing.objects.select_related("edition").filter(pk__in=confirmed)
        written = labelling.confirm_clean(request.session, list(listings), request.user)
        left = len(shown_ids) - len(confirmed)
        confirmed = f"{len(written)} cover{'s' if len(written) != 1 else ''}"
        unticked = f"{left} unticked cover{'s' if left != 1 else ''}"
        messages.success(request, f"Confirmed {confirmed} as clean; left {unticked} unlabelled.")
        return redirect("web:label_grid")

    skipped = labelling.skipped_ids(request.session)
    listings = list(grid_candidates(skipped))
    return render(
        request,
        "web/label_grid.html",
        {"listings": listings, "min_confidence": GRID_MIN_CONFIDENCE, "undo_depth": labelling.undo_depth(request.session)},
    )


def _id_list(values: list[str]) -> list[int] | None:
    if not all(value.isdigit() for value in values):
        return None
    return [int(value) for value in values]

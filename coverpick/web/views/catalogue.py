"""Public catalogue pages (the game list and a game's page) and the staff cover picker."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from coverpick.catalogue.manual import pin_cover, unpin_game
from coverpick.catalogue.models import Edition, Game, Listing, Verdict, listings_to_relabel
from coverpick.ranking import compute_primaries, ranked_covers
from coverpick.web.access import is_staff, staff_required
from coverpick.web.explain import annotate_platforms, describe_candidates, pixel_size
from coverpick.web.page_cache import anonymous_page_cache
from coverpick.web.prices import best_prices, best_prices_by_game
from coverpick.web.views import bad_request

logger = logging.getLogger(__name__)

GAMES_PER_PAGE = 24
MAX_SEARCH_LENGTH = 200


@require_safe
# Searches are not cached: their query strings are unbounded.
@anonymous_page_cache(query_pattern=r"page=[0-9]{1,6}")
def game_list(request):
    """List the games that have listings, optionally filtered by a title search, one page at a time."""
    query = request.GET.get("q", "").strip()[:MAX_SEARCH_LENGTH]
    # A game whose listings all moved to other games stays stored, with its
    # pins and labels, but has no cover or price to show.
    listed = Exists(Listing.objects.filter(edition__game=OuterRef("pk")))
    games = (
        Game.objects.filter(listed)
        .select_related("primary_listing__cover")
        .prefetch_related(Prefetch("editions", queryset=Edition.objects.order_by("platform")))
    )
    if query:
        games = games.filter(title__icontains=query)
    page = Paginator(games.order_by("title", "pk"), GAMES_PER_PAGE).get_page(request.GET.get("page"))
    prices = best_prices_by_game(game.pk for game in page.object_list)
    rows = [{"game": game, "prices": prices.get(game.pk, [])} for game in page.object_list]
    return render(request, "web/game_list.html", {"page": page, "rows": rows, "query": query})


def outdated_pin_note(listing: Listing) -> str:
    """Say what changed since the pinned ``listing`` was pinned, or return "" when nothing did.

    The pin still chooses the primary cover while the listing has a usable
    image (see coverpick.ranking), so staff are asked to look at the cover
    again. Without a usable image the pin does not count, and the note states it.
    """
    row = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_PIN, quality="clean").first()
    if row is None:
        return ""
    image, edition = row.describes_earlier_image(listing), row.describes_earlier_edition(listing)
    if listing.is_unusable:
        return (
            "The pinned listing has no usable image now, so its pin does not count and the ranking chooses the "
            "primary cover. Remove the pin, or pin another cover."
        )
    if image and edition:
        change = "The listing's image and its platform have changed"
    elif image:
        change = "The listing's image has changed"
    elif edition:
        change = "The listing's platform has changed"
    else:
        return ""
    note = f"{change} since it was pinned. The pin still chooses this cover: check it, then pin it again or remove the pin."
    if listings_to_relabel([listing.pk]).exists():
        # Pins and labels are separate staff rows, so pinning again leaves the outdated labels as they are.
        note += " Pinning again keeps its outdated staff labels, and the labelling queue asks for new ones."
    return note


def _game_context(request, game: Game) -> dict:
    ranked = list(annotate_platforms(ranked_covers(game)))
    candidates = describe_candidates(ranked)
    primary = next((c for c in candidates if c.listing.pk == game.primary_listing_id), None)
    if game.primary_computed_at is None:
        # No ranking has run since the game was imported: show the cover it would choose, the best usable candidate.
        primary = next((c for c in candidates if not c.listing.is_unusable), None)
    pinned = next((listing for listing in ranked if listing.is_pinned), None)
    can_pick = is_staff(request.user)
    return {
        "game": game,
        "platforms": sorted({listing.edition.platform for listing in ranked}),
        "primary": primary,
        "primary_size": pixel_size(primary.listing.cover) if primary else "",
        "candidates": candidates,
        "prices": best_prices(ranked),
        "is_pinned": pinned is not None,
        # Staff only: the public page is cached and shows no pin history.
        "pin_note": outdated_pin_note(pinned) if can_pick and pinned is not None else "",
        "can_pick": can_pick,
    }


@require_safe
@anonymous_page_cache()
def game_detail(request, game_id: int):
    """Show a game's primary cover, best prices and every candidate cover with its ranking reason."""
    game = get_object_or_404(Game, pk=game_id)
    return render(request, "web/game_detail.html", _game_context(request, game))


@require_POST
@staff_required
def pin(request, game_id: int):
    """Make the posted listing the game's primary cover and recompute the stored primary."""
    game = get_object_or_404(Game, pk=game_id)
    try:
        listing_id = int(request.POST.get("listing", ""))
    except ValueError:
        return bad_request("Missing or invalid listing id: post listing=<id> of one of this game's listings.")
    listing = Listing.objects.select_related("edition").filter(pk=listing_id, edition__game=game).first()
    if listing is None:
        return bad_request(f"Listing {listing_id} is not a candidate cover of game {game.pk}.")

    pin_cover(listing, request.user)
    compute_primaries(Game.objects.filter(pk=game.pk))
    logger.info("Cover picked on the game page: game=%s listing=%s by=%s", game.pk, listing.pk, request.user.username)
    messages.success(request, f"The cover from listing {listing.pk} is now the primary cover.")
    return redirect("web:game", game_id=game.pk)


@require_POST
@staff_required
def unpin(request, game_id: int):
    """Remove the game's pin so the ranking alone chooses its primary cover again."""
    game = get_object_or_404(Game, pk=game_id)
    removed = unpin_game(game, request.user)
    compute_primaries(Game.objects.filter(pk=game.pk))
    logger.info("Pin removed on the game page: game=%s rows=%s by=%s", game.pk, removed, request.user.username)
    if removed:
        messages.success(request, "Pin removed: the ranking chooses the primary cover again.")
    else:
        messages.info(request, "This game had no pin.")
    return redirect("web:game", game_id=game.pk)

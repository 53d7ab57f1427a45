import pytest

from coverpick.catalogue.manual import pin_cover, record_review, set_labels, unpin_game
from coverpick.catalogue.models import Game, Verdict
from coverpick.ranking import compute_primaries, ranked_covers
from tests.factories import heads_version, make_game, make_listing, phase1_version, predict

pytestmark = pytest.mark.django_db


def order(game):
    return [listing.pk for listing in ranked_covers(game)]


def tiers(game):
    return {listing.pk: listing.tier for listing in ranked_covers(game)}


def test_lower_tier_wins():
    game, (edition,) = make_game()
    version = heads_version()
    render = make_listing(edition)
    clean = make_listing(edition)
    predict(render, version, "3d_render")
    predict(clean, version, "clean")
    assert order(game) == [clean.pk, render.pk]


def test_every_class_name_maps_to_its_tier():
    game, (edition,) = make_game()
    version = heads_version()
    expected = {"clean": 0, "3d_render": 1, "deluxe_bundle": 2, "margins": 3, "unknown": 4, "contents": 5, "placeholder": 6}
    listings = {}
    for verdict in expected:
        listing = make_listing(edition)
        predict(listing, version, verdict)
        listings[verdict] = listing.pk
    got = tiers(game)
    for verdict, tier in expected.items():
        assert got[listings[verdict]] == tier, verdict


def test_no_verdict_is_tier_four_and_decode_error_is_last():
    game, (edition,) = make_game()
    plain = make_listing(edition)
    broken = make_listing(edition, decode_error="image is truncated")
    got = tiers(game)
    assert got[plain.pk] == 4
    assert got[broken.pk] == 7


def test_shop_preference_breaks_ties_then_resolution():
    game, (edition,) = make_game()
    version = heads_version()
    small_preferred = make_listing(edition, "shop-pref", preference=0, width=300, height=400)
    big_other = make_listing(edition, "shop-other", preference=5, width=1200, height=1600)
    big_preferred = make_listing(edition, "shop-pref", preference=0, width=900, height=1200)
    for listing in (small_preferred, big_other, big_preferred):
        predict(listing, version, "clean")
    assert order(game) == [big_preferred.pk, small_preferred.pk, big_other.pk]


def test_manual_label_beats_classifier_verdict():
    game, (edition,) = make_game()
    version = heads_version()
    a = make_listing(edition)
    b = make_listing(edition)
    predict(a, version, "clean")
    predict(b, version, "3d_render")
    set_labels(a, ["margins"])
    set_labels(b, ["clean"])
    assert order(game) == [b.pk, a.pk]
    assert tiers(game)[a.pk] == 3


def test_rejected_review_is_not_a_verdict():
    game, (edition,) = make_game()
    version = heads_version()
    a = make_listing(edition)
    predict(a, version, "3d_render")
    record_review(a, "clean", confirmed=False)
    assert tiers(game)[a.pk] == 1
    record_review(a, "clean", confirmed=True)
    assert tiers(game)[a.pk] == 0


def test_pinned_cover_always_wins():
    game, (edition,) = make_game()
    version = heads_version()
    good = make_listing(edition)
    bad = make_listing(edition)
    predict(good, version, "clean")
    predict(bad, version, "wrong_game")
    pin_cover(bad)
    assert order(game)[0] == bad.pk
    compute_primaries(Game.objects.filter(pk=game.pk))
    game.refresh_from_db()
    assert game.primary_listing_id == bad.pk


def test_pin_writes_demotion_markers_that_are_not_verdicts():
    game, (edition,) = make_game()
    version = heads_version()
    chosen = make_listing(edition)
    other = make_listing(edition)
    predict(chosen, version, "3d_render")
    predict(other, version, "clean")
    pin_cover(chosen)
    marker = Verdict.objects.get(listing=other, source=Verdict.SOURCE_MANUAL_PIN)
    assert marker.quality == "unknown"
    assert marker.is_demotion_marker
    ranked = {listing.pk: listing for listing in ranked_covers(game)}
    # The marker is not read as a verdict: the other cover keeps its classifier verdict and tier.
    assert ranked[other.pk].effective_verdict == "clean"
    assert ranked[other.pk].tier == 0
    assert ranked[chosen.pk].tier == -1


def test_repinning_replaces_the_pin_and_unpin_removes_everything():
    game, (edition,) = make_game()
    a = make_listing(edition)
    b = make_listing(edition)
    pin_cover(a)
    pin_cover(b)
    rows = Verdict.objects.filter(listing__edition__game=game, source=Verdict.SOURCE_MANUAL_PIN)
    assert rows.count() == 2
    assert rows.get(quality="clean").listing_id == b.pk
    unpin_game(game)
    assert not rows.exists()


def test_platform_head_mismatch_demotes_to_wrong_console():
    game, (edition,) = make_game(platforms=(("ps4", "sony"),))
    version = heads_version()
    mismatched = make_listing(edition)
    matched = make_listing(edition)
    predict(mismatched, version, "clean", platform="xbox")
    predict(matched, version, "3d_render", platform="sony")
    assert order(game) == [matched.pk, mismatched.pk]
    assert tiers(game)[mismatched.pk] == 6


def test_staff_label_overrides_platform_mismatch():
    game, (edition,) = make_game(platforms=(("ps4", "sony"),))
    version = heads_version()
    labelled = make_listing(edition)
    matched = make_listing(edition)
    predict(labelled, version, "clean", platform="xbox")
    predict(matched, version, "3d_render", platform="sony")
    set_labels(labelled, ["gkc"])

    assert tiers(game)[labelled.pk] == 0
    assert order(game) == [labelled.pk, matched.pk]


def test_staff_review_keeps_platform_mismatch():
    game, (edition,) = make_game(platforms=(("ps4", "sony"),))
    version = heads_version()
    reviewed = make_listing(edition)
    predict(reviewed, version, "gkc", platform="xbox")
    record_review(reviewed, "gkc", confirmed=True)

    assert tiers(game)[reviewed.pk] == 6


def test_staff_defect_beats_sure_placeholder():
    game, (edition,) = make_game()
    version = heads_version()
    labelled, placeholder, maybe_clean = make_listing(edition), make_listing(edition), make_listing(edition)
    predict(labelled, version, "clean", clean_probability=0.9)
    set_labels(labelled, ["low_resolution"])
    predict(placeholder, version, "placeholder", confidence=0.99, clean_probability=0.0002)
    # A cover the heads call wrong_game but give a fair chance of clean still ranks first.
    predict(maybe_clean, version, "wrong_game", confidence=0.6, clean_probability=0.3)

    assert order(game) == [maybe_clean.pk, labelled.pk, placeholder.pk]


def test_staff_wrong_cover_ranks_below_classifier_covers():
    game, (edition,) = make_game()
    version = heads_version()
    labelled, placeholder = make_listing(edition), make_listing(edition)
    predict(labelled, version, "clean", clean_probability=0.9)
    set_labels(labelled, ["wrong_game"])
    predict(placeholder, version, "placeholder", confidence=0.99, clean_probability=0.0002)

    assert order(game) == [placeholder.pk, labelled.pk]


def test_abstaining_platform_head_is_not_a_mismatch():
    game, (edition,) = make_game(platforms=(("ps4", "sony"),))
    version = heads_version()
    listing = make_listing(edition)
    predict(listing, version, "clean", platform="unknown")
    assert tiers(game)[listing.pk] == 0


def test_confident_phase1_mismatch_demotes_and_unsure_phase1_does_not():
    game, (edition,) = make_game(platforms=(("wiiu", "nintendo"),))
    version = heads_version()
    phase1 = phase1_version()
    confident = make_listing(edition)
    unsure = make_listing(edition)
    for listing in (confident, unsure):
        predict(listing, version, "clean", platform="unknown")
    predict(confident, phase1, platform="xbox", platform_confidence=0.95)
    predict(unsure, phase1, platform="xbox", platform_confidence=0.5)
    got = tiers(game)
    assert got[confident.pk] == 6
    assert got[unsure.pk] == 0


def test_inactive_version_verdicts_are_ignored():
    game, (edition,) = make_game()
    old = heads_version("heads-old", active=False)
    listing = make_listing(edition)
    predict(listing, old, "placeholder", platform="xbox")
    assert tiers(game)[listing.pk] == 4


def test_compute_primaries_stores_best_per_game():
    version = heads_version()
    game_a, (edition_a,) = make_game()
    game_b, (edition_b,) = make_game()
    a1, a2 = make_listing(edition_a), make_listing(edition_a)
    b1 = make_listing(edition_b)
    predict(a1, version, "margins")
    predict(a2, version, "clean")
    predict(b1, version, "contents")
    compute_primaries(Game.objects.filter(pk__in=[game_a.pk, game_b.pk]))
    game_a.refresh_from_db()
    game_b.refresh_from_db()
    assert (game_a.primary_listing_id, game_a.primary_tier) == (a2.pk, 0)
    assert (game_b.primary_listing_id, game_b.primary_tier) == (b1.pk, 5)


def test_clean_verdict_beats_key_card_notice_in_tier_zero():
    game, (edition,) = make_game()
    version = heads_version()
    notice = make_listing(edition, width=1200, height=1600)
    plain = make_listing(edition, width=300, height=400)
    predict(notice, version, "gkc")
    predict(plain, version, "clean")
    assert order(game) == [plain.pk, notice.pk]
    assert tiers(game) == {plain.pk: 0, notice.pk: 0}


def test_unsure_clean_beats_defect():
    game, (edition,) = make_game()
    version = heads_version()
    render = make_listing(edition)
    unsure = make_listing(edition)
    predict(render, version, "3d_render", clean_probability=0.05)
    predict(unsure, version, "unknown", confidence=0.3, clean_probability=0.3)
    assert order(game) == [unsure.pk, render.pk]
    assert tiers(game)[unsure.pk] == 4


def test_clean_probability_orders_defects():
    game, (edition,) = make_game()
    version = heads_version()
    render = make_listing(edition)
    mistaken = make_listing(edition)
    predict(render, version, "3d_render", clean_probability=0.02)
    predict(mistaken, version, "wrong_game", confidence=0.45, clean_probability=0.4)
    assert order(game) == [mistaken.pk, render.pk]


def test_clean_probability_before_shop_preference():
    game, (edition,) = make_game()
    version = heads_version()
    preferred = make_listing(edition, "shop-pref", preference=0)
    other = make_listing(edition, "shop-other", preference=5)
    predict(preferred, version, "clean", confidence=0.6, clean_probability=0.6)
    predict(other, version, "clean", confidence=0.9, clean_probability=0.9)
    assert order(game) == [other.pk, preferred.pk]


def test_mismatch_leaves_clean_group():
    game, (edition,) = make_game()
    version = heads_version()
    mismatched = make_listing(edition)
    render = make_listing(edition)
    predict(mismatched, version, "unknown", platform="nintendo", confidence=0.3, clean_probability=0.3)
    predict(render, version, "3d_render", platform="sony", clean_probability=0.1)
    got = tiers(game)
    assert got[mismatched.pk] == 6
    assert order(game) == [mismatched.pk, render.pk]


def test_manual_defect_scores_zero():
    game, (edition,) = make_game()
    version = heads_version()
    labelled = make_listing(edition)
    guessed = make_listing(edition)
    predict(labelled, version, "clean", clean_probability=0.95)
    set_labels(labelled, ["contents"])
    predict(guessed, version, "margins", clean_probability=0.2)
    assert order(game) == [guessed.pk, labelled.pk]


def test_staff_notice_label_beats_classifier_notice():
    game, (edition,) = make_game()
    version = heads_version()
    labelled = make_listing(edition)
    guessed = make_listing(edition)
    set_labels(labelled, ["ciab"])
    predict(guessed, version, "ciab", clean_probability=0.4)
    assert order(game) == [labelled.pk, guessed.pk]


def test_demo_cover_list_says_what_it_leaves_out():
    from coverpick.demo import chosen_cover_lines

    version = heads_version()
    titles = []
    for number in range(3):
        game, (edition,) = make_game(f"Listed Game {number}")
        predict(make_listing(edition), version, "clean", clean_probability=0.9)
        titles.append(game.title)
    compute_primaries()

    lines = chosen_cover_lines(shown=2)

    assert [line.split(":")[0] for line in lines[:2]] == [f"  {title}" for title in titles[:2]]
    assert lines[2] == "  and 1 more game (`coverpick export primaries` lists them all)"
    assert len(chosen_cover_lines(shown=3)) == 3

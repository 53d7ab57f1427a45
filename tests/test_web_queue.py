from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from coverpick.catalogue.manual import record_review, set_labels
from coverpick.catalogue.models import Verdict
from coverpick.web.queue import (
    TIER_BOUNDARY,
    TIER_DOUBTFUL_CLEAN,
    TIER_NEW_TEXT,
    TIER_NO_MODEL,
    TIER_OUTDATED,
    TIER_RARE,
    TIER_UNKNOWN,
    build_queue,
    doubtful_clean,
    version_new_text_level,
    is_boundary_case,
    manual_label_counts,
    queue_counts,
    rare_classes,
)
from tests.factories import heads_version, make_game, make_listing, predict

pytestmark = pytest.mark.django_db


def probs(**values):
    """Build a probability dict over some classes, leaving the other classes out."""
    return dict(values)


def add_verdict(edition, version, quality, confidence, quality_probs=None, text_novelty=None):
    listing = make_listing(edition)
    verdict = predict(listing, version, quality, confidence=confidence)
    if quality_probs is not None:
        verdict.quality_probs = quality_probs
    verdict.text_novelty = text_novelty
    verdict.save(update_fields=["quality_probs", "text_novelty"])
    return listing


def label_many(edition, labels, count):
    for _ in range(count):
        set_labels(make_listing(edition), labels)


@pytest.fixture
def setting():
    game, (edition,) = make_game()
    return edition, heads_version()


def test_manual_label_counts_count_rows_per_class(setting):
    edition, _ = setting
    label_many(edition, ["clean", "gkc"], 3)
    label_many(edition, ["margins"], 2)
    counts = manual_label_counts()
    assert counts["clean"] == 3
    assert counts["gkc"] == 3
    assert counts["margins"] == 2
    assert counts["wrong_game"] == 0


def test_manual_label_counts_ignore_classifier_and_pins(setting):
    edition, version = setting
    predict(make_listing(edition), version, "margins")
    counts = manual_label_counts()
    assert counts["margins"] == 0


def test_rare_classes_uses_strict_limit():
    rare = rare_classes(Counter({"clean": 100, "margins": 99}), limit=100)
    assert "clean" not in rare
    assert "margins" in rare


def test_queue_order_unknown_then_rare_then_boundary(setting):
    edition, version = setting
    # "clean" becomes well supported, so a clean prediction is neither rare nor queued.
    label_many(edition, ["clean"], 3)
    label_many(edition, ["3d_render"], 3)
    boundary = add_verdict(edition, version, "3d_render", 0.45, probs(**{"3d_render": 0.45, "margins": 0.40, "clean": 0.15}))
    rare = add_verdict(edition, version, "wrong_game", 0.95)
    unknown_sure = add_verdict(edition, version, "unknown", 0.30)
    unknown_unsure = add_verdict(edition, version, "unknown", 0.20)
    add_verdict(edition, version, "clean", 0.40)

    queue = build_queue(rare_limit=3)

    assert [item.listing_id for item in queue] == [unknown_unsure.pk, unknown_sure.pk, rare.pk, boundary.pk]
    assert [item.tier for item in queue] == [TIER_UNKNOWN, TIER_UNKNOWN, TIER_RARE, TIER_BOUNDARY]


def test_rare_tier_least_confident_first(setting):
    edition, version = setting
    confident = add_verdict(edition, version, "placeholder", 0.9)
    unsure = add_verdict(edition, version, "contents", 0.5)
    queue = build_queue()
    assert [item.listing_id for item in queue] == [unsure.pk, confident.pk]


def test_rare_count_is_live_per_call(setting):
    edition, version = setting
    listing = add_verdict(edition, version, "margins", 0.8)
    assert [item.tier for item in build_queue(rare_limit=2)] == [TIER_RARE]

    label_many(edition, ["margins"], 2)

    # Now margins has 2 labels, which is not below the limit, and the cover is no boundary case.
    assert [item.listing_id for item in build_queue(rare_limit=2)] == []
    assert [item.listing_id for item in build_queue(rare_limit=3)] == [listing.pk]


def test_well_supported_class_not_served(setting):
    edition, version = setting
    label_many(edition, ["clean"], 2)
    add_verdict(edition, version, "clean", 0.5)
    assert build_queue(rare_limit=2) == []


def test_labelled_listing_not_queued(setting):
    edition, version = setting
    listing = add_verdict(edition, version, "unknown", 0.2)
    set_labels(listing, ["clean"])
    assert build_queue() == []


def test_review_does_not_remove_from_queue(setting):
    edition, version = setting
    listing = add_verdict(edition, version, "unknown", 0.2)
    record_review(listing, "clean", confirmed=False)
    assert [item.listing_id for item in build_queue()] == [listing.pk]


def test_skipped_listings_left_out(setting):
    edition, version = setting
    first = add_verdict(edition, version, "unknown", 0.1)
    second = add_verdict(edition, version, "unknown", 0.2)
    queue = build_queue(skipped=[first.pk])
    assert [item.listing_id for item in queue] == [second.pk]


def test_only_active_version_counts(setting):
    edition, version = setting
    old = heads_version("heads-old", active=False)
    listing = make_listing(edition)
    predict(listing, old, "unknown", confidence=0.1)
    assert build_queue() == []
    predict(listing, version, "wrong_console", confidence=0.7)
    assert [(item.listing_id, item.verdict) for item in build_queue()] == [(listing.pk, "wrong_console")]


def test_inactive_version_verdicts_not_read():
    game, (edition,) = make_game()
    listing = make_listing(edition)
    predict(listing, heads_version("heads-idle", active=False), "unknown", confidence=0.1)
    assert [(item.listing_id, item.tier, item.confidence) for item in build_queue()] == [(listing.pk, TIER_NO_MODEL, None)]


def test_unusable_cover_not_queued(setting):
    edition, version = setting
    broken = make_listing(edition, decode_error="image is truncated")
    Verdict.objects.create(
        listing=broken, source=Verdict.SOURCE_CLASSIFIER, classifier_version=version, quality="unknown", quality_confidence=0.1
    )
    assert build_queue() == []


def test_verdict_without_quality_not_queued(setting):
    edition, version = setting
    predict(make_listing(edition), version, None)
    assert build_queue() == []


def test_boundary_needs_both_top_classes_in_set(setting):
    edition, version = setting
    label_many(edition, ["margins"], 1)
    label_many(edition, ["deluxe_bundle"], 1)
    close_pair = add_verdict(
        edition, version, "margins", 0.41, probs(margins=0.41, deluxe_bundle=0.39, clean=0.2)
    )
    add_verdict(edition, version, "margins", 0.41, probs(margins=0.41, clean=0.39, deluxe_bundle=0.2))
    add_verdict(edition, version, "margins", 0.70, probs(margins=0.70, deluxe_bundle=0.30))
    queue = build_queue(rare_limit=1)
    assert [item.listing_id for item in queue] == [close_pair.pk]
    assert queue_counts(queue) == {"E": 0, "M": 0, "S": 0, TIER_UNKNOWN: 0, TIER_DOUBTFUL_CLEAN: 0, TIER_NEW_TEXT: 0, TIER_RARE: 0, TIER_BOUNDARY: 1}


def test_doubtful_clean_before_rare(setting):
    edition, version = setting
    label_many(edition, ["clean"], 3)
    rare = add_verdict(edition, version, "placeholder", 0.6)
    near_gkc = add_verdict(edition, version, "clean", 0.62, probs(clean=0.62, gkc=0.3, ciab=0.08))
    near_margins = add_verdict(edition, version, "clean", 0.8, probs(clean=0.8, margins=0.12, gkc=0.08))
    # Spread over many classes, no defect reaches the doubt level.
    add_verdict(edition, version, "clean", 0.7, probs(clean=0.7, gkc=0.09, ciab=0.09, margins=0.06, unclear=0.06))
    add_verdict(edition, version, "clean", 0.95, probs(clean=0.95, gkc=0.05))

    queue = build_queue(rare_limit=3)

    assert [item.listing_id for item in queue] == [near_gkc.pk, near_margins.pk, rare.pk]
    assert [item.tier for item in queue] == [TIER_DOUBTFUL_CLEAN, TIER_DOUBTFUL_CLEAN, TIER_RARE]


def test_doubt_level_is_a_parameter(setting):
    edition, version = setting
    label_many(edition, ["clean"], 3)
    listing = add_verdict(edition, version, "clean", 0.75, probs(clean=0.75, gkc=0.2, ciab=0.05))

    assert build_queue(rare_limit=3, doubt=0.25) == []
    assert [item.listing_id for item in build_queue(rare_limit=3, doubt=0.2)] == [listing.pk]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"clean": 0.7, "gkc": 0.2, "ciab": 0.1}, True),
        ({"clean": 0.85, "margins": 0.1, "gkc": 0.05}, True),
        ({"clean": 0.91, "gkc": 0.09}, False),
        ({"clean": 0.5, "gkc": 0.09, "ciab": 0.09, "margins": 0.09, "unclear": 0.09, "placeholder": 0.09, "contents": 0.05}, False),
        ({}, False),
        (None, False),
    ],
)
def test_doubtful_clean(values, expected):
    assert doubtful_clean(values) is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"3d_render": 0.5, "deluxe_bundle": 0.35, "clean": 0.15}, True),
        ({"3d_render": 0.65, "deluxe_bundle": 0.35}, False),
        ({"3d_render": 0.45, "clean": 0.40, "margins": 0.15}, False),
        ({"clean": 0.45, "margins": 0.40}, False),
        ({"margins": 0.5}, False),
        (None, False),
    ],
)
def test_is_boundary_case(values, expected):
    assert is_boundary_case(values) is expected


def test_audit_suspects_come_first_until_relabelled(settings):
    import json

    from coverpick.catalogue.manual import set_labels
    from coverpick.web.queue import TIER_SUSPECT, TIER_UNKNOWN, suspects_path

    version = heads_version()
    game, (edition,) = make_game()
    unsure = make_listing(edition)
    predict(unsure, version, "unknown", confidence=0.2)
    suspect = make_listing(edition)
    set_labels(suspect, ["clean"])
    # File modification times come from a coarse kernel clock and can read a few
    # milliseconds behind the label's save, so the label is dated well before the audit.
    Verdict.objects.filter(listing=suspect).update(updated_at=timezone.now() - timedelta(minutes=1))
    path = suspects_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"shop": suspect.shop.code, "product_id": suspect.product_id, "labels": ["clean"],
                    "suggested": ["contents"], "score": 0.9}) + "\n"
    )
    try:
        queue = build_queue()
        assert [(item.listing_id, item.tier) for item in queue[:2]] == [(suspect.pk, TIER_SUSPECT), (unsure.pk, TIER_UNKNOWN)]
        set_labels(suspect, ["contents"])
        assert suspect.pk not in [item.listing_id for item in build_queue()]
    finally:
        path.unlink()


def test_new_text_level_nearest_rank(setting):
    edition, version = setting
    for value in range(1, 21):
        add_verdict(edition, version, "clean", 0.99, text_novelty=float(value))
    # Other verdicts and unmeasured clean ones do not count.
    add_verdict(edition, version, "gkc", 0.9, text_novelty=50.0)
    add_verdict(edition, version, "clean", 0.99)

    assert version_new_text_level(version) == 18.0
    assert version_new_text_level(version, percentile=50) == 10.0


def test_new_text_level_needs_enough_verdicts(setting):
    edition, version = setting
    for value in range(19):
        add_verdict(edition, version, "clean", 0.99, text_novelty=float(value))

    assert version_new_text_level(version) is None


def test_new_text_tier_after_doubtful_clean(setting):
    edition, version = setting
    label_many(edition, ["clean"], 3)
    plain = [add_verdict(edition, version, "clean", 0.99, probs(clean=0.99), text_novelty=1.0 + i / 10) for i in range(18)]
    noticed_sure = add_verdict(edition, version, "clean", 0.97, probs(clean=0.97), text_novelty=4.2)
    noticed_unsure = add_verdict(edition, version, "clean", 0.93, probs(clean=0.93), text_novelty=4.0)
    near_gkc = add_verdict(edition, version, "clean", 0.62, probs(clean=0.62, gkc=0.38), text_novelty=4.5)
    rare = add_verdict(edition, version, "placeholder", 0.6, text_novelty=5.0)

    queue = build_queue(rare_limit=3)

    # The level is the 90th percentile of the 21 clean verdicts: 4.0, so only covers above it are queued for their text.
    assert version_new_text_level(version) == 4.0
    assert [item.listing_id for item in queue] == [near_gkc.pk, noticed_sure.pk, rare.pk]
    assert [item.tier for item in queue] == [TIER_DOUBTFUL_CLEAN, TIER_NEW_TEXT, TIER_RARE]
    assert noticed_unsure.pk not in {item.listing_id for item in queue}
    assert not {listing.pk for listing in plain} & {item.listing_id for item in queue}


def test_new_text_tier_skips_labelled_covers(setting):
    edition, version = setting
    for i in range(20):
        add_verdict(edition, version, "clean", 0.99, text_novelty=1.0)
    noticed = add_verdict(edition, version, "clean", 0.97, text_novelty=4.2)
    label_many(edition, ["clean"], 3)
    assert [item.listing_id for item in build_queue(rare_limit=3)] == [noticed.pk]

    set_labels(noticed, ["gkc"])

    assert build_queue(rare_limit=3) == []


def test_new_text_level_from_staff_clean_labels(setting):
    edition, version = setting
    # The model calls 30 covers clean, some with much new text: their 90th percentile would be 26.
    verdicts = [add_verdict(edition, version, "clean", 0.99, text_novelty=float(value)) for value in range(30)]
    for listing in verdicts[:20]:
        set_labels(listing, ["clean"])
    # A cover labelled clean with a notice does not count.
    set_labels(verdicts[25], ["clean", "gkc"])

    # Staff labelled the covers with new text 0 to 19 clean, whose nearest-rank 90th percentile is 17.
    assert version_new_text_level(version) == 17.0


def test_new_text_level_ignores_outdated_staff_labels(setting):
    edition, version = setting
    verdicts = [add_verdict(edition, version, "clean", 0.99, text_novelty=float(value)) for value in range(30)]
    for listing in verdicts[:20]:
        set_labels(listing, ["clean"])
    _, (other_edition,) = make_game()
    for listing in verdicts[:5]:
        Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN, listing=listing).update(edition=other_edition)

    # Five labels were given under another edition, so 15 staff-clean covers remain, too few, and
    # every clean verdict sets the level: the nearest-rank 90th percentile of 0 to 29 is 26.
    assert version_new_text_level(version) == 26.0


# No trained model yet ------------------------------------------------------------------


def test_no_model_queue_spreads_games():
    game_a, (edition_a,) = make_game("Game A")
    game_b, (edition_b,) = make_game("Game B")
    a1, a2, a3 = make_listing(edition_a), make_listing(edition_a), make_listing(edition_a)
    b1 = make_listing(edition_b)
    labelled = make_listing(edition_b)
    set_labels(labelled, ["clean"])
    make_listing(edition_b, decode_error="not an image")

    queue = build_queue()

    # Game B has a labelled cover already, so its next one waits for game A's first.
    assert [item.listing_id for item in queue] == [a1.pk, a2.pk, b1.pk, a3.pk]
    assert {item.tier for item in queue} == {TIER_NO_MODEL}
    assert [item.listing_id for item in build_queue(skipped=[b1.pk])] == [a1.pk, a2.pk, a3.pk]

    # Labels saved meanwhile count too: each game now has one.
    b2 = make_listing(edition_b)
    set_labels(a1, ["clean"])
    assert [item.listing_id for item in build_queue()] == [a2.pk, b1.pk, a3.pk, b2.pk]


def test_without_model_outdated_labels_come_first():
    game, (edition,) = make_game()
    unlabelled = make_listing(edition)
    relabel = make_listing(edition)
    set_labels(relabel, ["margins"])
    Verdict.objects.filter(listing=relabel).update(cover_id=unlabelled.cover_id)

    queue = build_queue()

    assert [(item.listing_id, item.tier) for item in queue] == [(relabel.pk, TIER_OUTDATED), (unlabelled.pk, TIER_NO_MODEL)]


def test_active_model_ends_the_no_model_tier(setting):
    edition, version = setting
    make_listing(edition)
    assert build_queue() == []

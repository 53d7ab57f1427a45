"""The evaluation's primary measure must pick the cover that the ranking query picks."""

import random

import pytest

from coverpick.catalogue.models import Game
from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES, UNKNOWN
from coverpick.model.evaluate import _rank_key
from coverpick.ranking import compute_primaries
from tests.factories import heads_version, make_game, make_listing, predict

pytestmark = pytest.mark.django_db

GAMES = 60


def test_rank_key_matches_ranking_query():
    rng = random.Random(3)
    version = heads_version()
    records_by_game = {}
    for _ in range(GAMES):
        game, editions = make_game(platforms=(("ps4", "sony"), ("xone", "xbox")))
        records = []
        for _ in range(rng.randint(2, 5)):
            edition = rng.choice(editions)
            width = rng.choice((300, 600, 900))
            # Every listing is in one shop, so shop preference never breaks a tie.
            listing = make_listing(edition, "parity-shop", width=width, height=850)
            quality = rng.choice([*LABEL_CLASSES, UNKNOWN])
            platform = rng.choice([*PLATFORM_FAMILIES, UNKNOWN, edition.family, edition.family])
            # Two decimals make equal probabilities common, so the later keys are exercised.
            clean_probability = round(rng.random(), 2)
            predict(listing, version, quality, platform=platform, clean_probability=clean_probability)
            records.append(
                {
                    "listing": listing.pk,
                    "quality": quality,
                    "platform": platform,
                    "declared": edition.family,
                    "clean_probability": clean_probability,
                    "pixels": width * 850,
                }
            )
        records_by_game[game.pk] = records

    compute_primaries(Game.objects.filter(pk__in=records_by_game))

    primaries = dict(Game.objects.filter(pk__in=records_by_game).values_list("pk", "primary_listing_id"))
    expected = {game_id: min(records, key=_rank_key)["listing"] for game_id, records in records_by_game.items()}
    assert primaries == expected

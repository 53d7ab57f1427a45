"""Tests for platform, title, edition and price normalisation.

The grouping and family tests compare against the reference labels of the
sample catalogue, which comes from the sample_catalogue fixture in conftest.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from coverpick.catalogue.feeds import FeedRow, iter_feed_files, read_feed
from coverpick.catalogue.normalise import (
    MAX_PLATFORM_CODE_LENGTH,
    PriceError,
    better_cased,
    display_title,
    edition_name,
    game_key,
    parse_price,
    platform_family,
)

# Share of listings whose game_key group must equal their truth game group.
# Measured 879 of 879 (100%) on the sample catalogue. The floor leaves a small
# margin for rule changes that trade one sample title for general coverage.
GAME_KEY_AGREEMENT_FLOOR = 0.99


@pytest.fixture(scope="module")
def listings(sample_catalogue: Path) -> list[tuple[FeedRow, dict]]:
    """Pair every sample feed row with its reference label record."""
    root = sample_catalogue
    truth = {}
    for line in (root / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            truth[(record["shop"], record["product_id"])] = record

    pairs = []
    for path in iter_feed_files(root / "feeds"):
        for row in read_feed(path):
            assert isinstance(row, FeedRow), str(row)
            pairs.append((row, truth[(row.shop, row.product_id)]))
    assert len(pairs) == len(truth)
    return pairs


# ---------------------------------------------------------------------------
# Platforms
# ---------------------------------------------------------------------------

PLATFORM_CASES = [
    ("PS3", "sony", "ps3"),
    ("PlayStation 3", "sony", "ps3"),
    ("Sony PlayStation 3", "sony", "ps3"),
    ("Games > PlayStation 4", "sony", "ps4"),
    ("Video Games > PS4", "sony", "ps4"),
    ("PS Vita", "sony", "psv"),
    ("PSVITA", "sony", "psv"),
    ("Sony PlayStation Vita", "sony", "psv"),
    ("PSX", "sony", "ps1"),
    ("PSone", "sony", "ps1"),
    ("Games > Retro > PlayStation", "sony", "ps1"),
    ("XBOX360", "xbox", "x360"),
    ("Microsoft Xbox 360", "xbox", "x360"),
    ("X360", "xbox", "x360"),
    ("Games > Xbox > Xbox One", "xbox", "xone"),
    ("WIIU", "nintendo", "wiiu"),
    ("Nintendo Wii U", "nintendo", "wiiu"),
    ("Games > Nintendo > Wii U", "nintendo", "wiiu"),
    ("DS", "nintendo", "nds"),
    ("Nintendo 3DS", "nintendo", "3ds"),
    ("VBOY", "nintendo", "vb"),
    ("Nintendo Virtual Boy", "nintendo", "vb"),
    ("N64 DD", "nintendo", "64dd"),
    ("Games > Retro > Nintendo 64DD", "nintendo", "64dd"),
    ("PC DVD-ROM", "pc", "pc"),
    ("Windows", "pc", "pc"),
    ("Games > PC > Windows", "pc", "pc"),
    ("Games > Retro > X68000", "other", "x68000"),
    ("X68K", "other", "x68000"),
    ("Sharp X68000", "other", "x68000"),
    ("MEGADRIVE", "other", "md"),
    ("Sega Mega Drive", "other", "md"),
    ("SAT", "other", "saturn"),
    ("Commodore Amiga", "other", "amiga"),
    ("Games > PlayStation 4 > Action", "sony", "ps4"),
    ("Games > Nintendo", "nintendo", "nintendo"),
    ("Atari Jaguar", "other", "atari-jaguar"),
    ("", "other", "unknown"),
]


@pytest.mark.parametrize(("raw", "family", "code"), PLATFORM_CASES)
def test_platform_family_table(raw, family, code):
    assert platform_family(raw) == (family, code)


def test_platform_code_length_capped():
    family, code = platform_family("Games > " + "Very Long Unknown Console Name " * 5)

    assert family == "other"
    assert len(code) <= MAX_PLATFORM_CODE_LENGTH
    assert code.startswith("very-long-unknown-console-name")
    assert not code.endswith("-")


def test_platform_family_matches_truth(listings):
    wrong = [
        (row.shop, row.platform_raw, platform_family(row.platform_raw)[0], truth["family"])
        for row, truth in listings
        if platform_family(row.platform_raw)[0] != truth["family"]
    ]
    assert wrong == []


def test_platform_code_matches_truth(listings):
    # The reference labels spell three platform codes differently from normalise.py.
    truth_to_ours = {"vita": "psv", "x68k": "x68000", "n64dd": "64dd"}
    wrong = [
        (row.shop, row.platform_raw, platform_family(row.platform_raw)[1], truth["platform"])
        for row, truth in listings
        if platform_family(row.platform_raw)[1] != truth_to_ours.get(truth["platform"], truth["platform"])
    ]
    assert wrong == []


# ---------------------------------------------------------------------------
# Game keys
# ---------------------------------------------------------------------------

SAME_GAME_TITLES = [
    ("Sonic™ the Hedgehog 2", "SONIC THE HEDGEHOG 2"),
    ("Call of Duty: Ghosts", "Call of Duty - Ghosts - Standard Edition"),
    ("Call of Duty: Ghosts", "Call of Duty: Ghosts - Limited Edition"),
    ("Steins Gate", "Steins Gate [Game-Key Card]"),
    ("Steins Gate", "Steins Gate - Game-Key Card"),
    ("Doom", "Doom - Limited"),
    ("Doom", "Doom: Special Edition"),
    ("Remember Me", "Remember Me - Standard Edition (Code in a Box)"),
    ("Skate 3", "Skate 3 Collector's Edition"),
    ("Catherine", "Catherine (Deluxe Edition)"),
    ("FIFA 14", "FIFA 14 (PS4)"),
    ("FIFA 14", "FIFA 14 [Xbox 360]"),
    ("Tomb Raider", "Tomb Raider (UK Import)"),
    ("Half-Life 2", "Half-Life 2: Game of the Year Edition"),
    ("The Legend of Zelda", "Legend of Zelda, The"),
    ("Pokémon Snap", "Pokemon Snap"),
    ("Spider-Man", "Spiderman"),
    ("Quake II", "Quake 2"),
    ("Final Fantasy XIII-2", "Final Fantasy 13-2"),
    ("Rock & Roll Racing", "Rock and Roll Racing"),
    ("Cabela's Dangerous Hunts 2013", "CABELAS DANGEROUS HUNTS 2013"),
    (
        "Super Street Fighter IV Arcade Edition",
        "Super Street Fighter IV Arcade Edition Collector's Edition",
    ),
    ("Darksiders: Warmastered Edition", "Darksiders - Warmastered Edition - Limited Edition"),
]


@pytest.mark.parametrize(("first", "second"), SAME_GAME_TITLES)
def test_game_key_same_game(first, second):
    assert game_key(first) == game_key(second)


DIFFERENT_GAME_TITLES = [
    ("Pokemon Gold Version", "Pokemon Silver Version"),
    ("Pokemon: Gold", "Pokemon: Silver"),
    ("Street Fighter: Ultimate", "Street Fighter"),
    ("Doom", "Doom (2016)"),
    ("Quake", "Quake II"),
    ("Tomb Raider 1", "Tomb Raider 2"),
    ("Final Fantasy XIII", "Final Fantasy XIII-2"),
    ("Darksiders", "Darksiders: Warmastered Edition"),
    ("Mega Man X", "Mega Man 10"),
    ("Taiko no Tatsujin: Wii U Version!", "Taiko no Tatsujin"),
]


@pytest.mark.parametrize(("first", "second"), DIFFERENT_GAME_TITLES)
def test_game_key_different_games(first, second):
    assert game_key(first) != game_key(second)


def test_game_key_never_empty_for_label_title():
    assert game_key("Limited Edition") == "limitededition"


def test_game_key_groups_match_truth(listings):
    keys_by_listing = {(row.shop, row.product_id): game_key(row.title) for row, _truth in listings}
    by_key: dict[str, set] = defaultdict(set)
    by_game: dict[str, set] = defaultdict(set)
    for row, truth in listings:
        listing = (row.shop, row.product_id)
        by_key[keys_by_listing[listing]].add(listing)
        by_game[truth["game_id"]].add(listing)

    mismatched = [
        (row.title, truth["game_title"])
        for row, truth in listings
        if by_key[keys_by_listing[(row.shop, row.product_id)]] != by_game[truth["game_id"]]
    ]
    agreement = 1 - len(mismatched) / len(listings)

    assert agreement >= GAME_KEY_AGREEMENT_FLOOR, mismatched[:20]
    assert abs(len(by_key) - len(by_game)) <= len(by_game) * (1 - GAME_KEY_AGREEMENT_FLOOR)


def test_game_key_groups_are_pure(listings):
    games_by_key: dict[str, set] = defaultdict(set)
    for row, truth in listings:
        games_by_key[game_key(row.title)].add(truth["game_id"])

    merged = {key: games for key, games in games_by_key.items() if len(games) > 1}
    assert merged == {}


# ---------------------------------------------------------------------------
# Editions
# ---------------------------------------------------------------------------

EDITION_CASES = [
    ("Doom", None, "Standard"),
    ("Doom", "", "Standard"),
    ("Doom", "Standard", "Standard"),
    ("Doom - Standard Edition", "Standard Edition", "Standard"),
    ("Dead Rising 2", "Day One Edition", "Day One Edition"),
    ("Hidden Photo [Game-Key Card]", None, "Game-Key Card"),
    ("Hyrule Warriors (Code in a Box)", None, "Code in a Box"),
    ("Killer Is Dead - Limited Edition", "Standard", "Limited Edition"),
    ("Silent Hill Downpour (Code in a Box)", "Classics", "Classics, Code in a Box"),
    ("MADDEN NFL 09 - STANDARD EDITION [Game-Key Card]", None, "Game-Key Card"),
    ("Tomb Raider 2 Collector's Edition", None, "Collector's Edition"),
    ("FIFA 14 (PS4)", None, "Standard"),
    ("Half-Life 2 - GOTY", None, "Game of the Year Edition"),
]


@pytest.mark.parametrize(("title", "edition_text", "expected"), EDITION_CASES)
def test_edition_name_table(title, edition_text, expected):
    assert edition_name(title, edition_text) == expected


# ---------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------

PRICE_CASES = [
    ("£54.99", None, Decimal("54.99"), "GBP"),
    ("54,99 €", None, Decimal("54.99"), "EUR"),
    ("59.99 EUR", None, Decimal("59.99"), "EUR"),
    ("EUR 59.99", None, Decimal("59.99"), "EUR"),
    ("18,99", None, Decimal("18.99"), None),
    ("18,99", "eur", Decimal("18.99"), "EUR"),
    ("£18.99", "EUR", Decimal("18.99"), "GBP"),
    ("1.234,50 €", None, Decimal("1234.50"), "EUR"),
    ("1,234.50", None, Decimal("1234.50"), None),
    ("1 234,50 €", None, Decimal("1234.50"), "EUR"),
    ("1\u00a0234,50 €", None, Decimal("1234.50"), "EUR"),
    ("1,234,567.89", None, Decimal("1234567.89"), None),
    ("1.234", None, Decimal("1234"), None),
    ("0,999", None, Decimal("0.999"), None),
    ("12", "GBP", Decimal("12"), "GBP"),
    ("US$5.00", None, Decimal("5.00"), "USD"),
    ("$5", None, Decimal("5"), "USD"),
    ("54,-", "EUR", Decimal("54"), "EUR"),
    ("€ 54,99 EUR", None, Decimal("54.99"), "EUR"),
    ("  9.95 gbp ", None, Decimal("9.95"), "GBP"),
]


@pytest.mark.parametrize(("text", "default_currency", "amount", "currency"), PRICE_CASES)
def test_parse_price_table(text, default_currency, amount, currency):
    parsed_amount, parsed_currency = parse_price(text, default_currency)

    assert parsed_amount == amount
    assert parsed_currency == currency


PRICE_ERROR_CASES = [
    ("", "price is empty"),
    ("   ", "price is empty"),
    ("abc", "price 'abc' is not a number"),
    ("Free", "price 'Free' is not a number"),
    ("99p", "price '99p' is not a number"),
    ("1.23.4", "price '1.23.4' is not a number"),
    ("12,34,567", "price '12,34,567' is not a number"),
    ("1.234.56,7", "price '1.234.56,7' is not a number"),
    ("-5.00", "price '-5.00' is negative"),
    ("£-5.00", "price '£-5.00' is negative"),
    ("£5 EUR", "price '£5 EUR' names two currencies, EUR and GBP"),
    ("5" * 70, "is longer than 64 characters"),
]


@pytest.mark.parametrize(("text", "message"), PRICE_ERROR_CASES)
def test_parse_price_errors(text, message):
    with pytest.raises(PriceError) as raised:
        parse_price(text)

    assert isinstance(raised.value, ValueError)
    assert message in str(raised.value)


def test_parse_price_sample_feeds(listings):
    for row, _truth in listings:
        assert row.price is not None
        assert row.price == row.price.quantize(Decimal("0.01")), row


@pytest.mark.parametrize(
    "title, shown",
    [
        ("3-D Tetris - Standard Edition", "3-D Tetris"),
        ("Danmir Saga 3 [Game-Key Card]", "Danmir Saga 3"),
        ("Halo™  Reach", "Halo Reach"),
        ("Deluxe Edition", "Deluxe Edition"),
        ("Spider-Man: Miles Morales", "Spider-Man: Miles Morales"),
    ],
)
def test_display_title_drops_retail_labels(title, shown):
    assert display_title(title) == shown


@pytest.mark.parametrize(
    "stored, offered, expected",
    [
        ("RAYMAN ORIGINS", "Rayman Origins", True),
        ("TOMB RAIDER 3", "Tomb Raider 3", True),
        ("Rayman Origins", "RAYMAN ORIGINS", False),
        ("FIFA 12", "FIFA 12", False),
        ("NIER", "nier", False),
        ("Rayman Origins", "Rayman origins", False),
        ("1942", "1942", False),
        ("FINAL FANTASY VII", "Final Fantasy 7", False),
    ],
)
def test_better_cased_title(stored, offered, expected):
    assert better_cased(stored, offered) is expected

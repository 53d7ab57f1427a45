"""Generate a small demo catalogue of invented games with covers drawn by Pillow.

The folder has the layout of a real catalogue folder (``feeds/``,
``images/<shop>/``, ``labels.jsonl``, ``truth.jsonl``) and the same five feed
formats, so the normal importer reads it. Games, shops, prices and covers are
invented, and no third-party image is used. Every listing's picture is drawn to
show what its reference labels describe: a flat scan for ``clean``, a warped box with
a spine for ``3d_render``, a tiny copy for ``low_resolution``, and so on.

Output depends only on ``games`` and ``seed`` for a given Pillow and numpy
version. Pillow's JPEG and PNG encoders may produce different bytes in other
versions.
"""

from __future__ import annotations

import colorsys
import csv
import json
import random
import re
import unicodedata
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, features

from coverpick.labels import LABEL_CLASSES

__all__ = ["SHOPS", "generate_catalogue"]

Colour = tuple[int, int, int]

# Shop ids in feed order. Each id is also the stem of the shop's feed file.
SHOPS: tuple[str, ...] = ("pixelcrate", "boxhaus", "lootlane", "consolecorner", "quickkeys")

_FEED_FILES = {
    "pixelcrate": "pixelcrate.csv",
    "boxhaus": "boxhaus.json",
    "lootlane": "lootlane.jsonl",
    "consolecorner": "consolecorner.xml",
    "quickkeys": "quickkeys.csv",
}

_PIXELCRATE_HEADER = (
    "aw_product_id",
    "product_name",
    "merchant_category",
    "platform",
    "edition",
    "search_price",
    "currency",
    "merchant_image_url",
    "ean",
    "in_stock",
    "deep_link",
)
_QUICKKEYS_HEADER = ("id", "name", "system", "price", "currency", "image")
GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"

# Share of listings that get a manual-train row in labels.jsonl.
_MANUAL_TRAIN_SHARE = 0.7
# Share of the remaining listings that get a reviewer's verdict.
_REVIEW_SHARE = 0.12

# Width in pixels of a freshly drawn cover, before a shop rescales it.
_COVER_WIDTH = 300


# ---------------------------------------------------------------------------
# Platforms
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """A platform with its cover banner and the ways each shop writes its name."""

    code: str
    family: str
    banner: Colour
    logo: str
    aspect: float  # box width / height
    weight: float  # how often editions are on this platform
    boxhaus_code: str
    # Shop id -> spellings. The first spelling is the shop's usual one.
    spellings: dict[str, tuple[str, ...]]


# Banner colours follow the family (Nintendo red, Sony blue, Xbox green, PC
# black) with a different shade per platform.
PLATFORMS: dict[str, Platform] = {
    platform.code: platform
    for platform in (
        Platform(
            code="wiiu",
            family="nintendo",
            banner=(200, 16, 36),
            logo="Wii U",
            aspect=0.7,
            weight=3.0,
            boxhaus_code="WIIU",
            spellings={
                "pixelcrate": ("Wii U", "Nintendo Wii U", "WiiU"),
                "boxhaus": ("Nintendo Wii U", "Wii U"),
                "lootlane": ("Nintendo Wii U", "WiiU", "Wii U"),
                "consolecorner": ("Games > Nintendo > Wii U", "Games > Nintendo Wii U", "Games > WiiU"),
                "quickkeys": ("WIIU", "Nintendo Wii U", "WiiU"),
            },
        ),
        Platform(
            code="nds",
            family="nintendo",
            banner=(222, 48, 52),
            logo="NINTENDO DS",
            aspect=0.9,
            weight=1.5,
            boxhaus_code="NDS",
            spellings={
                "pixelcrate": ("Nintendo DS", "NDS"),
                "boxhaus": ("Nintendo DS",),
                "lootlane": ("DS", "Nintendo DS"),
                "consolecorner": ("Games > Nintendo > Nintendo DS", "Games > Nintendo DS"),
                "quickkeys": ("NDS", "Nintendo DS"),
            },
        ),
        Platform(
            code="3ds",
            family="nintendo",
            banner=(176, 8, 24),
            logo="NINTENDO 3DS",
            aspect=0.9,
            weight=1.5,
            boxhaus_code="3DS",
            spellings={
                "pixelcrate": ("Nintendo 3DS", "3DS"),
                "boxhaus": ("Nintendo 3DS",),
                "lootlane": ("Nintendo 3DS", "3DS"),
                "consolecorner": ("Games > Nintendo > Nintendo 3DS", "Games > 3DS"),
                "quickkeys": ("3DS", "Nintendo 3DS"),
            },
        ),
        Platform(
            code="ps3",
            family="sony",
            banner=(28, 58, 150),
            logo="PS3",
            aspect=0.7,
            weight=2.5,
            boxhaus_code="PS3",
            spellings={
                "pixelcrate": ("PS3", "Sony PlayStation 3", "PlayStation 3"),
                "boxhaus": ("Sony PlayStation 3", "PlayStation 3"),
                "lootlane": ("PlayStation 3", "PS3"),
                "consolecorner": ("Games > PlayStation 3", "Games > PS3"),
                "quickkeys": ("PS3", "PlayStation 3"),
            },
        ),
        Platform(
            code="ps4",
            family="sony",
            banner=(0, 72, 190),
            logo="PS4",
            aspect=0.7,
            weight=2.0,
            boxhaus_code="PS4",
            spellings={
                "pixelcrate": ("PS4", "Sony PlayStation 4"),
                "boxhaus": ("Sony PlayStation 4", "PS4"),
                "lootlane": ("PlayStation 4", "PS4"),
                "consolecorner": ("Games > PlayStation 4", "Games > PS4"),
                "quickkeys": ("PS4", "PlayStation 4"),
            },
        ),
        Platform(
            code="vita",
            family="sony",
            banner=(44, 100, 180),
            logo="PS VITA",
            aspect=0.7,
            weight=1.0,
            boxhaus_code="PSV",
            spellings={
                "pixelcrate": ("PS Vita",),
                "boxhaus": ("Sony PlayStation Vita", "PSV"),
                "lootlane": ("PlayStation Vita",),
                "consolecorner": ("Games > PS Vita", "Games > PSV"),
                "quickkeys": ("PSVITA",),
            },
        ),
        Platform(
            code="x360",
            family="xbox",
            banner=(96, 170, 40),
            logo="XBOX 360",
            aspect=0.7,
            weight=3.0,
            boxhaus_code="X360",
            spellings={
                "pixelcrate": ("Xbox 360", "Microsoft Xbox 360", "X360"),
                "boxhaus": ("Microsoft Xbox 360", "XBOX 360", "Xbox 360"),
                "lootlane": ("X360", "Xbox 360", "XBOX 360"),
                "consolecorner": ("Games > Xbox > Xbox 360", "Games > XBOX 360", "Games > X360"),
                "quickkeys": ("XBOX360", "X360", "XBOX 360"),
            },
        ),
        Platform(
            code="xone",
            family="xbox",
            banner=(16, 124, 16),
            logo="XBOX ONE",
            aspect=0.7,
            weight=1.5,
            boxhaus_code="XONE",
            spellings={
                "pixelcrate": ("Xbox One",),
                "boxhaus": ("Microsoft Xbox One", "Xbox One"),
                "lootlane": ("Xbox One", "XBOX ONE"),
                "consolecorner": ("Games > Xbox > Xbox One",),
                "quickkeys": ("XBOX ONE", "XONE"),
            },
        ),
        Platform(
            code="pc",
            family="pc",
            banner=(24, 24, 28),
            logo="PC DVD-ROM",
            aspect=0.7,
            weight=2.0,
            boxhaus_code="PC",
            spellings={
                "pixelcrate": ("PC", "PC DVD-ROM"),
                "boxhaus": ("PC DVD-ROM", "PC"),
                "lootlane": ("PC DVD", "PC", "Windows"),
                "consolecorner": ("Games > PC > Windows", "Games > PC DVD"),
                "quickkeys": ("Windows", "PC DVD-ROM"),
            },
        ),
    )
}


# ---------------------------------------------------------------------------
# Games and titles
# ---------------------------------------------------------------------------

_SYLLABLES = (
    "ka",
    "ri",
    "mo",
    "zen",
    "tal",
    "vor",
    "shi",
    "lu",
    "dra",
    "ne",
    "bex",
    "o",
    "ra",
    "gal",
    "thi",
    "qua",
    "mir",
    "sol",
    "vek",
    "yu",
    "dan",
    "fen",
    "ko",
    "rath",
    "el",
    "is",
    "um",
    "ar",
    "ty",
    "nox",
    "pel",
    "tor",
    "ai",
    "sen",
)
_TITLE_NOUNS = (
    "Saga",
    "Chronicles",
    "Legends",
    "Rising",
    "Tactics",
    "Rally",
    "Odyssey",
    "Arena",
    "Quest",
    "Frontier",
    "Origins",
    "Heroes",
    "Kingdom",
    "Racing",
)
_PUBLISHER_SUFFIXES = ("Games", "Interactive", "Studios", "Entertainment", "Soft")


@dataclass
class Game:
    """An invented game: its title, its cover art style and its editions."""

    game_id: str
    main_title: str
    subtitle: str | None
    publisher: str
    palette: tuple[Colour, Colour, Colour]  # dark, light, accent
    motif: int
    title_at_top: bool
    rating: int
    art_seed: int
    platforms: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        if self.subtitle:
            return f"{self.main_title}: {self.subtitle}"
        return self.main_title


def _invented_word(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.capitalize()


def _invent_title(rng: random.Random) -> tuple[str, str | None]:
    pattern = rng.randrange(5)
    if pattern == 0:
        return _invented_word(rng), None
    if pattern == 1:
        return f"{_invented_word(rng)} {_invented_word(rng)}", None
    if pattern == 2:
        return _invented_word(rng), f"{_invented_word(rng)} {rng.choice(_TITLE_NOUNS)}"
    if pattern == 3:
        sequel = rng.choice(("2", "3", "4", "II", "III"))
        return f"{_invented_word(rng)} {rng.choice(_TITLE_NOUNS)} {sequel}", None
    return f"The {_invented_word(rng)} of {_invented_word(rng)}", None


def _hsv(hue: float, saturation: float, value: float) -> Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _make_games(count: int, rng: random.Random) -> list[Game]:
    games: list[Game] = []
    used_keys: set[str] = set()
    used_ids: set[str] = set()
    platform_codes = list(PLATFORMS)
    platform_weights = [PLATFORMS[code].weight for code in platform_codes]
    while len(games) < count:
        main_title, subtitle = _invent_title(rng)
        key = re.sub(r"[^a-z0-9]", "", f"{main_title}{subtitle or ''}".lower())
        game_id = f"g{rng.getrandbits(32):08x}"
        if key in used_keys or game_id in used_ids:
            continue
        used_keys.add(key)
        used_ids.add(game_id)
        hue = rng.random()
        game = Game(
            game_id=game_id,
            main_title=main_title,
            subtitle=subtitle,
            publisher=f"{_invented_word(rng)} {rng.choice(_PUBLISHER_SUFFIXES)}",
            palette=(
                _hsv(hue, rng.uniform(0.5, 0.9), rng.uniform(0.25, 0.5)),
                _hsv(hue + rng.uniform(0.03, 0.12), rng.uniform(0.35, 0.8), rng.uniform(0.7, 0.95)),
                _hsv(hue + 0.5, rng.uniform(0.6, 0.9), rng.uniform(0.85, 1.0)),
            ),
            motif=rng.randrange(5),
            title_at_top=rng.random() < 0.6,
            rating=rng.choice((3, 7, 12, 16, 18)),
            art_seed=rng.getrandbits(32),
        )
        first = rng.choices(platform_codes, platform_weights)[0]
        game.platforms.append(first)
        if rng.random() < 0.4:
            # A second edition is usually a port to another family's console.
            others = [code for code in platform_codes if PLATFORMS[code].family != PLATFORMS[first].family]
            game.platforms.append(rng.choice(others))
        games.append(game)
    return games


def _shop_title(game: Game, shop: str, labels: tuple[str, ...], rng: random.Random) -> str:
    """Write the game's title the way ``shop`` would, with an edition or notice suffix."""
    main = game.main_title
    if rng.random() < {"boxhaus": 0.15, "consolecorner": 0.06}.get(shop, 0.0):
        main += "\u2122"
    title = main
    if game.subtitle:
        separator = " - " if rng.random() < 0.3 else ": "
        title = f"{main}{separator}{game.subtitle}"

    if "deluxe_bundle" in labels and rng.random() < 0.7:
        title += rng.choice((" (Deluxe Edition)", " - Limited Edition", " - Collector's Edition"))
    elif "gkc" in labels and rng.random() < 0.6:
        title += " [Game-Key Card]"
    elif "ciab" in labels and rng.random() < 0.6:
        title += " (Code in a Box)"
    elif rng.random() < 0.1:
        title += " - Standard Edition"

    case_roll = rng.random()
    if case_roll < {"quickkeys": 0.45, "lootlane": 0.1}.get(shop, 0.0):
        title = title.upper()
    elif shop == "pixelcrate" and case_roll > 0.92:
        title = title.lower()
    return title


def _slug(text: str) -> str:
    # Drop the trademark sign first, because NFKD would turn it into "TM".
    folded = unicodedata.normalize("NFKD", text.replace("\u2122", "")).casefold()
    ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


# ---------------------------------------------------------------------------
# Label recipes: which labels a listing gets, and how often per shop
# ---------------------------------------------------------------------------

# Each recipe is a label set in LABEL_CLASSES order and its base weight. The
# clean recipes add up to about half of the total weight.
_RECIPES: dict[tuple[str, ...], float] = {
    ("clean",): 54.0,
    ("clean", "gkc"): 1.5,
    ("clean", "ciab"): 1.5,
    ("gkc",): 2.5,
    ("ciab",): 2.5,
    ("3d_render",): 4.0,
    ("3d_render", "multi_platform"): 1.0,
    ("3d_render", "wrong_console"): 1.0,
    ("deluxe_bundle",): 4.0,
    ("contents",): 4.0,
    ("wrong_console",): 3.5,
    ("wrong_game",): 4.0,
    ("low_resolution",): 4.0,
    ("low_resolution", "margins"): 1.5,
    ("multi_platform",): 4.0,
    ("placeholder",): 4.0,
    ("margins",): 4.0,
    ("bad_background",): 4.0,
}

# Per shop, a factor on the base weight of every recipe that contains the label,
# so that each shop has its own habits (Boxhaus likes box renders, QuickKeys
# sends small images and code-in-a-box products).
_SHOP_HABITS: dict[str, dict[str, float]] = {
    "pixelcrate": {"clean": 1.5, "3d_render": 0.3, "contents": 0.2, "deluxe_bundle": 0.2},
    "boxhaus": {"clean": 0.6, "3d_render": 3.0, "bad_background": 2.5, "margins": 1.5},
    "lootlane": {"clean": 0.7, "contents": 3.0, "deluxe_bundle": 3.0},
    "consolecorner": {"multi_platform": 3.0, "placeholder": 1.5},
    "quickkeys": {"low_resolution": 2.5, "gkc": 2.5, "ciab": 2.5, "placeholder": 2.0, "3d_render": 0.3},
}


def _recipe_weights(shop: str) -> tuple[list[tuple[str, ...]], list[float]]:
    habits = _SHOP_HABITS[shop]
    recipes = list(_RECIPES)
    weights = []
    for recipe in recipes:
        weight = _RECIPES[recipe]
        for label in recipe:
            weight *= habits.get(label, 1.0)
        weights.append(weight)
    return recipes, weights


# ---------------------------------------------------------------------------
# Listings
# ---------------------------------------------------------------------------


@dataclass
class Listing:
    """One shop's listing of one edition, with its feed fields and its reference labels."""

    shop: str
    game: Game
    platform: Platform
    labels: tuple[str, ...]
    feed_seed: int  # seeds the feed fields
    image_seed: int  # seeds the picture
    product_id: str = ""
    title: str = ""
    platform_text: str = ""
    edition_text: str = ""
    price_cents: int = 0
    currency: str = ""
    url: str = ""
    gtin: str | None = None
    in_stock: bool = True
    image: str = ""
    image_family: str | None = None
    shown_game_id: str = ""

    @property
    def price(self) -> str:
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"


def _plan_listings(games: list[Game], rng: random.Random) -> list[Listing]:
    listings: list[Listing] = []
    for game in games:
        for code in game.platforms:
            shops = sorted(rng.sample(SHOPS, rng.randint(2, 4)), key=SHOPS.index)
            for shop in shops:
                recipes, weights = _recipe_weights(shop)
                labels = rng.choices(recipes, weights)[0]
                if "wrong_game" in labels and len(games) < 2:
                    labels = ("clean",)
                listing = Listing(shop, game, PLATFORMS[code], labels, rng.getrandbits(32), rng.getrandbits(32))
                listings.append(listing)
    _ensure_every_label(listings, games, rng)
    return listings


def _ensure_every_label(listings: list[Listing], games: list[Game], rng: random.Random) -> None:
    """Turn clean listings into the missing classes, so that every label occurs at least once.

    A catalogue with fewer clean listings than missing labels keeps the gap.
    """
    present = {label for listing in listings for label in listing.labels}
    missing = [label for label in LABEL_CLASSES if label not in present and label != "unclear"]
    if len(games) < 2 and "wrong_game" in missing:
        missing.remove("wrong_game")
    clean = [listing for listing in listings if listing.labels == ("clean",)]
    rng.shuffle(clean)
    # Keep at least one clean listing for the manual pin.
    for label, listing in zip(missing, clean[1:]):
        listing.labels = (label,)


def _ean13(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(12)]
    checksum = sum(digit * (3 if index % 2 else 1) for index, digit in enumerate(digits))
    return "".join(map(str, digits)) + str((10 - checksum % 10) % 10)


def _shop_price(base_cents: int, labels: tuple[str, ...], rng: random.Random) -> int:
    cents = base_cents * rng.uniform(0.85, 1.15)
    if "deluxe_bundle" in labels:
        cents *= rng.uniform(2.0, 3.2)
    euros = max(2, int(cents // 100))
    return euros * 100 + rng.choice((99, 99, 99, 95, 49))


def _unique_id(make, used: set[str]) -> str:
    while True:
        candidate = make()
        if candidate not in used:
            used.add(candidate)
            return candidate


def _fill_feed_fields(listings: list[Listing], rng: random.Random) -> None:
    """Set product ids, titles, platform names, prices and links the way each shop writes them."""
    used_ids: dict[str, set[str]] = {shop: set() for shop in SHOPS}
    base_prices: dict[tuple[str, str], int] = {}
    for listing in listings:
        listing_rng = random.Random(listing.feed_seed)
        shop, game, platform = listing.shop, listing.game, listing.platform
        edition_key = (game.game_id, platform.code)
        if edition_key not in base_prices:
            base_prices[edition_key] = rng.randint(6, 60) * 100
        spellings = platform.spellings[shop]
        listing.platform_text = spellings[0] if listing_rng.random() < 0.8 else listing_rng.choice(spellings)
        listing.title = _shop_title(game, shop, listing.labels, listing_rng)
        listing.price_cents = _shop_price(base_prices[edition_key], listing.labels, listing_rng)
        listing.in_stock = listing_rng.random() < 0.85
        listing.gtin = _ean13(listing_rng) if listing_rng.random() < 0.8 else None
        if "deluxe_bundle" in listing.labels:
            listing.edition_text = listing_rng.choice(("Limited Edition", "Collector's Edition", "Deluxe Edition"))
        else:
            listing.edition_text = listing_rng.choices(
                ("Standard", "Standard Edition", "Day One Edition", "Classics", ""), (80, 5, 6, 5, 4)
            )[0]
        ids = used_ids[shop]
        if shop == "pixelcrate":
            listing.product_id = _unique_id(lambda: str(listing_rng.randint(10**8, 4 * 10**9)), ids)
            listing.currency = "GBP"
            awc = f"{listing_rng.getrandbits(40):010x}"
            listing.url = f"https://www.pixelcrate.example/p/{listing.product_id}?utm_source=aff&awc={awc}"
        elif shop == "boxhaus":
            listing.product_id = _unique_id(
                lambda: f"BH-{listing_rng.randrange(10**6):06d}-{platform.boxhaus_code}", ids
            )
            listing.currency = "EUR"
            listing.url = f"https://www.boxhaus.example/de/spiele/{_slug(listing.title)}-{listing.product_id.lower()}"
        elif shop == "lootlane":
            stem = f"{_slug(game.title)}-{_slug(listing.platform_text)}"
            listing.product_id = _unique_id(
                lambda: f"https://www.lootlane.example/products/{stem}-{listing_rng.randint(10000, 99999)}", ids
            )
            listing.url = listing.product_id
            listing.currency = "GBP" if listing_rng.random() < 0.6 else "EUR"
        elif shop == "consolecorner":
            listing.product_id = _unique_id(lambda: f"CC-{listing_rng.randint(100000, 999999)}", ids)
            listing.currency = "EUR"
            listing.url = f"https://www.consolecorner.example/item/{listing.product_id}"
        else:
            listing.product_id = _unique_id(lambda: str(listing_rng.randint(10000, 999999)), ids)
            listing.currency = listing_rng.choices(("EUR", "GBP", "USD"), (65, 20, 15))[0]


# ---------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's built-in font keeps the output independent of the fonts installed
    # on the machine. It is a FreeType font only when Pillow has FreeType, which
    # generate_catalogue() checks.
    return ImageFont.load_default(size=max(6, size))  # type: ignore[return-value]


def _fitted_font(text: str, max_width: float, size: int) -> ImageFont.FreeTypeFont:
    """Return the built-in font at ``size`` or smaller so that ``text`` fits in ``max_width`` pixels."""
    font = _font(size)
    length = font.getlength(text)
    if length > max_width and length > 0:
        size = max(6, int(size * max_width / length))
        font = _font(size)
        while size > 6 and font.getlength(text) > max_width:
            size -= 1
            font = _font(size)
    return font


def _wrap_title(text: str) -> list[str]:
    """Split a title into one or two lines, choosing the split that makes the longer line shortest."""
    words = text.split()
    if len(words) < 2 or len(text) <= 12:
        return [text]
    best = [text]
    best_width = len(text)
    for index in range(1, len(words)):
        first, second = " ".join(words[:index]), " ".join(words[index:])
        width = max(len(first), len(second))
        if width < best_width:
            best, best_width = [first, second], width
    return best


def _shade(colour: Colour, factor: float) -> Colour:
    """Scale a colour towards black (factor < 1) or white (factor > 1)."""
    if factor <= 1:
        return tuple(round(channel * factor) for channel in colour)  # type: ignore[return-value]
    mix = min(1.0, factor - 1)
    return tuple(round(channel + (255 - channel) * mix) for channel in colour)  # type: ignore[return-value]


def _jitter(colour: Colour, rng: random.Random, amount: int) -> Colour:
    return tuple(max(0, min(255, channel + rng.randint(-amount, amount))) for channel in colour)  # type: ignore[return-value]


def _vertical_gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    width, height = size
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    rows = np.array(top, np.float32) * (1 - ramp) + np.array(bottom, np.float32) * ramp
    pixels = np.repeat(rows, width, axis=1).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _stable_number(*parts: str) -> int:
    # zlib.crc32 instead of hash(), because str hashes change between processes.
    return zlib.crc32("|".join(parts).encode("utf-8"))


def _perspective_coefficients(
    output_quad: list[tuple[float, float]], input_quad: list[tuple[float, float]]
) -> tuple[float, ...]:
    """Solve the 8 coefficients of Image.transform(PERSPECTIVE) that map output_quad onto input_quad."""
    rows, values = [], []
    for (x, y), (u, v) in zip(output_quad, input_quad):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        values.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.append(v)
    solution = np.linalg.solve(np.array(rows, dtype=float), np.array(values, dtype=float))
    return tuple(float(value) for value in solution)


def _paste_warped(canvas: Image.Image, image: Image.Image, quad: list[tuple[float, float]]) -> None:
    """Paste ``image`` onto ``canvas`` so that its corners land on ``quad`` (TL, TR, BR, BL)."""
    width, height = image.size
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    coefficients = _perspective_coefficients(quad, corners)
    warped = image.transform(canvas.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC)
    mask = Image.new("L", image.size, 255).transform(
        canvas.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )
    canvas.paste(warped, (0, 0), mask)


def _add_noise(image: Image.Image, noise_field: np.ndarray, sigma: float, rng: random.Random) -> Image.Image:
    """Add Gaussian noise with standard deviation ``sigma``, cut from a random window of ``noise_field``.

    Cutting windows from one field is much faster than drawing fresh noise for
    every picture. The field must be at least as large as the picture.
    """
    pixels = np.array(image.convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    top = rng.randint(0, noise_field.shape[0] - height)
    left = rng.randint(0, noise_field.shape[1] - width)
    pixels += noise_field[top : top + height, left : left + width] * sigma
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _fit_inside(image: Image.Image, max_width: int, max_height: int) -> Image.Image:
    scale = min(max_width / image.width, max_height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------
# Covers
# ---------------------------------------------------------------------------


def _draw_motif(draw: ImageDraw.ImageDraw, game: Game, width: int, height: int, top: int) -> None:
    """Draw the game's background shapes below the banner. The same game gets the same shapes on every platform."""
    rng = random.Random(game.art_seed)
    dark, light, accent = game.palette
    art_height = height - top
    if game.motif == 0:
        radius = width * rng.uniform(0.14, 0.24)
        centre_x, centre_y = width * rng.uniform(0.25, 0.75), top + art_height * rng.uniform(0.3, 0.45)
        draw.ellipse((centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius), fill=accent)
        for layer in range(3):
            base_y = top + art_height * (0.55 + 0.13 * layer)
            points = [(0, height)]
            for step in range(7):
                points.append((width * step / 6, base_y - art_height * rng.uniform(0.02, 0.22)))
            points.append((width, height))
            draw.polygon(points, fill=_shade(dark, 1.0 - 0.25 * layer))
    elif game.motif == 1:
        for _ in range(rng.randint(5, 9)):
            radius = width * rng.uniform(0.06, 0.3)
            centre_x, centre_y = width * rng.random(), top + art_height * rng.random()
            colour = rng.choice((accent, light, _shade(dark, 0.6)))
            draw.ellipse(
                (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
                outline=colour,
                width=max(2, round(width * rng.uniform(0.01, 0.04))),
            )
    elif game.motif == 2:
        centre_x, centre_y = width * rng.uniform(0.3, 0.7), top + art_height * rng.uniform(0.3, 0.6)
        rays = rng.randint(8, 14)
        reach = 2 * max(width, height)
        for ray in range(0, rays * 2, 2):
            start = 2 * np.pi * ray / (rays * 2)
            end = 2 * np.pi * (ray + 1) / (rays * 2)
            draw.polygon(
                [
                    (centre_x, centre_y),
                    (centre_x + reach * np.cos(start), centre_y + reach * np.sin(start)),
                    (centre_x + reach * np.cos(end), centre_y + reach * np.sin(end)),
                ],
                fill=_shade(light, 0.85),
            )
        radius = width * 0.12
        draw.ellipse((centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius), fill=accent)
    elif game.motif == 3:
        x = 0.0
        while x < width:
            building_width = width * rng.uniform(0.08, 0.18)
            building_top = top + art_height * rng.uniform(0.35, 0.7)
            draw.rectangle((x, building_top, x + building_width, height), fill=_shade(dark, 0.7))
            for window_y in np.arange(building_top + 6, height - 6, 10):
                for window_x in np.arange(x + 4, x + building_width - 6, 8):
                    if rng.random() < 0.45:
                        draw.rectangle((window_x, window_y, window_x + 3, window_y + 4), fill=accent)
            x += building_width + width * 0.01
    else:
        glow = width * rng.uniform(0.3, 0.42)
        centre_x, centre_y = width * 0.5, top + art_height * 0.5
        draw.ellipse((centre_x - glow, centre_y - glow, centre_x + glow, centre_y + glow), fill=_shade(light, 1.2))
        head = width * 0.07
        body_top = centre_y - art_height * 0.12
        draw.ellipse((centre_x - head, body_top - 2 * head, centre_x + head, body_top), fill=dark)
        draw.polygon(
            [
                (centre_x - width * 0.16, height),
                (centre_x - width * 0.05, body_top),
                (centre_x + width * 0.05, body_top),
                (centre_x + width * 0.16, height),
            ],
            fill=dark,
        )
        draw.line(
            (centre_x + width * 0.05, body_top + 10, centre_x + width * 0.3, body_top - art_height * 0.2),
            fill=accent,
            width=max(3, width // 60),
        )


def _draw_banner(image: Image.Image, platform: Platform, colour: Colour, top: int = 0) -> int:
    """Draw the platform banner band at ``top`` and return its height."""
    draw = ImageDraw.Draw(image)
    width, height = image.size
    band = max(8, round(height * 0.085))
    draw.rectangle((0, top, width, top + band), fill=colour)

    font = _fitted_font(platform.logo, width * 0.5, round(band * 0.62))
    text_x = round(band * 0.45)
    middle_y = top + band / 2
    # Each family gets its own small mark next to the logo text.
    if platform.family == "xbox":
        radius = band * 0.3
        draw.ellipse((text_x, middle_y - radius, text_x + 2 * radius, middle_y + radius), outline="white", width=2)
        draw.line(
            (text_x + radius * 0.5, middle_y - radius * 0.5, text_x + radius * 1.5, middle_y + radius * 0.5),
            fill="white",
            width=2,
        )
        text_x += round(2.6 * radius)
    draw.text((text_x, middle_y), platform.logo, font=font, fill="white", anchor="lm")

    if platform.family == "nintendo":
        length = font.getlength(platform.logo)
        draw.rounded_rectangle(
            (text_x - 4, middle_y - band * 0.36, text_x + length + 4, middle_y + band * 0.36),
            radius=band * 0.2,
            outline="white",
            width=1,
        )
    elif platform.family == "pc":
        label_font = _font(round(band * 0.4))
        draw.rectangle((width - band * 2.4, top + band * 0.2, width - band * 0.3, top + band * 0.8), fill="white")
        draw.text((width - band * 1.35, middle_y), "DVD", font=label_font, fill=colour, anchor="mm")
    elif platform.family == "sony":
        draw.line((0, top + band - 2, width, top + band - 2), fill=_shade(colour, 1.35), width=2)
    return band


def _banner_colour(game: Game, platform: Platform) -> Colour:
    rng = random.Random(_stable_number(game.game_id, platform.code))
    return _jitter(platform.banner, rng, 12)


def _cover(game: Game, platform: Platform, covers: dict[tuple[str, str], Image.Image]) -> Image.Image:
    """Return a copy of the drawn cover, drawing it once per game and platform."""
    key = (game.game_id, platform.code)
    if key not in covers:
        covers[key] = _draw_cover(game, platform)
    return covers[key].copy()


def _draw_cover(game: Game, platform: Platform) -> Image.Image:
    """Draw the flat front cover of ``game`` for ``platform``."""
    width = _COVER_WIDTH
    height = round(width / platform.aspect)
    dark, light, accent = game.palette
    image = _vertical_gradient((width, height), light, dark)
    band = round(height * 0.085)
    draw = ImageDraw.Draw(image)
    _draw_motif(draw, game, width, height, band)

    lines = _wrap_title(game.main_title.upper())
    size = round(width * 0.14)
    fonts = [_fitted_font(line, width * 0.86, size) for line in lines]
    line_height = max(font.getbbox(line)[3] for line, font in zip(lines, fonts))
    text_y = band + height * 0.1 if game.title_at_top else height * 0.62
    for line, font in zip(lines, fonts):
        draw.text(
            (width / 2, text_y),
            line,
            font=font,
            fill=_shade(light, 1.6),
            anchor="mt",
            stroke_width=max(1, width // 100),
            stroke_fill=_shade(dark, 0.4),
        )
        text_y += line_height * 1.1
    if game.subtitle:
        font = _fitted_font(game.subtitle, width * 0.8, round(width * 0.065))
        draw.text(
            (width / 2, text_y + 4),
            game.subtitle,
            font=font,
            fill=accent,
            anchor="mt",
            stroke_width=1,
            stroke_fill=_shade(dark, 0.4),
        )

    _draw_rating_box(draw, game.rating, width, height)
    publisher_font = _fitted_font(game.publisher, width * 0.5, round(width * 0.04))
    draw.text((width * 0.96, height * 0.965), game.publisher, font=publisher_font, fill="white", anchor="rb")
    _draw_banner(image, platform, _banner_colour(game, platform))
    return image


_RATING_COLOURS = {3: (60, 160, 60), 7: (60, 160, 60), 12: (235, 140, 20), 16: (235, 140, 20), 18: (210, 30, 30)}


def _draw_rating_box(draw: ImageDraw.ImageDraw, rating: int, width: int, height: int) -> None:
    side = round(width * 0.1)
    left, bottom = round(width * 0.04), round(height * 0.97)
    draw.rectangle((left, bottom - side * 1.25, left + side, bottom), fill="white")
    draw.rectangle(
        (left + 2, bottom - side * 1.25 + 2, left + side - 2, bottom - side * 0.3), fill=_RATING_COLOURS[rating]
    )
    draw.text(
        (left + side / 2, bottom - side * 0.78), str(rating), font=_font(round(side * 0.5)), fill="white", anchor="mm"
    )


# ---------------------------------------------------------------------------
# Listing variants, one per label
# ---------------------------------------------------------------------------


def _scan(cover: Image.Image, rng: random.Random, noise_field: np.ndarray | None) -> Image.Image:
    """Turn a drawn cover into one shop's flat scan: a slight crop, its own size and colour, sensor noise.

    ``noise_field`` None leaves out the noise, for pictures saved as PNG, which noise makes large.
    """
    width, height = cover.size
    crop = [round(rng.uniform(0, 0.015) * side) for side in (width, height, width, height)]
    image = cover.crop((crop[0], crop[1], width - crop[2], height - crop[3]))
    target_width = rng.randint(230, 300)
    image = image.resize((target_width, round(image.height * target_width / image.width)), Image.Resampling.BICUBIC)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.95, 1.05))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.92, 1.08))
    if noise_field is None:
        return image
    return _add_noise(image, noise_field, rng.uniform(0.8, 2.0), rng)


_GKC_NOTICES = (
    "GAME-KEY CARD - DOWNLOAD REQUIRED",
    "Game-Key Card: internet connection required",
    "This box contains a key, not the game",
    "Download required. Game-Key Card inside",
)
_CIAB_NOTICES = (
    "CODE IN A BOX - NO DISC INSIDE",
    "This box contains a download code. No disc included.",
    "Download code only - no disc",
    "Contains a download code, not a disc",
)


def _add_notice(image: Image.Image, kind: str, printed: bool, rng: random.Random) -> Image.Image:
    """Add a game-key-card or code-in-a-box notice band at the bottom of the cover.

    A printed notice (``printed``) is a thin band in the cover's own banner colour,
    as publishers print it. Otherwise it is a larger, high-contrast retailer band.
    """
    image = image.copy()
    draw = ImageDraw.Draw(image)
    width, height = image.size
    text = rng.choice(_GKC_NOTICES if kind == "gkc" else _CIAB_NOTICES)
    if printed:
        band = round(height * 0.05)
        background = image.getpixel((width // 2, 3))
        text_colour = "white"
    else:
        band = round(height * rng.uniform(0.08, 0.11))
        background, text_colour = rng.choice(
            (
                ((230, 36, 40), "white"),
                ((250, 205, 0), "black"),
                ((255, 255, 255), (200, 20, 30)),
                ((20, 20, 20), (250, 205, 0)),
            )
        )
    top = height - band
    draw.rectangle((0, top, width, height), fill=background)
    if not printed and kind == "ciab" and rng.random() < 0.5:
        # Warning stripes at both ends of the band.
        for offset in range(0, band * 2, max(4, band // 2)):
            for x0 in (offset - band, width - band * 2 + offset):
                draw.polygon(
                    [(x0, height), (x0 + band // 3, height), (x0 + band // 3 + band, top), (x0 + band, top)],
                    fill=(20, 20, 20),
                )
        draw.rectangle((band * 2, top, width - band * 2, height), fill=background)
    font = _fitted_font(text, width * 0.7 if not printed else width * 0.9, round(band * 0.5))
    draw.text((width / 2, top + band / 2), text, font=font, fill=text_colour, anchor="mm")
    return image


_STRIP_INTROS = ("Also available on", "Now available on", "Available on", "Out now on", "")


def _add_platform_strip(image: Image.Image, platform: Platform, rng: random.Random) -> Image.Image:
    """Add a retailer strip above the cover that names several platforms, the listed one included."""
    width, height = image.size
    others = [code for code in PLATFORMS if PLATFORMS[code].family != platform.family]
    named = [platform] + [PLATFORMS[code] for code in rng.sample(others, rng.randint(1, 3))]
    rng.shuffle(named)
    strip_height = round(height * rng.uniform(0.07, 0.1))
    dark_strip = rng.random() < 0.5
    canvas = Image.new("RGB", (width, height + strip_height), (30, 30, 34) if dark_strip else (255, 255, 255))
    canvas.paste(image, (0, strip_height))
    draw = ImageDraw.Draw(canvas)
    intro = rng.choice(_STRIP_INTROS)
    x = width * 0.03
    if intro:
        font = _fitted_font(intro, width * 0.3, round(strip_height * 0.42))
        draw.text((x, strip_height / 2), intro, font=font, fill="white" if dark_strip else (40, 40, 40), anchor="lm")
        x += font.getlength(intro) + width * 0.03
    tag_width = (width * 0.97 - x) / len(named) - width * 0.015
    for named_platform in named:
        draw.rounded_rectangle(
            (x, strip_height * 0.15, x + tag_width, strip_height * 0.85),
            radius=strip_height * 0.15,
            fill=named_platform.banner,
        )
        font = _fitted_font(named_platform.logo, tag_width * 0.86, round(strip_height * 0.42))
        draw.text((x + tag_width / 2, strip_height / 2), named_platform.logo, font=font, fill="white", anchor="mm")
        x += tag_width + width * 0.015
    return canvas


def _draw_spine(cover: Image.Image, title: str, width: int) -> Image.Image:
    height = cover.height
    left_strip = np.asarray(cover.crop((0, height // 8, max(1, cover.width // 10), height)))
    body_colour = tuple(int(value) for value in left_strip.reshape(-1, 3).mean(axis=0) * 0.7)
    spine = Image.new("RGB", (width, height), body_colour)
    band = round(height * 0.085)
    ImageDraw.Draw(spine).rectangle((0, 0, width, band), fill=cover.getpixel((cover.width // 2, 2)))
    label = Image.new("RGBA", (height - band, width), (0, 0, 0, 0))
    font = _fitted_font(title.upper(), (height - band) * 0.8, round(width * 0.5))
    ImageDraw.Draw(label).text((label.width / 2, width / 2), title.upper(), font=font, fill="white", anchor="mm")
    rotated = label.rotate(90, expand=True)
    spine.paste(rotated, (0, band), rotated)
    return spine


def _render_3d(cover: Image.Image, title: str, rng: random.Random) -> Image.Image:
    """Render the cover as a box seen at an angle on white, with its spine and a soft shadow."""
    width, height = cover.size
    spine_width = round(width * rng.uniform(0.1, 0.15))
    spine = ImageEnhance.Brightness(_draw_spine(cover, title, spine_width)).enhance(0.8)
    canvas_width, canvas_height = round(width * 1.3), round(height * 1.16)
    front_width = width * rng.uniform(0.84, 0.94)
    spine_seen = spine_width * rng.uniform(0.7, 0.95)
    left = (canvas_width - front_width - spine_seen) / 2
    top = (canvas_height - height) / 2 - height * 0.02
    spine_drop, front_drop = height * rng.uniform(0.025, 0.045), height * rng.uniform(0.02, 0.05)
    edge_x = left + spine_seen
    right = edge_x + front_width
    spine_quad = [(left, top + spine_drop), (edge_x, top), (edge_x, top + height), (left, top + height - spine_drop)]
    front_quad = [(edge_x, top), (right, top + front_drop), (right, top + height - front_drop), (edge_x, top + height)]
    if rng.random() < 0.3:
        # Spine on the right: mirror the geometry, not the pictures.
        spine_quad = [(canvas_width - x, y) for x, y in (spine_quad[1], spine_quad[0], spine_quad[3], spine_quad[2])]
        front_quad = [(canvas_width - x, y) for x, y in (front_quad[1], front_quad[0], front_quad[3], front_quad[2])]

    canvas = Image.new("RGB", (canvas_width, canvas_height), (255, 255, 255))
    shadow = Image.new("L", canvas.size, 0)
    shadow_draw = ImageDraw.Draw(shadow)
    for quad in (spine_quad, front_quad):
        shadow_draw.polygon([(x + 6, y + 8) for x, y in quad], fill=120)
    shadow = shadow.filter(ImageFilter.GaussianBlur(7))
    canvas = Image.composite(Image.new("RGB", canvas.size, (90, 90, 90)), canvas, shadow)
    _paste_warped(canvas, spine, spine_quad)
    _paste_warped(canvas, cover, front_quad)
    return canvas


def _pad_with_white(image: Image.Image, rng: random.Random) -> Image.Image:
    """Put the picture on a much larger white or near-white canvas."""
    width, height = image.size
    if rng.random() < 0.4:
        side = round(max(width, height) * rng.uniform(1.25, 1.6))
        size = (side, side)
    else:
        size = (round(width * rng.uniform(1.35, 1.9)), round(height * rng.uniform(1.15, 1.5)))
    white = rng.randint(246, 255)
    canvas = Image.new("RGB", size, (white, white, white))
    x = round((size[0] - width) * rng.uniform(0.3, 0.7))
    y = round((size[1] - height) * rng.uniform(0.3, 0.7))
    canvas.paste(image.convert("RGB"), (x, y))
    return canvas


def _shrink(image: Image.Image, rng: random.Random) -> Image.Image:
    """Scale the picture down until it is too small to use: 60 to 92 pixels high."""
    target_height = rng.randint(60, 92)
    target_width = max(1, round(image.width * target_height / image.height))
    return image.resize((target_width, target_height), Image.Resampling.BILINEAR)


def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=radius, fill=255)
    return mask


_BACKGROUND_STYLES = ("black", "transparent", "colour", "mixed")


def _place_on_background(image: Image.Image, style: str, rng: random.Random) -> tuple[Image.Image, str]:
    """Place the cover on a background in ``style``, one of _BACKGROUND_STYLES. Returns the picture and its file format."""
    width, height = image.size
    size = (round(width * rng.uniform(1.15, 1.45)), round(height * rng.uniform(1.08, 1.3)))
    offset = (round((size[0] - width) * rng.uniform(0.3, 0.7)), round((size[1] - height) * rng.uniform(0.3, 0.7)))
    corners = _rounded_mask(image.size, round(width * rng.uniform(0.0, 0.06)))
    if style == "transparent":
        canvas = Image.new("RGBA", size, (0, 0, 0, 0))
        canvas.paste(image.convert("RGBA"), offset, corners)
        return canvas, "png"
    if style == "black":
        canvas = Image.new("RGB", size, (rng.randint(0, 12),) * 3)
    elif style == "colour":
        colour = _hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.9))
        canvas = _vertical_gradient(size, colour, _shade(colour, 0.6))
    else:
        # A blurred, enlarged copy of the cover behind it, as some shops fill the frame.
        canvas = image.convert("RGB").resize(size).filter(ImageFilter.GaussianBlur(12))
        ImageDraw.Draw(canvas).rectangle((0, 0, size[0] // 3, size[1]), fill=(20, 20, 20))
    canvas.paste(image.convert("RGB"), offset, corners)
    return canvas, "jpg"


_PLACEHOLDER_WORDINGS = (
    "ART NOT FINAL",
    "ARTWORK NOT FINAL",
    "Cover art coming soon",
    "Image coming soon",
    "Packshot to follow",
    "Provisional artwork",
    "NO IMAGE AVAILABLE",
    "Box art TBC",
)


def _draw_placeholder(game: Game, platform: Platform | None, rng: random.Random) -> Image.Image:
    """Draw a grey template cover with provisional-art wording, with a platform banner when ``platform`` is set."""
    width = _COVER_WIDTH
    height = round(width / (platform.aspect if platform else 0.7))
    grey = rng.randint(196, 228)
    image = Image.new("RGB", (width, height), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    top = _draw_banner(image, platform, platform.banner) if platform else 0
    frame = (width * 0.08, top + height * 0.06, width * 0.92, height * 0.94)
    draw.rectangle(frame, outline=(grey - 40,) * 3, width=2)
    # A picture icon: a rounded square with a mountain and a sun.
    icon = width * 0.26
    left, icon_top = width / 2 - icon / 2, top + height * 0.2
    draw.rounded_rectangle(
        (left, icon_top, left + icon, icon_top + icon * 0.8), radius=icon * 0.1, outline=(grey - 70,) * 3, width=3
    )
    draw.polygon(
        [
            (left + icon * 0.1, icon_top + icon * 0.7),
            (left + icon * 0.45, icon_top + icon * 0.3),
            (left + icon * 0.9, icon_top + icon * 0.7),
        ],
        fill=(grey - 70,) * 3,
    )
    draw.ellipse(
        (left + icon * 0.62, icon_top + icon * 0.12, left + icon * 0.78, icon_top + icon * 0.28), fill=(grey - 70,) * 3
    )

    wording = rng.choice(_PLACEHOLDER_WORDINGS)
    if rng.random() < 0.4:
        # A red stamp across the template.
        stamp = Image.new("RGBA", (round(width * 0.9), round(width * 0.18)), (0, 0, 0, 0))
        stamp_draw = ImageDraw.Draw(stamp)
        stamp_draw.rectangle((0, 0, stamp.width - 1, stamp.height - 1), outline=(200, 20, 30), width=4)
        font = _fitted_font(wording.upper(), stamp.width * 0.86, round(stamp.height * 0.55))
        stamp_draw.text(
            (stamp.width / 2, stamp.height / 2), wording.upper(), font=font, fill=(200, 20, 30), anchor="mm"
        )
        stamp = stamp.rotate(rng.uniform(15, 35), expand=True, resample=Image.Resampling.BICUBIC)
        image.paste(stamp, (round((width - stamp.width) / 2), round(height * 0.55 - stamp.height / 2)), stamp)
    else:
        font = _fitted_font(wording, width * 0.8, round(width * 0.08))
        draw.text((width / 2, height * 0.58), wording, font=font, fill=(grey - 90,) * 3, anchor="mm")
    if rng.random() < 0.5:
        font = _fitted_font(game.title, width * 0.8, round(width * 0.055))
        draw.text((width / 2, height * 0.8), game.title, font=font, fill=(grey - 80,) * 3, anchor="mm")
    return image


def _draw_disc(draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float, game: Game) -> None:
    x, y = centre
    dark, light, accent = game.palette
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=light, outline=(150, 150, 150), width=2)
    draw.ellipse((x - radius * 0.8, y - radius * 0.8, x + radius * 0.8, y + radius * 0.8), fill=dark)
    draw.ellipse((x - radius * 0.32, y - radius * 0.32, x + radius * 0.32, y + radius * 0.32), fill=(225, 225, 228))
    draw.ellipse((x - radius * 0.12, y - radius * 0.12, x + radius * 0.12, y + radius * 0.12), fill=(250, 250, 250))
    font = _fitted_font(game.main_title.upper(), radius * 1.1, round(radius * 0.2))
    draw.text((x, y - radius * 0.52), game.main_title.upper(), font=font, fill=accent, anchor="mm")


def _draw_contents(cover: Image.Image, game: Game, rng: random.Random) -> Image.Image:
    """Draw what is inside the box: an open case with booklet and disc, or a download-code card."""
    width, height = cover.size
    if rng.random() < 0.65:
        panel_width, panel_height = round(width * 0.62), round(height * 0.8)
        canvas = Image.new("RGB", (panel_width * 2 + 40, panel_height + 40), (rng.randint(236, 255),) * 3)
        draw = ImageDraw.Draw(canvas)
        case_colour = rng.choice(((28, 28, 32), (40, 78, 160), (190, 195, 200)))
        draw.rounded_rectangle((20, 20, 20 + panel_width * 2, 20 + panel_height), radius=12, fill=case_colour)
        draw.rectangle((16 + panel_width, 20, 24 + panel_width, 20 + panel_height), fill=_shade(case_colour, 0.7))
        booklet = _fit_inside(cover, panel_width - 30, panel_height - 30)
        canvas.paste(booklet, (20 + (panel_width - booklet.width) // 2, 20 + (panel_height - booklet.height) // 2))
        for clip_y in (28, 12 + panel_height):
            draw.rectangle(
                (20 + panel_width * 0.4, clip_y, 20 + panel_width * 0.6, clip_y + 6), fill=_shade(case_colour, 1.3)
            )
        centre = (20 + panel_width * 1.5, 20 + panel_height / 2)
        _draw_disc(draw, centre, panel_width * 0.42, game)
        return canvas

    with_box = rng.random() < 0.6
    canvas_width = round(width * (1.5 if with_box else 0.95))
    canvas = _vertical_gradient((canvas_width, round(height * 0.95)), (240, 240, 242), (205, 205, 210))
    card = Image.new("RGBA", (round(width * 0.7), round(height * 0.6)), "white")
    card_draw = ImageDraw.Draw(card)
    header = round(card.height * 0.16)
    card_draw.rectangle((0, 0, card.width, header), fill=game.palette[0])
    heading = rng.choice(("Download Code", "Your game code", "Redeem this code"))
    card_draw.text(
        (card.width / 2, header / 2),
        heading,
        font=_fitted_font(heading, card.width * 0.8, round(header * 0.55)),
        fill="white",
        anchor="mm",
    )
    code = "-".join("".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(5)) for _ in range(3))
    code_font = _fitted_font(code, card.width * 0.8, round(header * 0.5))
    card_draw.rectangle(
        (card.width * 0.08, header * 1.5, card.width * 0.92, header * 2.4), outline=(40, 40, 40), width=2
    )
    card_draw.text((card.width / 2, header * 1.95), code, font=code_font, fill=(20, 20, 20), anchor="mm")
    # A square of random modules, standing in for a QR code.
    module = max(2, round(card.width * 0.02))
    origin_x, origin_y = round(card.width * 0.08), round(header * 2.8)
    for row in range(15):
        for column in range(15):
            if rng.random() < 0.5:
                card_draw.rectangle(
                    (
                        origin_x + column * module,
                        origin_y + row * module,
                        origin_x + (column + 1) * module - 1,
                        origin_y + (row + 1) * module - 1,
                    ),
                    fill="black",
                )
    for line in range(5):
        line_y = origin_y + line * module * 3
        card_draw.rectangle((origin_x + module * 17, line_y, card.width * 0.9, line_y + module), fill=(170, 170, 170))
    card = card.rotate(rng.uniform(-8, 8), expand=True, resample=Image.Resampling.BICUBIC)
    card_position = (round(width * 0.1), round((canvas.height - card.height) / 2))
    shadow = Image.new("RGB", card.size, (150, 150, 155))
    canvas.paste(shadow, (card_position[0] + 4, card_position[1] + 5), card)
    canvas.paste(card, card_position, card)
    if with_box:
        box = _fit_inside(cover, round(width * 0.55), round(canvas.height * 0.7))
        canvas.paste(box, (canvas.width - box.width - round(width * 0.06), round(canvas.height * 0.12)))
    return canvas


def _draw_bundle(cover: Image.Image, game: Game, rng: random.Random) -> Image.Image:
    """Lay out a collector's edition: the box and several extras (steelbook, artbook, figure, pins, soundtrack)."""
    width, height = cover.size
    size = (round(width * 1.9), round(height * 1.1))
    backdrop = rng.choice(((150, 105, 70), (228, 228, 230), (52, 52, 58)))
    canvas = _vertical_gradient(size, _shade(backdrop, 1.1), _shade(backdrop, 0.85))
    draw = ImageDraw.Draw(canvas)
    dark, light, accent = game.palette
    slot_width, slot_height = size[0] / 3, size[1] / 2
    slots = [(column, row) for row in range(2) for column in range(3)]
    rng.shuffle(slots)
    extras = rng.sample(("steelbook", "artbook", "figure", "pins", "soundtrack"), rng.randint(2, 4))

    def slot_box(slot: tuple[int, int]) -> tuple[float, float, float, float]:
        column, row = slot
        return (
            column * slot_width + 8,
            row * slot_height + 8,
            (column + 1) * slot_width - 8,
            (row + 1) * slot_height - 8,
        )

    # The standard box takes a whole column.
    box_column = slots[0][0]
    box = _fit_inside(cover, round(slot_width - 16), round(size[1] - 16))
    box_x, box_y = round(box_column * slot_width + (slot_width - box.width) / 2), round((size[1] - box.height) / 2)
    draw.rectangle((box_x + 6, box_y + 6, box_x + box.width + 6, box_y + box.height + 6), fill=_shade(backdrop, 0.6))
    canvas.paste(box, (box_x, box_y))
    free = [slot for slot in slots if slot[0] != box_column]
    for extra, slot in zip(extras, free):
        left, top, right, bottom = slot_box(slot)
        if extra == "steelbook":
            draw.rectangle((left + 4, top + 4, right + 4, bottom + 4), fill=_shade(backdrop, 0.6))
            steel = _vertical_gradient((round(right - left), round(bottom - top)), (205, 208, 212), (120, 124, 130))
            canvas.paste(steel, (round(left), round(top)))
            radius = min(right - left, bottom - top) * 0.28
            centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
            draw.ellipse(
                (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
                outline=(90, 92, 98),
                width=3,
            )
        elif extra == "artbook":
            draw.rectangle((left + 4, top + 4, right + 4, bottom + 4), fill=_shade(backdrop, 0.6))
            draw.rectangle((left, top, right, bottom), fill=dark)
            text = f"THE ART OF {game.main_title.upper()}"
            draw.text(
                ((left + right) / 2, (top + bottom) / 2),
                text,
                font=_fitted_font(text, (right - left) * 0.85, 16),
                fill=light,
                anchor="mm",
            )
        elif extra == "figure":
            centre_x, unit = (left + right) / 2, min(right - left, bottom - top) / 10
            draw.ellipse((centre_x - 4 * unit, bottom - 1.6 * unit, centre_x + 4 * unit, bottom), fill=(30, 30, 30))
            shoulders = top + 3.6 * unit
            draw.polygon(
                [
                    (centre_x - 2.6 * unit, bottom - unit),
                    (centre_x - 1.8 * unit, shoulders),
                    (centre_x + 1.8 * unit, shoulders),
                    (centre_x + 2.6 * unit, bottom - unit),
                ],
                fill=accent,
            )
            draw.line(
                (centre_x - 1.8 * unit, shoulders + unit, centre_x - 3.4 * unit, shoulders + 3.5 * unit),
                fill=accent,
                width=max(2, round(unit)),
            )
            draw.line(
                (centre_x + 1.8 * unit, shoulders + unit, centre_x + 3.6 * unit, shoulders - 1.5 * unit),
                fill=accent,
                width=max(2, round(unit)),
            )
            draw.ellipse(
                (centre_x - 1.5 * unit, top + 0.6 * unit, centre_x + 1.5 * unit, top + 3.6 * unit),
                fill=_shade(accent, 1.3),
            )
        elif extra == "pins":
            for index in range(3):
                pin_x = left + (right - left) * (0.2 + 0.3 * index)
                pin_y = (top + bottom) / 2 + (index - 1) * 10
                draw.ellipse(
                    (pin_x - 16, pin_y - 16, pin_x + 16, pin_y + 16),
                    fill=rng.choice((dark, light, accent)),
                    outline=(210, 180, 60),
                    width=3,
                )
        else:
            side = min(right - left, bottom - top) * 0.9
            case_left, case_top = (left + right - side) / 2, (top + bottom - side) / 2
            draw.rectangle(
                (case_left, case_top, case_left + side, case_top + side), fill=(235, 235, 238), outline=(80, 80, 80)
            )
            _draw_disc(draw, (case_left + side / 2, case_top + side / 2), side * 0.4, game)
    return canvas


def _other_family_platform(game: Game, platform: Platform, rng: random.Random) -> Platform:
    """Pick the platform whose cover a wrong_console listing shows: the game's other edition if it has one."""
    for code in game.platforms:
        if PLATFORMS[code].family != platform.family:
            return PLATFORMS[code]
    others = [code for code in PLATFORMS if PLATFORMS[code].family != platform.family]
    return PLATFORMS[rng.choice(others)]


@dataclass
class _DrawingContext:
    """Shared state for drawing the listings: the games, the drawn covers and a field of scan noise."""

    games: list[Game]
    noise_field: np.ndarray
    covers: dict[tuple[str, str], Image.Image] = field(default_factory=dict)


def _new_drawing_context(games: list[Game], seed: int) -> _DrawingContext:
    # Large enough for every scan: _scan() makes pictures at most _COVER_WIDTH wide,
    # and its crop keeps them less than 1.5 times as high as wide.
    size = (round(_COVER_WIDTH * 1.5), _COVER_WIDTH, 3)
    noise = np.random.default_rng(seed).standard_normal(size, dtype=np.float32)
    return _DrawingContext(games, noise)


def _draw_listing(listing: Listing, context: _DrawingContext) -> tuple[Image.Image, str]:
    """Draw a listing's picture from its labels, and set its image_family and shown_game_id.

    Returns the picture and its file format ("jpg" or "png").
    """
    rng = random.Random(listing.image_seed)
    games = context.games
    labels = set(listing.labels)
    shown_game, art_platform = listing.game, listing.platform
    if "wrong_game" in labels:
        shown_game = rng.choice([game for game in games if game is not listing.game])
    if "wrong_console" in labels:
        art_platform = _other_family_platform(listing.game, listing.platform, rng)
    listing.shown_game_id = shown_game.game_id
    listing.image_family = art_platform.family
    background_style = rng.choice(_BACKGROUND_STYLES) if "bad_background" in labels else None

    if "placeholder" in labels:
        with_banner = rng.random() < 0.3
        image = _draw_placeholder(shown_game, art_platform if with_banner else None, rng)
        listing.image_family = art_platform.family if with_banner else None
    else:
        noise_field = None if background_style == "transparent" else context.noise_field
        image = _scan(_cover(shown_game, art_platform, context.covers), rng, noise_field)

    if "gkc" in labels or "ciab" in labels:
        image = _add_notice(image, "gkc" if "gkc" in labels else "ciab", "clean" in labels, rng)
    if "multi_platform" in labels:
        image = _add_platform_strip(image, art_platform, rng)

    file_format = "jpg"
    if "3d_render" in labels:
        image = _render_3d(image, shown_game.main_title, rng)
    elif "contents" in labels:
        image = _draw_contents(image, shown_game, rng)
    elif "deluxe_bundle" in labels:
        image = _draw_bundle(image, shown_game, rng)
    elif background_style is not None:
        image, file_format = _place_on_background(image, background_style, rng)
    if "margins" in labels:
        image = _pad_with_white(image, rng)
    if "low_resolution" in labels:
        image = _shrink(image, rng)
    if file_format == "jpg" and "placeholder" in labels and rng.random() < 0.5:
        file_format = "png"
    return image, file_format


def _save_image(image: Image.Image, path: Path, file_format: str, jpeg_quality: int) -> None:
    if file_format == "png":
        image.save(path, "PNG")
    else:
        image.convert("RGB").save(path, "JPEG", quality=jpeg_quality)


# ---------------------------------------------------------------------------
# Feeds, labels and truth
# ---------------------------------------------------------------------------


def _comma_decimal(price: str) -> str:
    return price.replace(".", ",")


def _write_pixelcrate(path: Path, rows: list[Listing]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(_PIXELCRATE_HEADER)
        for listing in rows:
            writer.writerow(
                (
                    listing.product_id,
                    listing.title,
                    f"Video Games > {listing.platform_text}",
                    listing.platform_text,
                    listing.edition_text,
                    listing.price,
                    listing.currency,
                    listing.image,
                    listing.gtin or "",
                    "1" if listing.in_stock else "0",
                    listing.url,
                )
            )


def _write_boxhaus(path: Path, rows: list[Listing], generated_at: str) -> None:
    products = [
        {
            "sku": listing.product_id,
            "title": listing.title,
            "platform": {"code": listing.platform.boxhaus_code, "name": listing.platform_text},
            "edition": listing.edition_text,
            "price": {"amount": listing.price, "currency": listing.currency},
            "images": [{"role": "front", "url": listing.image}],
            "url": listing.url,
        }
        for listing in rows
    ]
    text = json.dumps({"generated_at": generated_at, "products": products}, indent=1, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")


def _write_lootlane(path: Path, rows: list[Listing]) -> None:
    lines = []
    for listing in rows:
        if listing.currency == "GBP":
            price_text = f"\u00a3{listing.price}"
        else:
            price_text = f"{_comma_decimal(listing.price)} \u20ac"
        record = {
            "url": listing.url,
            "name": listing.title,
            "price_text": price_text,
            "console": listing.platform_text,
            "img": listing.image,
        }
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    path.write_text("".join(lines), encoding="utf-8")


def _write_consolecorner(path: Path, rows: list[Listing]) -> None:
    ET.register_namespace("g", GOOGLE_NAMESPACE)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = "Console Corner product feed"
    ET.SubElement(channel, "link").text = "https://www.consolecorner.example/"
    ET.SubElement(channel, "description").text = "Games catalogue"
    for listing in rows:
        item = ET.SubElement(channel, "item")
        fields = [
            ("id", listing.product_id),
            ("title", listing.title),
            ("link", listing.url),
            ("price", f"{listing.price} {listing.currency}"),
            ("image_link", listing.image),
            ("product_type", listing.platform_text),
            ("availability", "in stock" if listing.in_stock else "out of stock"),
            ("condition", "new"),
        ]
        if listing.gtin:
            fields.append(("gtin", listing.gtin))
        for name, value in fields:
            ET.SubElement(item, f"{{{GOOGLE_NAMESPACE}}}{name}").text = value
    tree = ET.ElementTree(rss)
    ET.indent(tree, space="  ")
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _write_quickkeys(path: Path, rows: list[Listing]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(_QUICKKEYS_HEADER)
        for listing in rows:
            writer.writerow(
                (
                    listing.product_id,
                    listing.title,
                    listing.platform_text,
                    _comma_decimal(listing.price),
                    listing.currency,
                    listing.image,
                )
            )


def _write_feeds(feeds_dir: Path, listings: list[Listing], rng: random.Random) -> None:
    by_shop: dict[str, list[Listing]] = {shop: [] for shop in SHOPS}
    for listing in listings:
        by_shop[listing.shop].append(listing)
    for rows in by_shop.values():
        rng.shuffle(rows)
    generated = datetime(2024, 11, 1) + timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86399))
    _write_pixelcrate(feeds_dir / _FEED_FILES["pixelcrate"], by_shop["pixelcrate"])
    _write_boxhaus(feeds_dir / _FEED_FILES["boxhaus"], by_shop["boxhaus"], generated.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _write_lootlane(feeds_dir / _FEED_FILES["lootlane"], by_shop["lootlane"])
    _write_consolecorner(feeds_dir / _FEED_FILES["consolecorner"], by_shop["consolecorner"])
    _write_quickkeys(feeds_dir / _FEED_FILES["quickkeys"], by_shop["quickkeys"])


def _label_rows(listings: list[Listing], rng: random.Random) -> list[dict]:
    """Build labels.jsonl rows: manual-train labels, reviewer verdicts and manual pins, in shuffled order."""
    order = list(listings)
    rng.shuffle(order)
    train_count = round(len(order) * _MANUAL_TRAIN_SHARE)
    trained, rest = order[:train_count], order[train_count:]
    rows: list[dict] = [
        {
            "shop": listing.shop,
            "product_id": listing.product_id,
            "labels": list(listing.labels),
            "source": "manual-train",
        }
        for listing in trained
    ]

    review_count = min(len(rest), max(2, round(len(listings) * _REVIEW_SHARE * (1 - _MANUAL_TRAIN_SHARE))))
    truth_classes = [label for label in LABEL_CLASSES if label != "unclear"]
    for listing in rest[:review_count]:
        if rng.random() < 0.55:
            predicted, verdict = rng.choice(listing.labels), "confirmed"
        else:
            predicted = rng.choice([label for label in truth_classes if label not in listing.labels])
            verdict = "rejected"
        rows.append(
            {
                "shop": listing.shop,
                "product_id": listing.product_id,
                "source": "review",
                "predicted": predicted,
                "verdict": verdict,
            }
        )

    # Staff pin a clean cover as the primary cover of one or two games.
    pinned_games: set[str] = set()
    for listing in order:
        if len(pinned_games) == (2 if len(listings) >= 20 else 1):
            break
        if listing.labels == ("clean",) and listing.game.game_id not in pinned_games:
            pinned_games.add(listing.game.game_id)
            rows.append({"source": "manual-pin", "shop": listing.shop, "product_id": listing.product_id})
    rng.shuffle(rows)
    return rows


def _truth_row(listing: Listing) -> dict:
    return {
        "shop": listing.shop,
        "product_id": listing.product_id,
        "image": listing.image,
        "game_id": listing.game.game_id,
        "game_title": listing.game.title,
        "edition_id": f"{listing.game.game_id}-{listing.platform.code}",
        "platform": listing.platform.code,
        "family": listing.platform.family,
        "image_family": listing.image_family,
        "shown_game_id": listing.shown_game_id,
        "labels": list(listing.labels),
    }


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _write_readme(path: Path, counts: dict, games: int, seed: int) -> None:
    label_lines = "\n".join(f"| {label} | {number} |" for label, number in counts["labels"].items())
    shop_lines = "\n".join(f"| {shop} | {number} |" for shop, number in counts["shops"].items())
    path.write_text(
        f"""# Demo game-cover catalogue

Generated by coverpick.demo_catalogue with games={games}, seed={seed}. The games,
shops, prices and product ids are invented, and every cover is drawn by the
generator, so the folder contains no third-party images.

The layout and the five feed formats are those of a real catalogue folder:
feeds/ (one feed per shop), images/<shop>/, labels.jsonl (manual-train labels,
review verdicts and manual pins) and truth.jsonl (reference labels and grouping
for every listing). The manual-train labels are the labels each picture was
drawn for, so unlike human labels they contain no mistakes.

{counts["listings"]} listings, {counts["games"]} games, {counts["editions"]} editions.

| label | listings |
|---|---|
{label_lines}

| shop | listings |
|---|---|
{shop_lines}
""",
        encoding="utf-8",
    )


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def generate_catalogue(target: Path, *, games: int = 40, seed: int = 0) -> dict:
    """Write a demo catalogue folder of ``games`` invented games to ``target``.

    Each game has one or two editions, and each edition is listed by two to four
    of the five shops, each with its own picture. The same ``games`` and
    ``seed`` give the same files. Returns the counts: ``listings``, ``games``,
    ``editions``, ``labels`` (reference label -> listings) and ``shops``
    (shop -> listings).

    Raises ValueError when ``games`` is below 1, FileExistsError when ``target``
    exists and is not an empty folder, so an older catalogue is never mixed with
    a new one, and RuntimeError when Pillow has no FreeType support.
    """
    if games < 1:
        raise ValueError(f"games must be at least 1, got {games}")
    if not features.check("freetype2"):
        raise RuntimeError(
            "Pillow is installed without FreeType support, which the demo catalogue needs to draw cover text. "
            "Install a Pillow build with FreeType, such as the wheels from PyPI."
        )
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f"{target} already exists and is not an empty folder. Remove it or choose another target."
        )

    rng = random.Random(seed)
    game_list = _make_games(games, random.Random(rng.getrandbits(64)))

    listings = _plan_listings(game_list, random.Random(rng.getrandbits(64)))
    _fill_feed_fields(listings, random.Random(rng.getrandbits(64)))

    feeds_dir = target / "feeds"
    feeds_dir.mkdir(parents=True, exist_ok=True)
    image_numbers: dict[str, list[int]] = {}
    for shop in SHOPS:
        (target / "images" / shop).mkdir(parents=True, exist_ok=True)
        shop_count = sum(1 for listing in listings if listing.shop == shop)
        numbers = list(range(1, shop_count + 1))
        rng.shuffle(numbers)
        image_numbers[shop] = numbers

    context = _new_drawing_context(game_list, rng.getrandbits(64))
    for listing in listings:
        image, file_format = _draw_listing(listing, context)
        number = image_numbers[listing.shop].pop()
        listing.image = f"images/{listing.shop}/{number:04d}.{file_format}"
        # Shops compress differently, so each listing gets a JPEG quality from 72 to 90.
        jpeg_quality = 72 + listing.image_seed % 19
        _save_image(image, target / listing.image, file_format, jpeg_quality)

    _write_feeds(feeds_dir, listings, random.Random(rng.getrandbits(64)))
    truth = sorted(listings, key=lambda listing: (SHOPS.index(listing.shop), listing.image))
    _write_jsonl(target / "truth.jsonl", [_truth_row(listing) for listing in truth])
    _write_jsonl(target / "labels.jsonl", _label_rows(listings, random.Random(rng.getrandbits(64))))

    label_counts = Counter(label for listing in listings for label in listing.labels)
    counts = {
        "listings": len(listings),
        "games": len(game_list),
        "editions": len({(listing.game.game_id, listing.platform.code) for listing in listings}),
        "labels": {label: label_counts[label] for label in LABEL_CLASSES if label != "unclear"},
        "shops": {shop: sum(1 for listing in listings if listing.shop == shop) for shop in SHOPS},
    }
    _write_readme(target / "README.md", counts, games, seed)
    return counts

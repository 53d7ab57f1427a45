"""Normalise retailer feed values: platforms, game titles, editions and prices.

Retailers write the same platform, game and price in many ways ("PS3",
"Sony PlayStation 3", "Games > PlayStation 3"; "Doom - Standard Edition",
"DOOM (Code in a Box)"; "£54.99", "54,99 €"). The functions here map those
variants to one form, so that listings from different shops can be grouped.
This module is pure Python and does not import Django.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator
from decimal import Decimal

__all__ = [
    "FAMILIES",
    "ISO_4217_CODES",
    "MAX_PLATFORM_CODE_LENGTH",
    "PriceError",
    "edition_name",
    "game_key",
    "is_iso_currency",
    "parse_price",
    "platform_family",
]

FAMILIES = ("nintendo", "sony", "xbox", "pc", "other")


# ---------------------------------------------------------------------------
# Platforms
# ---------------------------------------------------------------------------

# Platform code -> (family, aliases). Aliases are in compact form (lower case,
# letters and digits only) and are matched with and without a leading
# manufacturer name, so "Sony PlayStation 3", "PLAYSTATION-3" and "PS 3" all
# match "playstation3" or "ps3".
_PLATFORMS: dict[str, tuple[str, tuple[str, ...]]] = {
    # Nintendo
    "nes": ("nintendo", ("nes", "famicom", "entertainmentsystem")),
    "snes": ("nintendo", ("snes", "superfamicom", "supernes", "superentertainmentsystem")),
    "n64": ("nintendo", ("n64", "64")),
    "64dd": ("nintendo", ("64dd", "n64dd")),
    "gc": ("nintendo", ("gc", "ngc", "gamecube")),
    "wii": ("nintendo", ("wii",)),
    "wiiu": ("nintendo", ("wiiu",)),
    "switch": ("nintendo", ("switch", "ns", "nsw")),
    "gb": ("nintendo", ("gb", "gameboy")),
    "gbc": ("nintendo", ("gbc", "gameboycolor", "gameboycolour")),
    "gba": ("nintendo", ("gba", "gameboyadvance")),
    "nds": ("nintendo", ("nds", "ds", "dsi")),
    "3ds": ("nintendo", ("3ds", "new3ds", "2ds")),
    "vb": ("nintendo", ("vb", "vboy", "virtualboy")),
    # Sony
    "ps1": ("sony", ("ps1", "psx", "psone", "playstation", "playstation1")),
    "ps2": ("sony", ("ps2", "playstation2")),
    "ps3": ("sony", ("ps3", "playstation3")),
    "ps4": ("sony", ("ps4", "playstation4")),
    "ps5": ("sony", ("ps5", "playstation5")),
    "psp": ("sony", ("psp", "playstationportable")),
    "psv": ("sony", ("psv", "vita", "psvita", "playstationvita")),
    # Microsoft
    "xbox": ("xbox", ("xbox", "xb")),
    "x360": ("xbox", ("x360", "xbox360", "xb360")),
    "xone": ("xbox", ("xone", "xboxone", "xb1", "xbone")),
    "xsx": ("xbox", ("xsx", "xboxseriesx", "xboxseriesxs", "xboxseries")),
    # PC: DOS and Windows. The media suffixes are how retailers label boxed PC games.
    "pc": (
        "pc",
        (
            "pc",
            "windows",
            "win",
            "pcwindows",
            "windowspc",
            "dos",
            "msdos",
            "pcdos",
            "pcdvd",
            "pcdvdrom",
            "pccd",
            "pccdrom",
            "pcdownload",
        ),
    ),
    # Other systems
    "saturn": ("other", ("saturn", "sat")),
    "md": ("other", ("md", "megadrive", "genesis")),
    "ms": ("other", ("ms", "mastersystem")),
    "gg": ("other", ("gg", "gamegear")),
    "dc": ("other", ("dc", "dreamcast")),
    "amiga": ("other", ("amiga",)),
    "x68000": ("other", ("x68000", "x68k")),
    "pce": ("other", ("pce", "pcengine", "turbografx16", "tg16")),
    "neogeo": ("other", ("neogeo",)),
}

_PLATFORM_BY_ALIAS: dict[str, tuple[str, str]] = {
    alias: (family, code)
    for code, (family, aliases) in _PLATFORMS.items()
    for alias in aliases
}

# Manufacturer names that retailers put before a platform name. A string that is
# only a manufacturer name identifies the family, but not the platform.
_MANUFACTURER_FAMILIES = {
    "nintendo": "nintendo",
    "sony": "sony",
    "microsoft": "xbox",
    "sega": "other",
    "sharp": "other",
    "commodore": "other",
    "nec": "other",
    "snk": "other",
}
_MANUFACTURER_PREFIX = re.compile(r"^(?:" + "|".join(_MANUFACTURER_FAMILIES) + r")")

# Maximum length of a platform code. Codes are stored in Edition.platform, a
# 40-character field, so a slug made from an unknown platform string is cut.
MAX_PLATFORM_CODE_LENGTH = 40

# Category paths such as "Games > Retro > X68000" or "Video Games / PS4".
_CATEGORY_SEPARATOR = re.compile(r"\s*(?:>|»|›|/|\|)\s*")


def _compact_platform(text: str) -> str:
    """Lower-case the text and drop everything but letters and digits."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).casefold()
    ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def _lookup_platform(segment: str) -> tuple[str, str] | None:
    compact = _compact_platform(segment)
    if not compact:
        return None
    if compact in _PLATFORM_BY_ALIAS:
        return _PLATFORM_BY_ALIAS[compact]

    match = _MANUFACTURER_PREFIX.match(compact)
    if match is None:
        return None
    rest = compact[match.end() :]
    if rest in _PLATFORM_BY_ALIAS:
        return _PLATFORM_BY_ALIAS[rest]
    if not rest:
        # Only a manufacturer name, such as "Nintendo": the family is known but
        # the platform is not, so the code is the manufacturer's slug.
        return _MANUFACTURER_FAMILIES[match.group(0)], match.group(0)
    return None


def platform_family(raw: str) -> tuple[str, str]:
    """Map a platform name as a retailer sends it to ``(family, platform_code)``.

    ``raw`` may be a name ("Sony PlayStation 3"), a code ("WIIU", "X68K") or a
    category path ("Games > Retro > X68000"). For a path, the last segment that
    names a known platform wins, so "Games > PlayStation 4 > Action" still maps to
    ``("sony", "ps4")``. A string that is only a manufacturer name maps to that
    manufacturer's family with the manufacturer as code, for example
    ``("nintendo", "nintendo")``. Any other string maps to ``("other", slug)``
    with the slug cut to MAX_PLATFORM_CODE_LENGTH characters. An empty string
    maps to ``("other", "unknown")``.
    """
    segments = [part for part in _CATEGORY_SEPARATOR.split(raw or "") if part.strip()]
    manufacturer_only: tuple[str, str] | None = None
    for segment in reversed(segments):
        found = _lookup_platform(segment)
        if found is None:
            continue
        if found[1] in _MANUFACTURER_FAMILIES:
            # Keep looking, because a more specific segment may follow,
            # as in "Games > Nintendo > Wii U" read from the end.
            manufacturer_only = manufacturer_only or found
            continue
        return found
    if manufacturer_only is not None:
        return manufacturer_only

    last = segments[-1] if segments else ""
    code = _slug(last)[:MAX_PLATFORM_CODE_LENGTH].rstrip("-")
    return "other", code or "unknown"


# ---------------------------------------------------------------------------
# Titles and editions
# ---------------------------------------------------------------------------

_TRADEMARK_SIGNS = str.maketrans("", "", "™®©℠")

# Adjectives that make "<adjective> Edition" a retail edition of a game rather
# than part of its name. Remasters ("Warmastered Edition", "Definitive Edition",
# "HD") are deliberately absent, because they are sold and grouped as games.
_EDITION_ADJECTIVES = (
    r"standard|limited|deluxe|digital\s+deluxe|super\s+deluxe|collector'?s|collectors|"
    r"day\s*(?:one|1)|special|premium|gold|game\s+of\s+the\s+year|goty|complete|"
    r"ultimate|launch|steelbook|signature|legendary|first\s+print|bonus"
)
_EDITION_PHRASE = re.compile(rf"(?:{_EDITION_ADJECTIVES})\s+edition", re.IGNORECASE)

# Labels that retailers append after a separator or in brackets without the
# word "Edition", and budget re-release labels. Other adjectives count only
# with "Edition", because "Pokemon: Gold" and "Street Fighter: Ultimate" name games.
_STANDALONE_LABEL = re.compile(
    r"standard|limited|deluxe|digital\s+deluxe|collector'?s|collectors|day\s*(?:one|1)|"
    r"game\s+of\s+the\s+year|goty|steelbook|first\s+print|"
    r"classics|platinum|essentials|greatest\s+hits|player'?s\s+choice|nintendo\s+selects",
    re.IGNORECASE,
)

# Box contents that replace the disc with a download. Matched after hyphens
# are turned into spaces.
_FORMAT_LABEL = re.compile(
    r"code\s+in\s+(?:a\s+)?box|game\s+key\s+card|key\s+card|download\s+code|digital\s+code",
    re.IGNORECASE,
)

# Market tags accepted only inside brackets, as in "(UK Import)".
_REGION_LABEL = re.compile(r"(?:uk|eu|us|usa|jp|jpn|japan|pal|ntsc)(?:\s+import)?|import", re.IGNORECASE)

_TRAILING_BRACKET = re.compile(r"\s*[(\[]([^()\[\]]*)[)\]]\s*$")
# A dash or bar only separates when a space comes before it, so "Spider-Man"
# and "Game-Key Card" stay whole.
_SEPARATOR = re.compile(r"\s+[-–—|]\s*|\s*[:,]\s*")
_TRAILING_BARE_EDITION = re.compile(rf"\s+((?:{_EDITION_ADJECTIVES})\s+edition)\s*$", re.IGNORECASE)

_APOSTROPHES = str.maketrans("", "", "'’ʼ`´")
_ROMAN_NUMERAL = re.compile(r"^(?=[ivx]{2,}$)x{0,3}(?:ix|iv|v?i{0,3})$")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}


def _label_kind(text: str, *, bracketed: bool) -> str | None:
    """Classify a trailing title segment as "edition", "format", "platform" or "region".

    Returns None when the segment is part of the game's name.
    """
    phrase = re.sub(r"[-_]+", " ", text).strip()
    if not phrase:
        return None
    if _FORMAT_LABEL.fullmatch(phrase):
        return "format"
    if _STANDALONE_LABEL.fullmatch(phrase) or _EDITION_PHRASE.fullmatch(phrase):
        return "edition"
    if bracketed and _REGION_LABEL.fullmatch(phrase):
        return "region"
    platform = _lookup_platform(text)
    if platform is not None and platform[1] not in _MANUFACTURER_FAMILIES:
        return "platform"
    return None


def _trailing_segments(text: str) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(start, segment, bracketed)`` for each candidate label at the end of ``text``."""
    match = _TRAILING_BRACKET.search(text)
    if match is not None:
        yield match.start(), match.group(1), True

    last_separator = None
    for last_separator in _SEPARATOR.finditer(text):
        pass
    if last_separator is not None and last_separator.end() < len(text):
        yield last_separator.start(), text[last_separator.end() :], False

    match = _TRAILING_BARE_EDITION.search(text)
    if match is not None:
        yield match.start(), match.group(1), False


def _split_title_labels(title: str) -> tuple[str, list[tuple[str, str]]]:
    """Strip retail labels from the end of a title.

    Returns the remaining title and the removed labels as ``(kind, text)`` pairs,
    in the order they appear in the title. A label is removed only when it is in
    brackets, follows a separator (" - ", ":", ","), or is an "<adjective> Edition"
    phrase from the known list. The title is never reduced to nothing.
    """
    text = title.translate(_TRADEMARK_SIGNS).strip()
    labels: list[tuple[str, str]] = []
    while True:
        for start, segment, bracketed in _trailing_segments(text):
            kind = _label_kind(segment, bracketed=bracketed)
            if kind is not None and text[:start].strip():
                labels.insert(0, (kind, segment.strip()))
                text = text[:start].rstrip()
                break
        else:
            return text, labels


def display_title(title: str) -> str:
    """Return the title a game is shown under: the feed's title without trademark signs or the retail labels that game_key ignores.

    "3-D Tetris - Standard Edition" becomes "3-D Tetris" and "Danmir Saga 3
    [Game-Key Card]" becomes "Danmir Saga 3", so the game's name does not
    carry one shop's edition or packaging.
    """
    text, _labels = _split_title_labels(title)
    return " ".join(text.split())


def in_capitals(title: str) -> bool:
    """Return True when every cased letter of ``title`` is a capital and it has at least one."""
    return title == title.upper() and title != title.lower()


def better_cased(stored: str, offered: str) -> bool:
    """Return True when ``offered`` should replace a game's ``stored`` title: the same words, stored in capitals, offered in mixed case.

    Shops that write "RAYMAN ORIGINS" name the game less readably than shops
    that write "Rayman Origins". A title in capitals with no other spelling
    ("FIFA 12") stays as it is, since capitals may be the game's own spelling.
    Only the case may differ, so the title's words, which the model reads, stay.
    """
    same_words = stored.lower() == offered.lower()
    return same_words and in_capitals(stored) and not in_capitals(offered) and offered != offered.lower()


def _roman_to_int(token: str) -> int:
    total = 0
    for current, following in zip(token, token[1:] + " "):
        value = _ROMAN_VALUES[current]
        if following != " " and _ROMAN_VALUES[following] > value:
            total -= value
        else:
            total += value
    return total


def game_key(title: str) -> str:
    """Build the key that matches one game's listings across shops.

    The key ignores case, accents, trademark signs, punctuation and spacing. It
    also ignores retail labels at the end of the title, such as editions,
    "Code in a Box", "Game-Key Card" or a platform in brackets. A leading or
    trailing "The" is dropped, and Roman numerals from II to XXXIX become digits.
    The key does not depend on the platform, so the same game on PS3 and
    Xbox 360 gets the same key. It is the remaining letters and digits joined
    without spaces, so "Spider-Man" and "Spiderman" also match.
    """
    text, _labels = _split_title_labels(title)
    text = re.sub(r",\s*the\s*$", "", text, flags=re.IGNORECASE)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().translate(_APOSTROPHES).replace("&", " and ")
    tokens = re.findall(r"[^\W_]+", text)

    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    tokens = [str(_roman_to_int(t)) if _ROMAN_NUMERAL.match(t) else t for t in tokens]
    return "".join(tokens)


# Display names for labels that retailers spell in several ways. Keys are
# lower case with hyphens and apostrophes removed.
_CANONICAL_LABELS = {
    "standard": "Standard",
    "standard edition": "Standard",
    "code in a box": "Code in a Box",
    "code in box": "Code in a Box",
    "game key card": "Game-Key Card",
    "key card": "Game-Key Card",
    "collectors edition": "Collector's Edition",
    "day one edition": "Day One Edition",
    "day 1 edition": "Day One Edition",
    "dayone edition": "Day One Edition",
    "goty": "Game of the Year Edition",
    "goty edition": "Game of the Year Edition",
}


def _display_label(text: str) -> str:
    key = " ".join(re.sub(r"[-_]+", " ", text.translate(_APOSTROPHES)).casefold().split())
    if key in _CANONICAL_LABELS:
        return _CANONICAL_LABELS[key]
    if text.isupper() or text.islower():
        return string.capwords(text)
    return " ".join(text.split())


def edition_name(title: str, edition_text: str | None) -> str:
    """Name the retail edition of a listing for display, such as "Day One Edition".

    Combines the feed's edition field with edition and format labels at the end
    of the title, for example "Limited Edition, Game-Key Card". "Standard" is
    dropped when any other label is present, because retailers fill the field
    with "Standard" by default even when the title names another edition.
    Returns "Standard" when nothing else is known.
    """
    parts: list[str] = []
    if edition_text and edition_text.strip():
        parts.append(_display_label(edition_text.strip()))
    _rest, labels = _split_title_labels(title)
    parts.extend(_display_label(text) for kind, text in labels if kind in ("edition", "format"))

    unique: list[str] = []
    seen: set[str] = set()
    for part in parts:
        if part.casefold() not in seen:
            seen.add(part.casefold())
            unique.append(part)

    specific = [part for part in unique if part != "Standard"]
    return ", ".join(specific) if specific else "Standard"


# ---------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------


# Current ISO 4217 alphabetic codes, including the fund, precious-metal and
# testing codes (such as CLF, XAU and XTS). Withdrawn codes such as ANG, CUC,
# HRK and ZWL are absent.
# NOTE: the list follows the ISO 4217 amendments up to 2025: XCG replaced ANG on
# 2025-03-31 and ZWG replaced ZWL in 2024. BGN is due to go when Bulgaria adopts
# the euro in 2026. The importer stores an unknown code and only warns about
# it, so a code that ISO adds later still imports.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
    BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC
    CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF
    KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU
    UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD
    XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG
    """.split()
)


def is_iso_currency(code: str) -> bool:
    """Tell whether ``code`` is a current ISO 4217 currency code, ignoring case."""
    return code.strip().upper() in ISO_4217_CODES


class PriceError(ValueError):
    """A price text that cannot be read as an amount and currency."""


# Currency signs, longest first so that "US$" wins over "$".
# NOTE: a bare "$" is read as USD and "¥" as JPY. Feeds in other dollar or yen
# currencies must send an ISO code.
_CURRENCY_SIGNS = (
    ("US$", "USD"),
    ("AU$", "AUD"),
    ("CA$", "CAD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("A$", "AUD"),
    ("C$", "CAD"),
    ("£", "GBP"),
    ("€", "EUR"),
    ("$", "USD"),
    ("¥", "JPY"),
)
_ISO_CODE_AT_START = re.compile(r"^([A-Za-z]{3})(?![A-Za-z])\s*")
_ISO_CODE_AT_END = re.compile(r"(?<![A-Za-z])\s*([A-Za-z]{3})$")

# Digits with optional group separators: dot, comma, space, no-break space,
# narrow no-break space or apostrophe.
_NUMBER = re.compile(r"[0-9][0-9.,' \u00a0\u202f]*(?:[.,]-)?")
_MAX_PRICE_TEXT = 64


def _remove_one_currency(text: str) -> tuple[str, str | None]:
    """Remove one currency sign or ISO code from either end of ``text``."""
    for sign, code in _CURRENCY_SIGNS:
        if text.startswith(sign):
            return text[len(sign) :].strip(), code
        if text.endswith(sign):
            return text[: -len(sign)].strip(), code
    for pattern in (_ISO_CODE_AT_START, _ISO_CODE_AT_END):
        match = pattern.search(text)
        if match is not None:
            return (text[: match.start()] + text[match.end() :]).strip(), match.group(1).upper()
    return text, None


def _take_currency(text: str, price_text: str) -> tuple[str, str | None]:
    """Remove currency signs and ISO codes from both ends of ``text``.

    Returns the rest of the text and the currency. Raises PriceError when the
    text names two different currencies, as in "£5 EUR".
    """
    found: set[str] = set()
    text, code = _remove_one_currency(text.strip())
    while code is not None:
        found.add(code)
        text, code = _remove_one_currency(text)

    if len(found) > 1:
        raise PriceError(f"price {price_text!r} names two currencies, {' and '.join(sorted(found))}")
    return text, (found.pop() if found else None)


_GROUP_MARKS = ".,' \u00a0\u202f"


def _to_decimal(number: str, price_text: str) -> Decimal:
    """Convert digits with European or English separators to a Decimal.

    The last "." or "," is the decimal mark when it is the only one of its kind
    and either a different separator comes before it ("1.234,50") or it is not
    followed by exactly three digits ("54,99"). Otherwise every separator groups
    thousands ("1.234", "1,234,567", "1 234"). Grouping must be in threes.
    """
    if number.endswith((",-", ".-")):
        # "54,-" is the German way to write 54.00.
        number = number[:-2]

    whole, fraction = number, ""
    last = max(number.rfind("."), number.rfind(","))
    if last >= 0:
        mark = number[last]
        head, tail = number[:last], number[last + 1 :]
        other_marks = {ch for ch in head if ch in _GROUP_MARKS} - {mark}
        is_decimal = mark not in head and (bool(other_marks) or len(tail) != 3 or head.strip("0") == "")
        if is_decimal:
            whole, fraction = head, tail

    group_marks = {ch for ch in whole if ch in _GROUP_MARKS}
    if len(group_marks) > 1:
        raise PriceError(f"price {price_text!r} is not a number")
    if group_marks:
        groups = whole.split(group_marks.pop())
        if not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:]):
            raise PriceError(f"price {price_text!r} is not a number")
        whole = "".join(groups)

    if not re.fullmatch(r"[0-9]+", whole) or not re.fullmatch(r"[0-9]*", fraction):
        raise PriceError(f"price {price_text!r} is not a number")
    return Decimal(f"{whole}.{fraction}" if fraction else whole)


def parse_price(text: str, default_currency: str | None = None) -> tuple[Decimal, str | None]:
    """Parse a price as shops write it into ``(amount, currency)``.

    Accepts a currency sign or a three-letter code before or after the number
    ("£54.99", "54,99 €", "59.99 EUR") and either decimal mark. Any three
    letters are read as a code, and ``is_iso_currency`` checks whether ISO 4217
    defines it. When both "." and "," occur,
    the last one is the decimal mark. A single mark followed by exactly three
    digits is a thousands separator ("1.234" is 1234). The currency is upper
    case. It is ``default_currency`` when the text names none, and None when
    neither names one.

    Raises PriceError for an empty, negative or unreadable price, or for a text
    that names two different currencies.
    """
    price_text = text
    text = (text or "").strip()
    if not text:
        raise PriceError("price is empty")
    if len(text) > _MAX_PRICE_TEXT:
        raise PriceError(f"price {text[:20]!r}... is longer than {_MAX_PRICE_TEXT} characters")

    rest, currency = _take_currency(text, price_text)
    if rest.startswith(("-", "−")):
        raise PriceError(f"price {price_text!r} is negative")
    if not _NUMBER.fullmatch(rest):
        raise PriceError(f"price {price_text!r} is not a number")

    amount = _to_decimal(rest, price_text)
    if currency is None and default_currency:
        currency = default_currency.strip().upper() or None
    return amount, currency

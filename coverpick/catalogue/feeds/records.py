"""Records that the feed readers yield: one listing, or one problem with the input."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from coverpick.catalogue.normalise import PriceError, parse_price

__all__ = ["FeedProblem", "FeedRow", "FieldTypeError", "build_row", "json_text"]


@dataclass(frozen=True)
class FeedRow:
    """One retailer listing as the feed sends it, with the price already parsed."""

    shop: str  # shop id = feed file stem, e.g. "pixelcrate"
    product_id: str
    title: str  # title as sent, without surrounding whitespace
    platform_raw: str  # platform as sent, or "" when the feed has none for this row
    edition_text: str | None  # edition field when the feed has one
    price: Decimal | None
    currency: str | None  # ISO 4217, upper case
    url: str | None  # product URL
    image_ref: str | None  # relative path or http(s) URL as sent
    in_stock: bool | None
    gtin: str | None
    source_file: str  # path of the feed file
    # 1-based line where the row starts: the CSV or JSONL line, the line of the
    # XML <item> start tag, or the line of the JSON product's opening brace.
    line: int


@dataclass(frozen=True)
class FeedProblem:
    """An input error in a feed, with the place and what the reader did about it."""

    source_file: str
    line: int
    reason: str  # what is wrong with which value, e.g. "price 'abc' is not a number"
    # What the reader did: "row skipped", or "rest of file skipped" and
    # "file skipped" for errors that stop the reader.
    outcome: str = "row skipped"

    def __str__(self) -> str:
        return f"{self.source_file} line {self.line}: {self.reason}; {self.outcome}"


_ISO_4217_SHAPE = re.compile(r"[A-Za-z]{3}")


class FieldTypeError(ValueError):
    """A JSON field whose type cannot be read as text."""


_JSON_TYPE_NAMES = {dict: "an object", list: "an array", bool: "a boolean"}


def json_error_text(error: json.JSONDecodeError) -> str:
    """Describe a JSON syntax error with its column, for a reason in parentheses.

    Some of the json module's messages already end in "at" ("Invalid control
    character at"), so the column is joined without repeating it.
    """
    return f"{error.msg.removesuffix(' at')} at column {error.colno}"


def json_text(value: object, field: str) -> str | None:
    """Return a JSON scalar as text, or None for a missing value or null.

    Numbers are accepted and converted, because some feeds send ids and prices
    as numbers. Raises FieldTypeError for objects, arrays and booleans.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    type_name = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    raise FieldTypeError(f"field {field!r} is {type_name}, expected a string")


def _clean(value: str | None) -> str | None:
    """Strip whitespace and turn an empty string into None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def build_row(
    *,
    shop: str,
    source_file: str,
    line: int,
    product_id: str | None,
    title: str | None,
    platform_raw: str | None,
    edition_text: str | None,
    price_text: str | None,
    currency: str | None,
    url: str | None,
    image_ref: str | None,
    in_stock: bool | None,
    gtin: str | None,
) -> FeedRow | FeedProblem:
    """Validate the fields of one listing and build a FeedRow, or a FeedProblem.

    Every reader funnels its fields through here so that all formats follow the
    same rules. A missing product id or title, an unreadable price, a currency
    that is not three letters, or a price whose currency sign contradicts the
    currency field makes the row a problem. A missing price is allowed and
    gives ``price=None``. A price without any currency gives ``currency=None``.
    """

    def problem(reason: str) -> FeedProblem:
        return FeedProblem(source_file=source_file, line=line, reason=reason)

    product_id = _clean(product_id)
    if product_id is None:
        return problem("product id is missing")
    title = _clean(title)
    if title is None:
        return problem(f"title of product {product_id!r} is missing")

    currency = _clean(currency)
    if currency is not None and not _ISO_4217_SHAPE.fullmatch(currency):
        return problem(f"currency {currency!r} of product {product_id!r} is not a 3-letter ISO 4217 code")
    currency = currency.upper() if currency else None

    price: Decimal | None = None
    price_text = _clean(price_text)
    if price_text is not None:
        try:
            price, price_currency = parse_price(price_text)
        except PriceError as error:
            return problem(f"{error} (product {product_id!r})")
        if price_currency is not None and currency is not None and price_currency != currency:
            return problem(
                f"price {price_text!r} is in {price_currency} but the currency field "
                f"of product {product_id!r} is {currency}"
            )
        currency = currency or price_currency

    return FeedRow(
        shop=shop,
        product_id=product_id,
        title=title,
        platform_raw=_clean(platform_raw) or "",
        edition_text=_clean(edition_text),
        price=price,
        currency=currency,
        url=_clean(url),
        image_ref=_clean(image_ref),
        in_stock=in_stock,
        gtin=_clean(gtin),
        source_file=source_file,
        line=line,
    )

"""Reader for product dumps from a shop's JSON API.

The file is one object: ``{"generated_at": ..., "products": [...]}``. Each
product has ``sku``, ``title``, ``platform`` (an object with ``code`` and
``name``, or a string), ``edition``, ``price`` (an object with ``amount`` and
``currency``), ``images`` (objects with ``role`` and ``url``) and ``url``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from coverpick.catalogue.normalise import platform_family

from .records import FeedProblem, FeedRow, FieldTypeError, build_row, json_error_text, json_text

__all__ = ["read_json_api"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_float=Decimal)


class _MissingProducts(ValueError):
    pass


def _skip_whitespace(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _expect(text: str, position: int, characters: str) -> str:
    """Return the character at ``position`` if it is one of ``characters``."""
    if position < len(text) and text[position] in characters:
        return text[position]
    expected = " or ".join(repr(ch) for ch in characters)
    raise json.JSONDecodeError(f"Expecting {expected}", text, position)


def _parse_array_with_positions(text: str, position: int) -> tuple[list[tuple[int, object]], int]:
    """Parse the JSON array that starts at ``position``.

    Returns each element with the offset where it starts, and the offset after
    the closing bracket.
    """
    _expect(text, position, "[")
    position = _skip_whitespace(text, position + 1)
    elements: list[tuple[int, object]] = []
    if position < len(text) and text[position] == "]":
        return elements, position + 1
    while True:
        start = position
        value, position = _DECODER.raw_decode(text, position)
        elements.append((start, value))
        position = _skip_whitespace(text, position)
        if _expect(text, position, ",]") == "]":
            return elements, position + 1
        position = _skip_whitespace(text, position + 1)


def _parse_products(text: str) -> list[tuple[int, object]]:
    """Parse the whole document and return the products with their start offsets.

    Walks the top-level object key by key with the standard JSON decoder, so the
    document is fully validated and the offset of each product is known.
    Raises json.JSONDecodeError for invalid JSON and _MissingProducts when there
    is no "products" array.
    """
    position = _skip_whitespace(text, 0)
    if position < len(text) and text[position] != "{":
        raise _MissingProducts("the document is not a JSON object")
    _expect(text, position, "{")
    position = _skip_whitespace(text, position + 1)

    products: list[tuple[int, object]] | None = None
    if position < len(text) and text[position] == "}":
        position += 1
    else:
        while True:
            key, position = _DECODER.raw_decode(text, position)
            if not isinstance(key, str):
                message = "Expecting property name enclosed in double quotes"
                raise json.JSONDecodeError(message, text, position)
            position = _skip_whitespace(text, position)
            _expect(text, position, ":")
            position = _skip_whitespace(text, position + 1)
            if key == "products" and position < len(text) and text[position] == "[":
                products, position = _parse_array_with_positions(text, position)
            else:
                _value, position = _DECODER.raw_decode(text, position)
            position = _skip_whitespace(text, position)
            if _expect(text, position, ",}") == "}":
                position += 1
                break
            position = _skip_whitespace(text, position + 1)

    if _skip_whitespace(text, position) != len(text):
        raise json.JSONDecodeError("Extra data", text, position)
    if products is None:
        raise _MissingProducts('the document has no "products" array')
    return products


def _platform_text(platform: object) -> str | None:
    """Choose the platform name, or the code when the name is missing or unknown."""
    if not isinstance(platform, dict):
        return json_text(platform, "platform")
    name = json_text(platform.get("name"), "platform.name")
    code = json_text(platform.get("code"), "platform.code")
    if name and code and platform_family(name)[0] == "other" and platform_family(code)[0] != "other":
        return code
    return name or code


def _price_fields(price: object) -> tuple[str | None, str | None]:
    """Return ``(price_text, currency)`` from a price object, string or number."""
    if isinstance(price, dict):
        amount = json_text(price.get("amount"), "price.amount")
        currency = json_text(price.get("currency"), "price.currency")
        return amount, currency
    return json_text(price, "price"), None


def _front_image(images: object) -> str | None:
    """Return the URL of the image with role "front", else of the first image."""
    if images is None:
        return None
    if not isinstance(images, list):
        raise FieldTypeError("field 'images' is not an array")
    urls: list[tuple[str | None, str | None]] = []
    for index, image in enumerate(images):
        if isinstance(image, dict):
            role = json_text(image.get("role"), f"images[{index}].role")
            url = json_text(image.get("url"), f"images[{index}].url")
            urls.append((role, url))
        else:
            urls.append((None, json_text(image, f"images[{index}]")))
    for role, url in urls:
        if role == "front" and url:
            return url
    return next((url for _role, url in urls if url), None)


def _product_row(path: Path, line: int, product: object) -> FeedRow | FeedProblem:
    source = str(path)
    if not isinstance(product, dict):
        return FeedProblem(source, line, "product is not a JSON object")
    try:
        price_text, currency = _price_fields(product.get("price"))
        return build_row(
            shop=path.stem,
            source_file=source,
            line=line,
            product_id=json_text(product.get("sku"), "sku"),
            title=json_text(product.get("title"), "title"),
            platform_raw=_platform_text(product.get("platform")),
            edition_text=json_text(product.get("edition"), "edition"),
            price_text=price_text,
            currency=currency,
            url=json_text(product.get("url"), "url"),
            image_ref=_front_image(product.get("images")),
            in_stock=None,
            gtin=json_text(product.get("gtin"), "gtin"),
        )
    except FieldTypeError as error:
        return FeedProblem(source, line, str(error))


def read_json_api(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Read the listings of a JSON API dump.

    The whole document is parsed before the first row is yielded, so a malformed
    or truncated file yields exactly one FeedProblem and no rows. ``line`` is the
    line where each product object starts.
    """
    path = Path(path)
    source = str(path)
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        reason = f"file is not valid UTF-8 (byte 0x{raw[error.start]:02x})"
        yield FeedProblem(source, line, reason, "file skipped")
        return

    try:
        products = _parse_products(text)
    except json.JSONDecodeError as error:
        reason = f"file is not valid JSON ({json_error_text(error)})"
        yield FeedProblem(source, error.lineno, reason, "file skipped")
        return
    except RecursionError:
        yield FeedProblem(source, 1, "file is not valid JSON (nested too deeply)", "file skipped")
        return
    except _MissingProducts as error:
        yield FeedProblem(source, 1, str(error), "file skipped")
        return

    line, counted_to = 1, 0
    for offset, product in products:
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        yield _product_row(path, line, product)

"""Reader for scraped listings in JSON Lines, one object per line.

Each object has ``url``, ``name``, ``price_text``, ``console`` and ``img``.
The page URL is the product id, because the feed contains no other id.
``price_text`` is the price as the page shows it, such as "£54.99" or
"54,99 €", and carries the currency.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .records import FeedProblem, FeedRow, FieldTypeError, build_row, json_error_text, json_text
from .textlines import decoded_lines

__all__ = ["read_scraped_jsonl"]


def read_scraped_jsonl(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Stream the listings of a JSON Lines feed. Blank lines are skipped."""
    path = Path(path)
    source = str(path)
    for line, text, error in decoded_lines(path):
        if error is not None:
            yield FeedProblem(source, line, error)
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as decode_error:
            reason = f"line is not valid JSON ({json_error_text(decode_error)})"
            yield FeedProblem(source, line, reason)
            continue
        if not isinstance(record, dict):
            yield FeedProblem(source, line, "line is not a JSON object")
            continue

        try:
            url = json_text(record.get("url"), "url")
            yield build_row(
                shop=path.stem,
                source_file=source,
                line=line,
                product_id=url,
                title=json_text(record.get("name"), "name"),
                platform_raw=json_text(record.get("console"), "console"),
                edition_text=None,
                price_text=json_text(record.get("price_text"), "price_text"),
                currency=None,
                url=url,
                image_ref=json_text(record.get("img"), "img"),
                in_stock=None,
                gtin=None,
            )
        except FieldTypeError as type_error:
            yield FeedProblem(source, line, str(type_error))

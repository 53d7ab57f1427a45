"""Reader for semicolon-separated shop exports with a decimal comma.

The header is ``id;name;system;price;currency;image``. Prices are written like
"18,99", and the currency is a separate column. The feed has no product URL,
stock flag, edition or GTIN, so those fields are None.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .records import FeedProblem, FeedRow, build_row
from .textlines import read_delimited

__all__ = ["read_semicolon_csv"]

REQUIRED_COLUMNS = ("id", "name", "system", "price", "currency")


def read_semicolon_csv(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Stream the listings of a semicolon-separated feed."""
    path = Path(path)
    for item in read_delimited(path, delimiter=";", required_columns=REQUIRED_COLUMNS):
        if isinstance(item, FeedProblem):
            yield item
            continue
        line, record = item
        yield build_row(
            shop=path.stem,
            source_file=str(path),
            line=line,
            product_id=record["id"],
            title=record["name"],
            platform_raw=record["system"],
            edition_text=None,
            price_text=record["price"],
            currency=record["currency"],
            url=None,
            image_ref=record.get("image"),
            in_stock=None,
            gtin=None,
        )

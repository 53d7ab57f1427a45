"""Reader for comma-separated affiliate-network product feeds.

The header names the columns. The reader uses ``aw_product_id``,
``product_name``, ``platform``, ``edition``, ``search_price``, ``currency``,
``merchant_image_url``, ``ean``, ``in_stock`` and ``deep_link``, and ignores
other columns such as ``merchant_category``. ``search_price`` has a decimal
point and no currency sign, and ``in_stock`` is 1 or 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .records import FeedProblem, FeedRow, build_row
from .textlines import read_delimited

__all__ = ["read_affiliate_csv"]

REQUIRED_COLUMNS = ("aw_product_id", "product_name", "platform", "search_price", "currency")

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


def parse_stock_flag(value: str | None) -> bool | None:
    """Read a yes/no stock column. Returns None for an empty or unknown value."""
    flag = (value or "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    return None


def read_affiliate_csv(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Stream the listings of a comma-separated affiliate feed."""
    path = Path(path)
    for item in read_delimited(path, delimiter=",", required_columns=REQUIRED_COLUMNS):
        if isinstance(item, FeedProblem):
            yield item
            continue
        line, record = item
        yield build_row(
            shop=path.stem,
            source_file=str(path),
            line=line,
            product_id=record["aw_product_id"],
            title=record["product_name"],
            platform_raw=record["platform"],
            edition_text=record.get("edition"),
            price_text=record["search_price"],
            currency=record["currency"],
            url=record.get("deep_link"),
            image_ref=record.get("merchant_image_url"),
            in_stock=parse_stock_flag(record.get("in_stock")),
            gtin=record.get("ean"),
        )

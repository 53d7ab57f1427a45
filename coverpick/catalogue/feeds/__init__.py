"""Readers for retailer product feeds.

``read_feed(path)`` detects a feed's format and streams FeedRow records, with
a FeedProblem in place of each row that cannot be read. The modules here are
pure Python and do not import Django.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from .affiliate_csv import read_affiliate_csv
from .detect import FEED_EXTENSIONS, FORMATS, FeedFormatError, detect_format
from .json_api import read_json_api
from .records import FeedProblem, FeedRow
from .scraped_jsonl import read_scraped_jsonl
from .semicolon_csv import read_semicolon_csv
from .shopping_rss import read_shopping_rss

__all__ = [
    "FEED_EXTENSIONS",
    "FORMATS",
    "READERS",
    "FeedFormatError",
    "FeedProblem",
    "FeedRow",
    "detect_format",
    "iter_feed_files",
    "read_feed",
]

READERS: dict[str, Callable[[Path], Iterator[FeedRow | FeedProblem]]] = {
    "affiliate_csv": read_affiliate_csv,
    "json_api": read_json_api,
    "scraped_jsonl": read_scraped_jsonl,
    "shopping_rss": read_shopping_rss,
    "semicolon_csv": read_semicolon_csv,
}


def _reject_duplicate_ids(rows: Iterator[FeedRow | FeedProblem]) -> Iterator[FeedRow | FeedProblem]:
    """Turn a repeated product id into a FeedProblem. The first occurrence is kept."""
    first_lines: dict[str, int] = {}
    for row in rows:
        if isinstance(row, FeedRow):
            first_line = first_lines.setdefault(row.product_id, row.line)
            if first_line != row.line:
                reason = f"product id {row.product_id!r} already appeared on line {first_line}"
                yield FeedProblem(row.source_file, row.line, reason)
                continue
        yield row


def read_feed(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Detect the format of a feed file and stream its rows and problems.

    The shop id of every row is the file name without its extension. Raises
    FeedFormatError at once, before any row is read, when the format is not
    recognised.
    """
    path = Path(path)
    reader = READERS[detect_format(path)]
    return _reject_duplicate_ids(reader(path))


def iter_feed_files(feeds_dir: Path) -> list[Path]:
    """List the files in ``feeds_dir`` in name order, without hidden files."""
    feeds_dir = Path(feeds_dir)
    return sorted(path for path in feeds_dir.iterdir() if path.is_file() and not path.name.startswith("."))

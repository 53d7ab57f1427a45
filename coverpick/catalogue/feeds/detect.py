"""Detection of a feed file's format from its file extension and its first bytes."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

__all__ = ["FEED_EXTENSIONS", "FORMATS", "FeedFormatError", "detect_format"]

# Format name -> how to recognise it, for error messages.
FORMATS: dict[str, str] = {
    "affiliate_csv": ".csv with a comma-separated header line",
    "semicolon_csv": ".csv with a semicolon-separated header line",
    "json_api": '.json object with a "products" array',
    "scraped_jsonl": ".jsonl or .ndjson with one JSON object per line",
    "shopping_rss": ".xml or .rss RSS 2.0 feed with the Google Shopping g: namespace",
}

GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"

# Bytes read to confirm the format. They must contain the CSV header line, the
# "products" key of a JSON dump, or the <rss> start tag with its namespaces.
# NOTE: a JSON dump with more than 64 KiB before its "products" key is rejected.
_SNIFF_BYTES = 64 * 1024


class FeedFormatError(ValueError):
    """A file that is not in one of the supported feed formats."""

    def __init__(self, path: Path, problem: str) -> None:
        supported = "; ".join(f"{name} ({description})" for name, description in FORMATS.items())
        super().__init__(f"{path}: {problem}. Supported feed formats: {supported}")
        self.path = path


def _read_head(path: Path) -> str:
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    return head.decode("utf-8", "replace")


def _detect_csv(path: Path, head: str) -> str:
    header = head.splitlines()[0]
    semicolons, commas = header.count(";"), header.count(",")
    if semicolons > commas:
        return "semicolon_csv"
    if commas > 0:
        return "affiliate_csv"
    raise FeedFormatError(path, "the header line has neither commas nor semicolons between column names")


def _detect_json(path: Path, head: str) -> str:
    if head.lstrip().startswith("{") and re.search(r'"products"\s*:\s*\[', head):
        return "json_api"
    raise FeedFormatError(path, 'the file does not start with a JSON object that has a "products" array')


def _detect_jsonl(path: Path, head: str) -> str:
    first = next((line for line in head.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        return "scraped_jsonl"
    raise FeedFormatError(path, "the first non-blank line is not a JSON object")


def _detect_xml(path: Path, head: str) -> str:
    if re.search(r"<rss[\s>]", head) and GOOGLE_NAMESPACE in head:
        return "shopping_rss"
    raise FeedFormatError(path, f"the file is not an RSS feed that declares the namespace {GOOGLE_NAMESPACE}")


_DETECTORS = {
    ".csv": _detect_csv,
    ".json": _detect_json,
    ".jsonl": _detect_jsonl,
    ".ndjson": _detect_jsonl,
    ".xml": _detect_xml,
    ".rss": _detect_xml,
}

# File extensions that name a feed, in lower case with the leading dot.
FEED_EXTENSIONS = tuple(_DETECTORS)


def detect_format(path: Path) -> str:
    """Detect the feed format of ``path`` and return its name from FORMATS.

    The extension selects the candidate formats and the first 64 KiB of content
    must confirm one of them, for example a semicolon-separated header for
    semicolon_csv. Raises FeedFormatError, naming the file and the supported
    formats, for an unknown extension, an empty file or content that does not
    match the extension. Raises OSError when the file cannot be read.
    """
    path = Path(path)
    detector = _DETECTORS.get(path.suffix.lower())
    if detector is None:
        if not path.suffix:
            raise FeedFormatError(path, "the file name has no extension")
        raise FeedFormatError(path, f"the extension {path.suffix!r} is not a known feed extension")
    head = _read_head(path)
    if not head.strip():
        raise FeedFormatError(path, "the file is empty")
    return detector(path, head)

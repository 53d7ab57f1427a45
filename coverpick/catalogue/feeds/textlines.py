"""Line-by-line reading of text feeds (CSV and JSON Lines) with per-line errors.

The readers decode each line on its own, so one line that is not valid UTF-8
becomes one problem instead of an exception that ends the whole feed.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from .records import FeedProblem

__all__ = ["decoded_lines", "read_delimited"]


def decoded_lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """Yield ``(line_number, text, error)`` for each line of a UTF-8 file.

    Line numbers start at 1, and ``text`` keeps its line ending. A UTF-8 byte
    order mark at the start of the file is removed. For a line that is not
    valid UTF-8, ``error`` describes the first bad byte and ``text`` has the
    bad bytes replaced by U+FFFD. Otherwise ``error`` is None.
    """
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError as error:
                reason = f"line is not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})"
                yield number, raw.decode("utf-8", "replace"), reason


def read_delimited(
    path: Path,
    *,
    delimiter: str,
    required_columns: Sequence[str],
) -> Iterator[tuple[int, dict[str, str]] | FeedProblem]:
    """Read a delimited text file with a header line.

    Yields ``(line, record)`` for each data row, where ``record`` maps the
    lower-case column names to the field values and ``line`` is the row's first
    line. Rows with the wrong number of fields, invalid UTF-8 or a CSV syntax
    error become FeedProblems, and reading continues with the next row. Blank
    lines are skipped. A missing header or missing required columns yield one
    FeedProblem and stop the reader.
    """
    source = str(path)
    invalid_lines: dict[int, str] = {}

    def text_lines() -> Iterator[str]:
        for number, text, error in decoded_lines(path):
            if error is not None:
                invalid_lines[number] = error
            yield text

    reader = csv.reader(text_lines(), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        yield FeedProblem(source, 1, "header line is missing", "rest of file skipped")
        return

    columns = [name.strip().lower() for name in header]
    missing = [name for name in required_columns if name not in columns]
    if missing:
        yield FeedProblem(
            source,
            1,
            f"header has no column {', '.join(repr(name) for name in missing)} "
            f"(header columns: {', '.join(columns)})",
            "rest of file skipped",
        )
        return

    last_line = reader.line_num
    while True:
        first_line = last_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            last_line = reader.line_num
            yield FeedProblem(source, first_line, f"row is not valid CSV ({error})")
            continue
        last_line = reader.line_num

        bad_lines = [number for number in range(first_line, last_line + 1) if number in invalid_lines]
        if bad_lines:
            yield FeedProblem(source, bad_lines[0], invalid_lines[bad_lines[0]])
            continue
        if not fields:
            continue
        if len(fields) != len(columns):
            reason = f"row has {len(fields)} fields, expected {len(columns)}"
            if last_line > first_line:
                reason += (
                    f" (lines {first_line}-{last_line} were read as one row, "
                    "so a quoted field may be missing its closing quote)"
                )
            yield FeedProblem(source, first_line, reason)
            continue
        yield first_line, dict(zip(columns, fields))

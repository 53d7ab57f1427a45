"""Reader for Google-Shopping-style RSS 2.0 feeds with the ``g:`` namespace.

Each ``<item>`` has ``g:id``, ``g:title``, ``g:link``, ``g:price`` ("59.99 EUR"),
``g:image_link``, ``g:product_type`` ("Games > PlayStation 4"),
``g:availability``, ``g:condition`` and, when known, ``g:gtin``. Plain RSS
``title`` and ``link`` elements are used when the ``g:`` ones are missing.

The file is parsed with defusedxml, which rejects entity declarations and
external entity references, so entity-expansion ("billion laughs") and XXE
inputs end the read with a FeedProblem. Items are streamed and cleared after
use, so memory does not grow with the number of items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from .detect import GOOGLE_NAMESPACE
from .records import FeedProblem, FeedRow, build_row

__all__ = ["read_shopping_rss"]

_G = "{" + GOOGLE_NAMESPACE + "}"

# Google Shopping availability values, in the old spelling with spaces and the
# current one with underscores. Pre-orders and back-orders are not in stock.
_AVAILABILITY = {
    "in stock": True,
    "in_stock": True,
    "available for order": True,
    "out of stock": False,
    "out_of_stock": False,
    "preorder": False,
    "pre-order": False,
    "backorder": False,
}


class _ItemLineRecorder:
    """Tree-builder target that records the line where each ``<item>`` starts.

    expat calls ``start`` while it reads the start tag, so the parser's current
    line is exact at that moment. The items are handled in document order, so a
    queue pairs each line with its item.
    """

    def __init__(self) -> None:
        self._builder = TreeBuilder()
        self.expat = None
        self.item_lines: deque[int] = deque()

    def start(self, tag: str, attrib: dict[str, str]) -> Element:
        if tag == "item":
            self.item_lines.append(self.expat.CurrentLineNumber)
        return self._builder.start(tag, attrib)

    def end(self, tag: str) -> Element:
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def close(self) -> Element:
        return self._builder.close()


def _child_text(item: Element, *tags: str) -> str | None:
    """Return the text of the first of ``tags`` that the item has."""
    for tag in tags:
        child = item.find(tag)
        if child is not None and child.text is not None:
            return child.text
    return None


def _item_row(path: Path, line: int, item: Element) -> FeedRow | FeedProblem:
    availability = (_child_text(item, _G + "availability") or "").strip().lower()
    return build_row(
        shop=path.stem,
        source_file=str(path),
        line=line,
        product_id=_child_text(item, _G + "id", "guid"),
        title=_child_text(item, _G + "title", "title"),
        platform_raw=_child_text(item, _G + "product_type"),
        edition_text=None,
        price_text=_child_text(item, _G + "price"),
        currency=None,
        url=_child_text(item, _G + "link", "link"),
        image_ref=_child_text(item, _G + "image_link"),
        in_stock=_AVAILABILITY.get(availability),
        gtin=_child_text(item, _G + "gtin"),
    )


def read_shopping_rss(path: Path) -> Iterator[FeedRow | FeedProblem]:
    """Stream the listings of a Google Shopping RSS feed.

    ``platform_raw`` is the whole ``g:product_type`` path, which
    normalise.platform_family() reads from the last segment. An XML syntax
    error, an entity declaration or an external entity reference yields one
    FeedProblem and ends the read. Items before that point have already been
    yielded.
    """
    path = Path(path)
    source = str(path)
    recorder = _ItemLineRecorder()
    parser = DefusedXMLParser(target=recorder)
    recorder.expat = parser.parser

    with path.open("rb") as stream:
        try:
            parent: Element | None = None
            for event, element in iterparse(stream, events=("start", "end"), parser=parser):
                if event == "start":
                    if element.tag == "channel":
                        parent = element
                    continue
                if element.tag != "item":
                    continue
                yield _item_row(path, recorder.item_lines.popleft(), element)
                element.clear()
                if parent is not None:
                    parent.remove(element)
        except EntitiesForbidden as error:
            line = recorder.expat.CurrentLineNumber
            reason = f"XML declares the entity {error.name!r}, and entity declarations are rejected"
            yield FeedProblem(source, line, reason, "rest of file skipped")
        except ExternalReferenceForbidden as error:
            line = recorder.expat.CurrentLineNumber
            reason = f"XML refers to the external entity {error.sysid!r}, and external entities are rejected"
            yield FeedProblem(source, line, reason, "rest of file skipped")
        except ParseError as error:
            line = error.position[0]
            yield FeedProblem(source, line, f"XML is not well-formed ({error.msg})", "rest of file skipped")

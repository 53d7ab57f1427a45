"""Tests for the feed readers, on the sample catalogue and on broken inputs.

The sample catalogue comes from the sample_catalogue fixture in conftest.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from coverpick.catalogue.feeds import (
    FeedFormatError,
    FeedProblem,
    FeedRow,
    detect_format,
    iter_feed_files,
    read_feed,
)
from coverpick.catalogue.feeds.json_api import read_json_api


def split(items):
    rows = [item for item in items if isinstance(item, FeedRow)]
    problems = [item for item in items if isinstance(item, FeedProblem)]
    return rows, problems


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def count_data_rows(path: Path) -> int:
    """Count the data rows of a sample feed without using the readers."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".csv":
        return sum(1 for line in text.splitlines()[1:] if line.strip())
    if path.suffix == ".jsonl":
        return sum(1 for line in text.splitlines() if line.strip())
    if path.suffix == ".json":
        return len(json.loads(text)["products"])
    return text.count("<item>")


# ---------------------------------------------------------------------------
# Sample feeds
# ---------------------------------------------------------------------------

SAMPLE_FEEDS = [
    ("pixelcrate.csv", "affiliate_csv", 199),
    ("boxhaus.json", "json_api", 162),
    ("lootlane.jsonl", "scraped_jsonl", 170),
    ("consolecorner.xml", "shopping_rss", 182),
    ("quickkeys.csv", "semicolon_csv", 166),
]


@pytest.mark.parametrize(("name", "expected_format", "expected_rows"), SAMPLE_FEEDS)
def test_sample_feed_reads_every_row(sample_catalogue, name, expected_format, expected_rows):
    path = sample_catalogue / "feeds" / name
    rows, problems = split(list(read_feed(path)))

    assert detect_format(path) == expected_format
    assert problems == []
    assert len(rows) == expected_rows
    assert len(rows) + len(problems) == count_data_rows(path)
    assert {row.shop for row in rows} == {path.stem}
    assert len({row.product_id for row in rows}) == len(rows)


@pytest.mark.parametrize(("name", "expected_format", "expected_rows"), SAMPLE_FEEDS)
def test_sample_feed_fields_complete(sample_catalogue, name, expected_format, expected_rows):
    path = sample_catalogue / "feeds" / name
    rows, _problems = split(list(read_feed(path)))

    for row in rows:
        assert row.title, row
        assert row.platform_raw, row
        assert row.price is not None and row.price > 0, row
        assert row.currency in {"EUR", "GBP", "USD"}, row
        assert row.image_ref and row.image_ref.startswith(f"images/{path.stem}/"), row
        assert (sample_catalogue / row.image_ref).is_file(), row
        assert row.source_file == str(path)


@pytest.mark.parametrize(("name", "expected_format", "expected_rows"), SAMPLE_FEEDS)
def test_sample_feed_lines_point_at_item(sample_catalogue, name, expected_format, expected_rows):
    path = sample_catalogue / "feeds" / name
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows, _problems = split(list(read_feed(path)))

    for row in rows:
        text = lines[row.line - 1]
        if expected_format == "shopping_rss":
            assert text.strip() == "<item>", row
            assert row.product_id in lines[row.line], row
        elif expected_format == "json_api":
            assert text.strip() == "{", row
            assert row.product_id in lines[row.line], row
        else:
            assert row.product_id in text, row


def test_sample_product_ids_match_truth(sample_catalogue):
    root = sample_catalogue
    truth = [json.loads(line) for line in (root / "truth.jsonl").read_text().splitlines() if line.strip()]
    expected = {(item["shop"], item["product_id"]) for item in truth}

    read = set()
    for path in iter_feed_files(root / "feeds"):
        rows, _problems = split(list(read_feed(path)))
        read.update((row.shop, row.product_id) for row in rows)

    assert read == expected


def test_affiliate_csv_first_row_fields(sample_catalogue):
    path = sample_catalogue / "feeds" / "pixelcrate.csv"
    row = next(iter(read_feed(path)))

    assert row == FeedRow(
        shop="pixelcrate",
        product_id="3947649673",
        title="Dead Rising 2",
        platform_raw="PS3",
        edition_text="Day One Edition",
        price=Decimal("18.99"),
        currency="GBP",
        url="https://www.pixelcrate.example/p/3947649673?utm_source=aff&awc=6fc0d05088",
        image_ref="images/pixelcrate/0121.jpg",
        in_stock=True,
        gtin="0872778924617",
        source_file=str(path),
        line=2,
    )


def test_json_api_first_row_fields(sample_catalogue):
    path = sample_catalogue / "feeds" / "boxhaus.json"
    row = next(iter(read_feed(path)))

    assert row.product_id == "BH-509871-WIIU"
    assert row.title == "Zero: Nuregarasu no Miko - Standard Edition"
    assert row.platform_raw == "Nintendo Wii U"
    assert row.edition_text == "Classics"
    assert row.price == Decimal("18.49")
    assert row.currency == "EUR"
    assert row.image_ref == "images/boxhaus/0118.jpg"
    assert row.url.startswith("https://www.boxhaus.example/")
    assert row.line == 4


def test_scraped_jsonl_first_row_fields(sample_catalogue):
    path = sample_catalogue / "feeds" / "lootlane.jsonl"
    row = next(iter(read_feed(path)))

    expected_url = "https://www.lootlane.example/products/castlevania-lords-of-shadow-playstation-3-10381"
    assert row.product_id == expected_url
    assert row.url == row.product_id
    assert row.title == "Castlevania - Lords of Shadow"
    assert row.platform_raw == "PlayStation 3"
    assert row.price == Decimal("15.95")
    assert row.currency == "EUR"
    assert row.edition_text is None
    assert row.line == 1


def test_shopping_rss_first_row_fields(sample_catalogue):
    path = sample_catalogue / "feeds" / "consolecorner.xml"
    row = next(iter(read_feed(path)))

    assert row.product_id == "CC-729497"
    assert row.title == "Yesterday"
    assert row.platform_raw == "Games > Retro > X68000"
    assert row.price == Decimal("94.95")
    assert row.currency == "EUR"
    assert row.in_stock is True
    assert row.gtin == "8045142420646"
    assert row.url == "https://www.consolecorner.example/item/CC-729497"
    assert row.line == 7


def test_semicolon_csv_first_row_fields(sample_catalogue):
    path = sample_catalogue / "feeds" / "quickkeys.csv"
    row = next(iter(read_feed(path)))

    assert row.product_id == "936632"
    assert row.title == "jan jaka jan"
    assert row.platform_raw == "Sharp X68000"
    assert row.price == Decimal("71.99")
    assert row.currency == "GBP"
    assert row.url is None
    assert row.line == 2


# ---------------------------------------------------------------------------
# Format detection and file listing
# ---------------------------------------------------------------------------


def test_detect_semicolon_header_in_csv(tmp_path):
    path = write(tmp_path / "shop.csv", "id;name;system;price;currency;image\n")
    assert detect_format(path) == "semicolon_csv"


def test_detect_comma_header_with_bom(tmp_path):
    path = write(tmp_path / "shop.csv", b"\xef\xbb\xbfaw_product_id,product_name\n")
    assert detect_format(path) == "affiliate_csv"


@pytest.mark.parametrize(
    ("name", "content", "expected_message"),
    [
        ("shop.txt", "a,b\n", "extension '.txt'"),
        ("shop", "a,b\n", "no extension"),
        ("shop.csv", "", "empty"),
        ("shop.csv", "just-one-column\n", "neither commas nor semicolons"),
        ("shop.json", '{"items": []}', '"products" array'),
        ("shop.jsonl", "[1, 2]\n", "not a JSON object"),
        ("shop.xml", "<rss><channel/></rss>", "http://base.google.com/ns/1.0"),
    ],
)
def test_detect_rejects_unknown_format(tmp_path, name, content, expected_message):
    path = write(tmp_path / name, content)

    with pytest.raises(FeedFormatError) as raised:
        detect_format(path)

    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert str(path) in message
    assert expected_message in message
    for format_name in ("affiliate_csv", "json_api", "scraped_jsonl", "shopping_rss", "semicolon_csv"):
        assert format_name in message


def test_read_feed_raises_before_reading(tmp_path):
    path = write(tmp_path / "shop.txt", "a,b\n")
    with pytest.raises(FeedFormatError):
        read_feed(path)


def test_iter_feed_files_sorted_without_hidden(tmp_path):
    for name in ("b.csv", "a.json", ".hidden.csv", "c.xml"):
        write(tmp_path / name, "x")
    (tmp_path / "subdir").mkdir()

    assert [path.name for path in iter_feed_files(tmp_path)] == ["a.json", "b.csv", "c.xml"]


def test_feed_problem_str_names_place():
    problem = FeedProblem("feeds/x.csv", 12, "price 'abc' is not a number")
    assert str(problem) == "feeds/x.csv line 12: price 'abc' is not a number; row skipped"


# ---------------------------------------------------------------------------
# Broken CSV
# ---------------------------------------------------------------------------

AFFILIATE_HEADER = (
    "aw_product_id,product_name,merchant_category,platform,edition,search_price,"
    "currency,merchant_image_url,ean,in_stock,deep_link\n"
)


def affiliate_line(product_id="1", title="Doom", price="9.99", currency="GBP", stock="1"):
    return (
        f"{product_id},{title},Video Games > PC,PC,Standard,{price},{currency},"
        f"img.jpg,,{stock},https://x.example/p\n"
    )


def test_affiliate_csv_broken_rows_reported(tmp_path):
    content = (
        AFFILIATE_HEADER
        + affiliate_line("1")
        + "2,Too few fields,PC\n"
        + affiliate_line("3", price="abc")
        + affiliate_line("", title="No id")
        + affiliate_line("5", title="")
        + affiliate_line("6", title="Last good row")
    )
    path = write(tmp_path / "shop.csv", content)

    rows, problems = split(list(read_feed(path)))

    assert [row.product_id for row in rows] == ["1", "6"]
    assert [problem.line for problem in problems] == [3, 4, 5, 6]
    assert problems[0].reason == "row has 3 fields, expected 11"
    assert problems[1].reason == "price 'abc' is not a number (product '3')"
    assert problems[2].reason == "product id is missing"
    assert problems[3].reason == "title of product '5' is missing"
    assert str(problems[1]) == f"{path} line 4: price 'abc' is not a number (product '3'); row skipped"


def test_affiliate_csv_missing_price_allowed(tmp_path):
    path = write(tmp_path / "shop.csv", AFFILIATE_HEADER + affiliate_line("1", price=""))
    rows, problems = split(list(read_feed(path)))

    assert problems == []
    assert rows[0].price is None
    assert rows[0].currency == "GBP"


def test_affiliate_csv_stock_flags(tmp_path):
    content = (
        AFFILIATE_HEADER
        + affiliate_line("1", stock="1")
        + affiliate_line("2", stock="0")
        + affiliate_line("3", stock="")
    )
    rows, _problems = split(list(read_feed(write(tmp_path / "shop.csv", content))))

    assert [row.in_stock for row in rows] == [True, False, None]


def test_affiliate_csv_quoted_comma_in_title(tmp_path):
    path = write(tmp_path / "shop.csv", AFFILIATE_HEADER + affiliate_line("1", title='"Rock, Paper"'))
    rows, problems = split(list(read_feed(path)))

    assert problems == []
    assert rows[0].title == "Rock, Paper"


def test_csv_currency_conflict_reported(tmp_path):
    content = AFFILIATE_HEADER + affiliate_line("1", price="£5.00", currency="EUR")
    path = write(tmp_path / "shop.csv", content)
    rows, problems = split(list(read_feed(path)))

    assert rows == []
    assert problems[0].reason == "price '£5.00' is in GBP but the currency field of product '1' is EUR"


def test_csv_invalid_currency_reported(tmp_path):
    path = write(tmp_path / "shop.csv", AFFILIATE_HEADER + affiliate_line("1", currency="euro"))
    _rows, problems = split(list(read_feed(path)))

    assert problems[0].reason == "currency 'euro' of product '1' is not a 3-letter ISO 4217 code"


def test_csv_missing_column_stops_reader(tmp_path):
    path = write(tmp_path / "shop.csv", "aw_product_id,product_name\n1,Doom\n")
    rows, problems = split(list(read_feed(path)))

    assert rows == []
    assert len(problems) == 1
    assert "header has no column 'platform', 'search_price', 'currency'" in problems[0].reason
    assert problems[0].outcome == "rest of file skipped"


def test_semicolon_csv_broken_rows_reported(tmp_path):
    content = (
        b"\xef\xbb\xbfid;name;system;price;currency;image\r\n"
        b"1;A;PS3;18,99;EUR;a.jpg\r\n"
        b"2;B\xff;PS3;1,00;EUR;b.jpg\r\n"
        b"\r\n"
        b'3;"Unclosed;PS3;1,00;EUR;c.jpg\r\n'
        b"4;D;PS3;1,00;EUR;d.jpg\r\n"
    )
    path = write(tmp_path / "shop.csv", content)

    rows, problems = split(list(read_feed(path)))

    assert [row.product_id for row in rows] == ["1"]
    assert rows[0].price == Decimal("18.99")
    assert [problem.line for problem in problems] == [3, 5]
    assert problems[0].reason == "line is not valid UTF-8 (byte 0xff at offset 3)"
    assert "lines 5-6 were read as one row" in problems[1].reason


def test_semicolon_csv_decimal_comma_thousands(tmp_path):
    path = write(tmp_path / "shop.csv", "id;name;system;price;currency;image\n1;A;PS3;1.234,50;eur;a.jpg\n")
    rows, _problems = split(list(read_feed(path)))

    assert rows[0].price == Decimal("1234.50")
    assert rows[0].currency == "EUR"


def test_duplicate_product_id_reported(tmp_path):
    content = "id;name;system;price;currency;image\n1;A;PS3;1,00;EUR;a\n1;B;PS3;1,00;EUR;b\n"
    rows, problems = split(list(read_feed(write(tmp_path / "shop.csv", content))))

    assert [row.title for row in rows] == ["A"]
    assert problems[0].line == 3
    assert problems[0].reason == "product id '1' already appeared on line 2"


# ---------------------------------------------------------------------------
# Broken JSON Lines and JSON
# ---------------------------------------------------------------------------


def test_scraped_jsonl_broken_lines_reported(tmp_path):
    lines = [
        '{"url": "u1", "name": "A", "price_text": "£5", "console": "PS3", "img": "a.jpg"}',
        "{not json",
        "",
        "[1, 2]",
        '{"url": ["u4"], "name": "D"}',
        '{"url": "u5", "name": "E", "price_text": "five euros"}',
        '{"url": "u6", "name": "F", "price_text": "54,99 €"}',
    ]
    path = write(tmp_path / "shop.jsonl", "\n".join(lines) + "\n")

    rows, problems = split(list(read_feed(path)))

    assert [row.product_id for row in rows] == ["u1", "u6"]
    assert rows[0].currency == "GBP"
    assert rows[1].price == Decimal("54.99")
    assert [problem.line for problem in problems] == [2, 4, 5, 6]
    assert problems[0].reason.startswith("line is not valid JSON (")
    assert problems[1].reason == "line is not a JSON object"
    assert problems[2].reason == "field 'url' is an array, expected a string"
    assert problems[3].reason == "price 'five euros' is not a number (product 'u5')"


def test_scraped_jsonl_bom_first_line(tmp_path):
    path = write(tmp_path / "shop.jsonl", b'\xef\xbb\xbf{"url": "u1", "name": "A"}\n')
    rows, problems = split(list(read_feed(path)))

    assert problems == []
    assert rows[0].product_id == "u1"
    assert rows[0].price is None


def test_json_api_malformed_file_one_problem(tmp_path):
    path = write(tmp_path / "shop.json", '{"products": [\n{"sku": "A", "title": "x"},\n{"sku": "B"')
    items = list(read_feed(path))

    assert len(items) == 1
    assert isinstance(items[0], FeedProblem)
    assert items[0].reason.startswith("file is not valid JSON (")
    assert items[0].line == 3
    assert items[0].outcome == "file skipped"


def test_json_api_trailing_garbage_one_problem(tmp_path):
    path = write(tmp_path / "shop.json", '{"products": []} extra')
    items = list(read_feed(path))

    assert len(items) == 1
    assert "Extra data" in items[0].reason


def test_json_api_nested_products_ignored(tmp_path):
    path = write(tmp_path / "shop.json", '{"meta": {"products": [{"sku": "X"}]}, "products": []}')
    assert list(read_feed(path)) == []


@pytest.mark.parametrize(
    ("content", "expected_reason"),
    [
        ('{"products": {"sku": "A"}}', 'the document has no "products" array'),
        ('{"items": [], "count": 0, "products_v2": []}', 'the document has no "products" array'),
        ('[{"sku": "A"}]', "the document is not a JSON object"),
    ],
)
def test_json_api_products_not_array(tmp_path, content, expected_reason):
    # detect_format() already rejects these files, so call the reader directly.
    path = write(tmp_path / "shop.json", content)
    items = list(read_json_api(path))

    assert len(items) == 1
    assert items[0].reason == expected_reason
    assert items[0].outcome == "file skipped"


def test_json_api_product_variants(tmp_path):
    document = {
        "products": [
            {
                "sku": 101,
                "title": "Doom",
                "platform": {"code": "PC", "name": "Weird Store Label"},
                "price": {"amount": 9.5, "currency": "eur"},
                "images": [{"role": "back", "url": "back.jpg"}, {"role": "front", "url": "front.jpg"}],
            },
            {"sku": "B", "title": "Quake", "platform": "PC", "price": "£4.99", "images": ["only.jpg"]},
            {"sku": "C", "title": ["not", "text"]},
            "not an object",
            {"sku": "E", "title": "Bad price", "price": {"amount": "free", "currency": "EUR"}},
        ]
    }
    path = write(tmp_path / "shop.json", json.dumps(document, indent=1))

    rows, problems = split(list(read_feed(path)))

    assert rows[0].product_id == "101"
    assert rows[0].platform_raw == "PC"
    assert rows[0].price == Decimal("9.5")
    assert rows[0].currency == "EUR"
    assert rows[0].image_ref == "front.jpg"
    assert rows[1].price == Decimal("4.99")
    assert rows[1].currency == "GBP"
    assert rows[1].image_ref == "only.jpg"
    assert [problem.reason for problem in problems] == [
        "field 'title' is an array, expected a string",
        "product is not a JSON object",
        "price 'free' is not a number (product 'E')",
    ]


# ---------------------------------------------------------------------------
# Broken and hostile XML
# ---------------------------------------------------------------------------

RSS_START = '<?xml version="1.0"?>\n<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>\n'
RSS_END = "</channel></rss>\n"


def rss_item(product_id, title="Doom", price="9.99 EUR", availability="in stock"):
    return (
        f"<item><g:id>{product_id}</g:id><g:title>{title}</g:title><g:price>{price}</g:price>"
        "<g:product_type>Games &gt; PC</g:product_type>"
        f"<g:availability>{availability}</g:availability></item>\n"
    )


def test_shopping_rss_entity_bomb_rejected(tmp_path):
    bomb = (
        '<?xml version="1.0"?>\n'
        "<!DOCTYPE rss [\n"
        ' <!ENTITY a "aaaaaaaaaa">\n'
        ' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n'
        ' <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n'
        "]>\n"
        '<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>\n'
        "<item><g:id>1</g:id><g:title>&c;</g:title></item>\n"
        "</channel></rss>\n"
    )
    path = write(tmp_path / "shop.xml", bomb)

    items = list(read_feed(path))

    assert len(items) == 1
    assert isinstance(items[0], FeedProblem)
    assert items[0].reason == "XML declares the entity 'a', and entity declarations are rejected"
    assert items[0].line == 3
    assert items[0].outcome == "rest of file skipped"


def test_shopping_rss_external_entity_rejected(tmp_path):
    secret = write(tmp_path / "secret.txt", "do not read me")
    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>\n'
        "<item><g:id>1</g:id><g:title>&xxe;</g:title></item>\n"
        "</channel></rss>\n"
    )
    path = write(tmp_path / "shop.xml", xxe)

    items = list(read_feed(path))

    assert len(items) == 1
    assert isinstance(items[0], FeedProblem)
    assert "entity 'xxe'" in items[0].reason
    assert "do not read me" not in str(items[0])


def test_shopping_rss_malformed_after_good_items(tmp_path):
    content = RSS_START + rss_item("1") + "<item><g:id>2</g:id><g:title>Broken</g:price></item>\n" + RSS_END
    path = write(tmp_path / "shop.xml", content)

    rows, problems = split(list(read_feed(path)))

    assert [row.product_id for row in rows] == ["1"]
    assert len(problems) == 1
    assert problems[0].line == 4
    assert problems[0].reason.startswith("XML is not well-formed (mismatched tag")


def test_shopping_rss_item_problems_and_stock(tmp_path):
    content = (
        RSS_START
        + rss_item("1", availability="in stock")
        + rss_item("2", availability="out_of_stock")
        + rss_item("3", availability="preorder")
        + rss_item("4", availability="")
        + rss_item("5", price="ninety")
        + rss_item("6", title="")
        + RSS_END
    )
    path = write(tmp_path / "shop.xml", content)

    rows, problems = split(list(read_feed(path)))

    assert [row.in_stock for row in rows] == [True, False, False, None]
    assert [row.line for row in rows] == [3, 4, 5, 6]
    assert [problem.line for problem in problems] == [7, 8]
    assert problems[0].reason == "price 'ninety' is not a number (product '5')"
    assert problems[1].reason == "title of product '6' is missing"


def test_shopping_rss_plain_rss_fallback(tmp_path):
    item = (
        "<item><title>Quake</title><link>https://x.example/q</link><g:id>Q1</g:id>"
        "<g:price>4.99 GBP</g:price></item>\n"
    )
    path = write(tmp_path / "shop.xml", RSS_START + item + RSS_END)

    rows, problems = split(list(read_feed(path)))

    assert problems == []
    assert rows[0].title == "Quake"
    assert rows[0].url == "https://x.example/q"
    assert rows[0].platform_raw == ""


def test_json_error_text_names_column_once():
    from coverpick.catalogue.feeds.records import json_error_text

    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads('{"name": "tab\there"}')
    assert json_error_text(caught.value) == "Invalid control character at column 14"

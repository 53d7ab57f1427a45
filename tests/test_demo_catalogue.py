"""Tests for the generated demo catalogue: determinism, feeds against truth, images and labels."""

from __future__ import annotations

import csv
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from coverpick.demo_catalogue import SHOPS, generate_catalogue

LABEL_VOCABULARY = {
    "clean",
    "3d_render",
    "deluxe_bundle",
    "contents",
    "wrong_console",
    "wrong_game",
    "low_resolution",
    "multi_platform",
    "gkc",
    "ciab",
    "placeholder",
    "margins",
    "unclear",
    "bad_background",
}
# Every class except "unclear", which only a human labeller gives.
TRUTH_LABELS = LABEL_VOCABULARY - {"unclear"}
GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"
GOOGLE_PREFIX = f"{{{GOOGLE_NAMESPACE}}}"


def read_feeds(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Read the five feeds into shop -> rows of product_id, title, platform, image and price."""
    feeds = folder / "feeds"
    rows: dict[str, list[dict[str, str]]] = {}

    with (feeds / "pixelcrate.csv").open(encoding="utf-8", newline="") as stream:
        rows["pixelcrate"] = [
            {
                "product_id": row["aw_product_id"],
                "title": row["product_name"],
                "platform": row["platform"],
                "image": row["merchant_image_url"],
                "price": row["search_price"],
            }
            for row in csv.DictReader(stream)
        ]

    boxhaus = json.loads((feeds / "boxhaus.json").read_text(encoding="utf-8"))
    rows["boxhaus"] = [
        {
            "product_id": product["sku"],
            "title": product["title"],
            "platform": product["platform"]["name"],
            "image": product["images"][0]["url"],
            "price": product["price"]["amount"],
        }
        for product in boxhaus["products"]
    ]

    lootlane_lines = (feeds / "lootlane.jsonl").read_text(encoding="utf-8").splitlines()
    rows["lootlane"] = [
        {
            "product_id": record["url"],
            "title": record["name"],
            "platform": record["console"],
            "image": record["img"],
            "price": record["price_text"],
        }
        for record in map(json.loads, lootlane_lines)
    ]

    channel = ET.parse(feeds / "consolecorner.xml").getroot().find("channel")
    rows["consolecorner"] = [
        {
            "product_id": item.findtext(f"{GOOGLE_PREFIX}id"),
            "title": item.findtext(f"{GOOGLE_PREFIX}title"),
            "platform": item.findtext(f"{GOOGLE_PREFIX}product_type"),
            "image": item.findtext(f"{GOOGLE_PREFIX}image_link"),
            "price": item.findtext(f"{GOOGLE_PREFIX}price"),
        }
        for item in channel.findall("item")
    ]

    with (feeds / "quickkeys.csv").open(encoding="utf-8", newline="") as stream:
        rows["quickkeys"] = [
            {
                "product_id": row["id"],
                "title": row["name"],
                "platform": row["system"],
                "image": row["image"],
                "price": row["price"],
            }
            for row in csv.DictReader(stream, delimiter=";")
        ]
    return rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """The default demo catalogue (40 games, seed 0), its returned counts and the CPU seconds it took."""
    folder = tmp_path_factory.mktemp("demo") / "catalogue"
    started = time.process_time()
    counts = generate_catalogue(folder)
    cpu_seconds = time.process_time() - started
    return folder, counts, cpu_seconds


@pytest.fixture(scope="module")
def truth(catalogue) -> dict[tuple[str, str], dict]:
    folder, _, _ = catalogue
    return {(row["shop"], row["product_id"]): row for row in read_jsonl(folder / "truth.jsonl")}


@pytest.fixture(scope="module")
def label_rows(catalogue) -> list[dict]:
    folder, _, _ = catalogue
    return read_jsonl(folder / "labels.jsonl")


# ---------------------------------------------------------------------------
# Determinism and arguments
# ---------------------------------------------------------------------------


def test_same_seed_gives_same_files(tmp_path):
    first = generate_catalogue(tmp_path / "first", games=6, seed=11)
    second = generate_catalogue(tmp_path / "second", games=6, seed=11)
    assert first == second
    first_files = folder_bytes(tmp_path / "first")
    second_files = folder_bytes(tmp_path / "second")
    assert sorted(first_files) == sorted(second_files)
    for name in first_files:
        assert first_files[name] == second_files[name], f"{name} differs between two runs with the same seed"


def test_other_seed_gives_other_feeds(tmp_path):
    generate_catalogue(tmp_path / "first", games=6, seed=11)
    generate_catalogue(tmp_path / "second", games=6, seed=12)
    for feed in ("pixelcrate.csv", "boxhaus.json", "lootlane.jsonl", "consolecorner.xml", "quickkeys.csv"):
        first = (tmp_path / "first" / "feeds" / feed).read_bytes()
        second = (tmp_path / "second" / "feeds" / feed).read_bytes()
        assert first != second, feed


def test_single_game_catalogue_is_consistent(tmp_path):
    counts = generate_catalogue(tmp_path / "one", games=1, seed=3)
    rows = read_jsonl(tmp_path / "one" / "truth.jsonl")
    assert counts["games"] == 1
    assert len(rows) == counts["listings"]
    assert all("wrong_game" not in row["labels"] for row in rows)


def test_rejects_non_empty_target(tmp_path):
    (tmp_path / "old.txt").write_text("an older file", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        generate_catalogue(tmp_path, games=2)


def test_accepts_existing_empty_target(tmp_path):
    counts = generate_catalogue(tmp_path, games=2, seed=1)
    assert (tmp_path / "truth.jsonl").is_file()
    assert counts["games"] == 2


def test_rejects_zero_games(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        generate_catalogue(tmp_path / "none", games=0)


# ---------------------------------------------------------------------------
# Size, speed and counts
# ---------------------------------------------------------------------------


def test_default_catalogue_is_small_and_fast(catalogue):
    folder, _, cpu_seconds = catalogue
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    assert size < 5 * 1024 * 1024, f"catalogue is {size} bytes"
    # CPU time rather than wall time, so that a busy machine does not fail the test.
    assert cpu_seconds < 10, f"generation took {cpu_seconds:.1f} s of CPU time"


def test_truth_lines_match_feed_rows(catalogue, truth):
    folder, counts, _ = catalogue
    feeds = read_feeds(folder)
    truth_lines = (folder / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    feed_rows = sum(len(rows) for rows in feeds.values())
    assert len(truth_lines) == feed_rows
    assert counts["listings"] == feed_rows
    assert len(truth) == feed_rows, "two truth lines share a shop and product id"
    for shop in SHOPS:
        feed_ids = {row["product_id"] for row in feeds[shop]}
        truth_ids = {product_id for truth_shop, product_id in truth if truth_shop == shop}
        assert len(feed_ids) == len(feeds[shop]), f"{shop} repeats a product id"
        assert feed_ids == truth_ids, shop
        assert counts["shops"][shop] == len(feeds[shop])


def test_counts_match_truth(catalogue, truth):
    _, counts, _ = catalogue
    rows = list(truth.values())
    label_counts = Counter(label for row in rows for label in row["labels"])
    assert counts["games"] == 40
    assert counts["games"] == len({row["game_id"] for row in rows})
    assert counts["editions"] == len({row["edition_id"] for row in rows})
    assert counts["labels"] == {label: label_counts[label] for label in counts["labels"]}
    assert set(counts["labels"]) == TRUTH_LABELS


def test_feed_images_match_truth(catalogue, truth):
    folder, _, _ = catalogue
    for shop, rows in read_feeds(folder).items():
        for row in rows:
            assert row["image"] == truth[(shop, row["product_id"])]["image"]
            assert re.fullmatch(rf"images/{shop}/\d{{4}}\.(jpg|png)", row["image"]), row["image"]


# ---------------------------------------------------------------------------
# Feed formats
# ---------------------------------------------------------------------------


def test_csv_headers_match_importer_columns(catalogue):
    folder, _, _ = catalogue
    pixelcrate_header = (folder / "feeds" / "pixelcrate.csv").read_text(encoding="utf-8").splitlines()[0]
    quickkeys_header = (folder / "feeds" / "quickkeys.csv").read_text(encoding="utf-8").splitlines()[0]
    assert pixelcrate_header == (
        "aw_product_id,product_name,merchant_category,platform,edition,search_price,currency,"
        "merchant_image_url,ean,in_stock,deep_link"
    )
    assert quickkeys_header == "id;name;system;price;currency;image"


def test_prices_use_each_shops_notation(catalogue):
    feeds = read_feeds(catalogue[0])
    patterns = {
        "pixelcrate": r"\d+\.\d\d",
        "boxhaus": r"\d+\.\d\d",
        "lootlane": r"£\d+\.\d\d|\d+,\d\d €",
        "consolecorner": r"\d+\.\d\d EUR",
        "quickkeys": r"\d+,\d\d",
    }
    for shop, pattern in patterns.items():
        for row in feeds[shop]:
            assert re.fullmatch(pattern, row["price"]), f"{shop}: {row['price']!r}"


def test_boxhaus_products_have_expected_fields(catalogue):
    dump = json.loads((catalogue[0] / "feeds" / "boxhaus.json").read_text(encoding="utf-8"))
    assert set(dump) == {"generated_at", "products"}
    for product in dump["products"]:
        assert list(product) == ["sku", "title", "platform", "edition", "price", "images", "url"]
        assert set(product["platform"]) == {"code", "name"}
        assert set(product["price"]) == {"amount", "currency"}
        assert product["images"][0]["role"] == "front"


def test_consolecorner_feed_is_google_shopping_rss(catalogue):
    text = (catalogue[0] / "feeds" / "consolecorner.xml").read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<rss xmlns:g=")
    root = ET.fromstring(text)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    for item in root.find("channel").findall("item"):
        assert item.findtext(f"{GOOGLE_PREFIX}availability") in {"in stock", "out of stock"}
        assert item.findtext(f"{GOOGLE_PREFIX}condition") == "new"
        assert item.findtext(f"{GOOGLE_PREFIX}product_type").startswith("Games > ")


def test_titles_of_one_game_vary_but_match(catalogue, truth):
    normalise = pytest.importorskip("coverpick.catalogue.normalise")
    keys: dict[str, set[str]] = defaultdict(set)
    spellings: dict[str, set[str]] = defaultdict(set)
    for shop, rows in read_feeds(catalogue[0]).items():
        for row in rows:
            reference = truth[(shop, row["product_id"])]
            keys[reference["game_id"]].add(normalise.game_key(row["title"]))
            spellings[reference["game_id"]].add(row["title"])
            family, _code = normalise.platform_family(row["platform"])
            assert family == reference["family"], row["platform"]
    for game_id, game_keys in keys.items():
        assert len(game_keys) == 1, f"{game_id} titles give several keys: {sorted(game_keys)}"
    all_keys = [next(iter(game_keys)) for game_keys in keys.values()]
    assert len(set(all_keys)) == len(all_keys), "two games share a key"
    varied = sum(1 for titles in spellings.values() if len(titles) > 1)
    assert varied >= len(spellings) // 4, "too few games are written differently by different shops"


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def test_every_image_opens(catalogue, truth):
    folder, _, _ = catalogue
    for row in truth.values():
        path = folder / row["image"]
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            assert image.format == ("PNG" if path.suffix == ".png" else "JPEG"), row["image"]


def test_no_unreferenced_images(catalogue, truth):
    folder, _, _ = catalogue
    on_disk = {str(path.relative_to(folder)) for path in (folder / "images").rglob("*") if path.is_file()}
    assert on_disk == {row["image"] for row in truth.values()}


def test_image_sizes_follow_low_resolution_label(catalogue, truth):
    folder, _, _ = catalogue
    for row in truth.values():
        with Image.open(folder / row["image"]) as image:
            width, height = image.size
        if "low_resolution" in row["labels"]:
            assert max(width, height) <= 120, f"{row['image']} is {width}x{height}"
        else:
            assert min(width, height) >= 150, f"{row['image']} is {width}x{height}"


def test_clean_covers_are_portrait(catalogue, truth):
    folder, _, _ = catalogue
    for row in truth.values():
        if row["labels"] != ["clean"]:
            continue
        with Image.open(folder / row["image"]) as image:
            aspect = image.width / image.height
        assert 0.65 <= aspect <= 0.95, f"{row['image']} has aspect {aspect:.2f}"


# ---------------------------------------------------------------------------
# Truth and labels
# ---------------------------------------------------------------------------


def test_truth_rows_have_expected_fields(truth):
    expected = [
        "shop",
        "product_id",
        "image",
        "game_id",
        "game_title",
        "edition_id",
        "platform",
        "family",
        "image_family",
        "shown_game_id",
        "labels",
    ]
    for row in truth.values():
        assert list(row) == expected
        assert row["edition_id"] == f"{row['game_id']}-{row['platform']}"
        assert row["family"] in {"nintendo", "sony", "xbox", "pc"}


def test_truth_labels_cover_every_class(truth):
    rows = list(truth.values())
    present = {label for row in rows for label in row["labels"]}
    assert present == TRUTH_LABELS
    clean_share = sum(1 for row in rows if "clean" in row["labels"]) / len(rows)
    assert 0.4 <= clean_share <= 0.6, f"clean share is {clean_share:.2f}"


def test_truth_grouping_follows_labels(truth):
    for row in truth.values():
        labels = set(row["labels"])
        assert labels <= TRUTH_LABELS, row["labels"]
        if "wrong_game" in labels:
            assert row["shown_game_id"] != row["game_id"]
        else:
            assert row["shown_game_id"] == row["game_id"]
        if "wrong_console" in labels:
            assert row["image_family"] not in (None, row["family"])
        elif "placeholder" in labels:
            assert row["image_family"] in (None, row["family"])
        else:
            assert row["image_family"] == row["family"]


def test_label_rows_use_vocabulary(label_rows):
    for row in label_rows:
        if row["source"] == "manual-train":
            assert row["labels"], row
            for label in row["labels"]:
                assert label in LABEL_VOCABULARY, label
        elif row["source"] == "review":
            assert row["predicted"] in LABEL_VOCABULARY, row["predicted"]


def test_label_rows_have_expected_format(label_rows):
    keys_by_source = {
        "manual-train": ["shop", "product_id", "labels", "source"],
        "review": ["shop", "product_id", "source", "predicted", "verdict"],
        "manual-pin": ["source", "shop", "product_id"],
    }
    for row in label_rows:
        assert list(row) == keys_by_source[row["source"]], row
        if row["source"] == "review":
            assert row["verdict"] in {"confirmed", "rejected"}


def test_label_rows_agree_with_truth(label_rows, truth):
    sources = Counter(row["source"] for row in label_rows)
    assert abs(sources["manual-train"] / len(truth) - 0.7) < 0.02
    assert sources["review"] >= 1
    assert 1 <= sources["manual-pin"] <= 2
    for row in label_rows:
        reference = truth[(row["shop"], row["product_id"])]
        if row["source"] == "manual-train":
            assert row["labels"] == reference["labels"]
        elif row["source"] == "review":
            expected = "confirmed" if row["predicted"] in reference["labels"] else "rejected"
            assert row["verdict"] == expected, row
        else:
            assert reference["labels"] == ["clean"], row

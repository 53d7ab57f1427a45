"""Warnings and errors of `coverpick import` on small catalogues built under tmp_path."""

import io
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from coverpick.catalogue import generation
from coverpick.catalogue.importer import IMAGE_PROBLEMS_SHOWN, ImageProblem, import_catalogue, listing_lines
from coverpick.catalogue.models import Listing, Shop
from coverpick.catalogue.normalise import is_iso_currency

pytestmark = pytest.mark.django_db

HEADER = "id;name;system;price;currency;image\n"


@pytest.fixture(autouse=True)
def _no_configured_preference(monkeypatch):
    monkeypatch.delenv("COVERPICK_SHOP_PREFERENCE", raising=False)


def write_feed(catalogue, name: str, rows: list[str]):
    feeds = catalogue / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / name).write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")


def run_import(catalogue, **options):
    """Import with warnings collected; return (summary, warnings)."""
    warnings: list[str] = []
    summary = import_catalogue(catalogue, warn=warnings.append, **options)
    return summary, warnings


def run_command(*args):
    """Run `coverpick import --quiet`; return (stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import", *[str(arg) for arg in args], "--quiet", stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_unknown_feed_files_skipped(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "feeds" / "notes.txt").write_text("remember the milk\n")
    (tmp_path / "feeds" / "plain.xml").write_text("<rss><channel><item/></channel></rss>\n")
    write_feed(tmp_path, "zulu.csv", ["1;Zulu Game;PS4;10,00;EUR;"])

    summary, warnings = run_import(tmp_path)

    assert summary.feed_files_skipped == 2
    assert summary.feed_files_read == 2
    assert set(Shop.objects.values_list("code", flat=True)) == {"alpha", "zulu"}
    assert Listing.objects.count() == 2
    notes_warnings = [message for message in warnings if "notes.txt" in message]
    assert len(notes_warnings) == 1
    assert "extension '.txt' is not a known feed extension" in notes_warnings[0]
    assert "skipped" in notes_warnings[0]
    assert any("plain.xml" in message and "namespace" in message for message in warnings)
    assert "Feed files skipped: 2 of 4" in summary.lines()


def test_unknown_feed_file_command_exits_normally(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "feeds" / "notes.txt").write_text("remember the milk\n")

    stdout, stderr = run_command(tmp_path)

    assert "notes.txt" in stderr
    assert "Feed files skipped: 1 of 2" in stdout
    assert not Shop.objects.filter(code="notes").exists()


def test_unreadable_json_feed_creates_no_shop(tmp_path):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "broken.json").write_text('{"products": [ {"id": ')

    summary, warnings = run_import(tmp_path)

    assert not Shop.objects.filter(code="broken").exists()
    assert summary.feed_files_skipped == 1
    assert summary.rows_read == 0
    assert any("broken.json" in message for message in warnings)


def test_feed_of_refused_rows_creates_no_shop(tmp_path):
    write_feed(tmp_path, "empty.csv", [";No Id Game;PS4;10,00;EUR;"])

    summary, _warnings = run_import(tmp_path)

    assert summary.rows_refused == 1
    assert not Shop.objects.filter(code="empty").exists()


def test_skipped_file_keeps_stored_listings(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    run_import(tmp_path)
    (tmp_path / "feeds" / "alpha.csv").write_text("not a feed\n")

    summary, _warnings = run_import(tmp_path)

    assert summary.feed_files_skipped == 1
    assert Listing.objects.filter(shop__code="alpha", product_id="1").exists()


def test_reimport_updates_without_duplicates(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;PS4;12,00;EUR;"])
    (tmp_path / "feeds" / "notes.txt").write_text("x\n")
    run_import(tmp_path)

    summary, _warnings = run_import(tmp_path)

    assert summary.listings_created == 0
    assert (summary.listings_updated, summary.listings_unchanged) == (0, 2)
    assert Listing.objects.count() == 2
    assert Shop.objects.count() == 1


def test_unchanged_reimport_keeps_generation(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;PS4;12,00;EUR;"])
    run_import(tmp_path)
    before = generation.current_generation()

    run_import(tmp_path)

    assert before is not None
    assert generation.current_generation() == before


def test_reimport_rounds_price_like_database(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,9999;EUR;"])
    run_import(tmp_path)

    summary, _warnings = run_import(tmp_path)

    assert (summary.listings_updated, summary.listings_unchanged) == (0, 1)
    assert str(Listing.objects.get(product_id="1").price) == "11.00"


def test_reimport_writes_only_changed_rows(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;PS4;12,00;EUR;"])
    run_import(tmp_path)
    stamps = dict(Listing.objects.values_list("product_id", "updated_at"))
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;PS4;11,50;EUR;"])

    summary, _warnings = run_import(tmp_path)

    assert (summary.listings_created, summary.listings_updated, summary.listings_unchanged) == (0, 1, 1)
    assert "Listings created: 0, updated: 1, unchanged: 1" in summary.lines()
    assert str(Listing.objects.get(product_id="2").price) == "11.50"
    assert Listing.objects.get(product_id="1").updated_at == stamps["1"]
    assert Listing.objects.get(product_id="2").updated_at > stamps["2"]


def test_preference_typo_warned_not_created(tmp_path, monkeypatch):
    write_feed(tmp_path, "pixelcrate.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    write_feed(tmp_path, "quickkeys.csv", ["1;Alpha Game;PS4;11,00;EUR;"])
    monkeypatch.setenv("COVERPICK_SHOP_PREFERENCE", "pixelcrate,quikkeys")

    _summary, warnings = run_import(tmp_path)

    assert not Shop.objects.filter(code="quikkeys").exists()
    assert Shop.objects.get(code="pixelcrate").preference == 0
    assert Shop.objects.get(code="quickkeys").preference == 1
    typo_warnings = [message for message in warnings if "COVERPICK_SHOP_PREFERENCE" in message]
    assert len(typo_warnings) == 1
    assert "'quikkeys'" in typo_warnings[0]
    assert "pixelcrate, quickkeys" in typo_warnings[0]


def test_preference_for_earlier_shop_applied(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    write_feed(first, "pixelcrate.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    write_feed(second, "quickkeys.csv", ["1;Alpha Game;PS4;11,00;EUR;"])
    run_import(first)
    monkeypatch.setenv("COVERPICK_SHOP_PREFERENCE", "quickkeys,pixelcrate")

    _summary, warnings = run_import(second)

    assert Shop.objects.get(code="pixelcrate").preference == 1
    assert Shop.objects.get(code="quickkeys").preference == 0
    assert not any("COVERPICK_SHOP_PREFERENCE" in message for message in warnings)


def test_preference_no_tie_with_saved_order(tmp_path, monkeypatch):
    from coverpick.catalogue.models import save_shop_order

    write_feed(tmp_path, "pixelcrate.csv", ["1;Alpha Game;PS4;10,00;EUR;images/a.jpg"])
    write_feed(tmp_path, "webshop.csv", ["1;Alpha Game;PS4;11,00;EUR;images/a.jpg"])
    run_import(tmp_path)
    # As `coverpick shops --order webshop` saves it.
    save_shop_order(["webshop"])
    monkeypatch.setenv("COVERPICK_SHOP_PREFERENCE", "pixelcrate")

    summary, _warnings = run_import(tmp_path)

    assert dict(Shop.objects.values_list("code", "preference")) == {"pixelcrate": 0, "webshop": 1}
    assert summary.games_ranked_for_shop_order == 1
    assert "COVERPICK_SHOP_PREFERENCE changed the shop order; primary covers chosen again for 1 game" in summary.lines()
    # The same order on the next import changes nothing, so nothing is re-ranked.
    assert run_import(tmp_path)[0].games_ranked_for_shop_order is None


@pytest.mark.parametrize(("variable", "expected"), [("pixelcrat", {"pixelcrate": 1, "webshop": 0}), ("webshop,pixelcrate,webshop", {"webshop": 0, "pixelcrate": 1})])
def test_preference_misspelt_or_repeated(tmp_path, monkeypatch, variable, expected):
    from coverpick.catalogue.models import save_shop_order

    write_feed(tmp_path, "pixelcrate.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    write_feed(tmp_path, "webshop.csv", ["1;Alpha Game;PS4;11,00;EUR;"])
    run_import(tmp_path)
    save_shop_order(["webshop", "pixelcrate"])
    monkeypatch.setenv("COVERPICK_SHOP_PREFERENCE", variable)

    run_import(tmp_path)

    assert dict(Shop.objects.values_list("code", "preference")) == expected


def test_no_labels_summary_says_so(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "labels.jsonl").write_text('{"shop": "alpha", "product_id": "1", "labels": ["clean"], "source": "manual-train"}\n')

    skipped = run_import(tmp_path, with_labels=False)[0].lines()
    read = run_import(tmp_path)[0].lines()

    assert skipped[-1] == "Label file: not read (--no-labels, or no labels.jsonl in the catalogue folder)"
    assert read[-2].startswith("Label rows imported: 1,")
    assert read[-1] == "Primary covers chosen again for 1 game whose labels, reviews or pins changed"


def test_image_problems_listed(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;PS4;10,00;EUR;images/missing.jpg"])

    summary, _warnings = run_import(tmp_path)
    lines = summary.lines()

    assert summary.image_errors == 2
    assert any("alpha" in line and "'1'" in line and "no image reference" in line for line in lines)
    assert any("alpha" in line and "'2'" in line and "images/missing.jpg" in line for line in lines)


def test_image_problems_capped(tmp_path):
    total = IMAGE_PROBLEMS_SHOWN + 5
    write_feed(tmp_path, "alpha.csv", [f"{number};Game {number};PS4;10,00;EUR;" for number in range(total)])

    summary, _warnings = run_import(tmp_path)
    lines = summary.lines()

    assert summary.image_errors == total
    assert sum("no image reference" in line for line in lines) == IMAGE_PROBLEMS_SHOWN
    assert any(line.strip() == "and 5 more" for line in lines)


def test_row_warning_printed_once(tmp_path, caplog):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;abc;EUR;"])

    with caplog.at_level(logging.WARNING, logger="coverpick"):
        _stdout, stderr = run_command(tmp_path)

    assert stderr.count("price 'abc' is not a number") == 1
    assert not any("price 'abc'" in record.getMessage() for record in caplog.records)


def test_row_warning_logged_without_callback(tmp_path, caplog):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;abc;EUR;"])

    with caplog.at_level(logging.WARNING, logger="coverpick"):
        import_catalogue(tmp_path)

    assert sum("price 'abc'" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.parametrize("hidden", [False, True])
def test_empty_feeds_folder_warned(tmp_path, hidden):
    (tmp_path / "feeds").mkdir()
    if hidden:
        (tmp_path / "feeds" / ".DS_Store").write_text("x")

    _stdout, stderr = run_command(tmp_path)

    assert "no feed files" in stderr.lower()
    assert str(tmp_path / "feeds") in stderr
    assert ".csv" in stderr
    assert ".jsonl" in stderr


def test_file_instead_of_folder(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    labels = tmp_path / "labels.jsonl"
    labels.write_text("")

    with pytest.raises(CommandError) as raised:
        run_command(labels)

    message = str(raised.value)
    assert "is a file, not a folder" in message
    assert "does not exist" not in message
    assert str(tmp_path) in message


def test_missing_folder_reported(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_command(tmp_path / "nowhere")


def test_label_line_invalid_json(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "labels.jsonl").write_text('{"shop": "alpha", "product_id": "1", "source": "manual-pin"}\n\n{oops\n')

    summary, warnings = run_import(tmp_path)

    assert summary.labels_imported == 1
    assert summary.label_lines_refused == 1
    label_warnings = [message for message in warnings if "labels.jsonl" in message]
    assert len(label_warnings) == 1
    assert "line 3: invalid JSON" in label_warnings[0]
    assert "column 2" in label_warnings[0]


def only_label_warning(catalogue, label_text: str) -> str:
    """Import one listing with ``label_text`` as labels.jsonl, and return the one warning about that file."""
    write_feed(catalogue, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (catalogue / "labels.jsonl").write_text(label_text)
    _summary, warnings = run_import(catalogue)
    (warning,) = [message for message in warnings if "labels.jsonl" in message]
    return warning


def test_cut_label_line_column(tmp_path):
    warning = only_label_warning(tmp_path, '{"shop": "alpha", "product_id": "1", "labels": ["clean"]\n')

    assert "at column 57)" in warning
    assert warning.endswith("; line skipped")


def test_indented_label_line_column(tmp_path):
    warning = only_label_warning(tmp_path, '    {"shop": "alpha", oops}\n')

    assert "at column 23)" in warning


def test_label_error_sentence_ends_once(tmp_path):
    warning = only_label_warning(
        tmp_path, '{"shop": "alpha", "product_id": "1", "labels": ["clean", "wrong_game"], "source": "manual-train"}\n'
    )

    assert warning.endswith(". Line skipped.")
    assert ".;" not in warning


def test_label_line_without_source(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "labels.jsonl").write_text('{"shop": "alpha", "product_id": "1", "labels": ["clean"]}\n')

    summary, warnings = run_import(tmp_path)

    assert summary.label_lines_refused == 1
    label_warnings = [message for message in warnings if "labels.jsonl" in message]
    assert len(label_warnings) == 1
    assert "line 1: missing 'source' field" in label_warnings[0]


def test_unknown_currency_warned(tmp_path):
    write_feed(
        tmp_path,
        "alpha.csv",
        ["1;Alpha Game;PS4;10,00;XYZ;", "2;Beta Game;PS4;10,00;XYZ;", "3;Gamma Game;PS4;10,00;MNT;"],
    )

    _summary, warnings = run_import(tmp_path)

    currency_warnings = [message for message in warnings if "ISO 4217" in message]
    assert len(currency_warnings) == 1
    assert "'XYZ'" in currency_warnings[0]
    assert "line 2" in currency_warnings[0]
    assert "'1'" in currency_warnings[0]
    assert "1 more row" in currency_warnings[0]
    assert Listing.objects.get(product_id="1").currency == "XYZ"
    assert Listing.objects.get(product_id="3").currency == "MNT"


@pytest.mark.parametrize(("code", "expected"), [("EUR", True), ("mnt", True), ("XAU", True), ("XYZ", False), ("HRK", False), ("EU", False)])
def test_is_iso_currency(code, expected):
    assert is_iso_currency(code) is expected


def test_price_without_currency_or_zero_warned(tmp_path):
    write_feed(
        tmp_path,
        "alpha.csv",
        ["1;Alpha Game;PS4;54.99;;", "2;Beta Game;PS4;12.00;;", "3;Gamma Game;PS4;0,00;GBP;", "4;Delta Game;PS4;;;"],
    )

    summary, warnings = run_import(tmp_path)

    assert summary.listings_created == 4
    (no_currency,) = [message for message in warnings if "without a currency" in message]
    assert "line 2: product '1' has a price without a currency" in no_currency
    assert "as does 1 more row in this file" in no_currency
    (zero,) = [message for message in warnings if "price of zero" in message]
    assert "line 4: product '3' has a price of zero." in zero
    assert Listing.objects.get(product_id="3").price == 0


def test_image_path_through_symlink_names_resolved_path(tmp_path):
    from coverpick.covers.store import CoverSourceError, load_reference

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "cover.jpg").write_bytes(b"not checked here")
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    (catalogue / "images").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CoverSourceError) as caught:
        load_reference("images/cover.jpg", catalogue)
    assert f"resolves to {outside.resolve() / 'cover.jpg'}" in str(caught.value)
    assert "symbolic link" in str(caught.value)


def test_listing_lines_count_unlisted_rows():
    first = [ImageProblem("shop", str(number), "no image reference") for number in range(3)]

    assert listing_lines(first) == [f"  shop shop, product id '{number}': no image reference" for number in range(3)]
    assert listing_lines(first, total=10)[-1] == "  and 7 more"
    assert len(listing_lines(first, total=10)) == 4


def test_row_without_platform_refused(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;;12,34;EUR;", "3;Gamma Game;  ;9,00;EUR;"])

    summary, warnings = run_import(tmp_path)

    assert summary.rows_refused == 2
    assert sorted(Listing.objects.values_list("product_id", flat=True)) == ["1"]
    assert any("line 3: missing platform: fill the row's platform" in warning for warning in warnings)
    assert any("line 4: missing platform" in warning for warning in warnings)


def test_same_shop_files_withdraw_together(tmp_path):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;"])
    (tmp_path / "feeds" / "alpha.jsonl").write_text(
        '{"url": "https://alpha.example/p/2", "name": "Beta Game", "price_text": "12,00 €", "console": "PS4", "img": ""}\n',
        encoding="utf-8",
    )
    run_import(tmp_path)

    summary, _warnings = run_import(tmp_path)

    # Each file lacks the other's product, but together they list both.
    assert summary.listings_withdrawn == 0
    assert not Listing.objects.filter(in_stock=False).exists()

    # The second file now lacks its final line break, so neither file decides what the shop dropped.
    jsonl = tmp_path / "feeds" / "alpha.jsonl"
    jsonl.write_text(jsonl.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    summary, warnings = run_import(tmp_path)

    assert summary.listings_withdrawn == 0
    assert any(
        "feed files alpha.csv, alpha.jsonl of shop alpha: alpha.jsonl: it does not end with a line break" in warning
        for warning in warnings
    )


def test_missing_image_unchanged_in_moved_catalogue(tmp_path):
    import shutil

    first = tmp_path / "monday"
    write_feed(first, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;images/missing.jpg"])
    summary, _ = run_import(first)
    assert summary.image_errors == 1
    stored = Listing.objects.get(product_id="1").cover_error
    assert stored == "image file 'images/missing.jpg' not found in the catalogue folder"

    # The same export in the next day's folder changes nothing.
    second = shutil.copytree(first, tmp_path / "tuesday")
    summary, _ = run_import(second)
    assert summary.listings_updated == 0
    assert summary.listings_unchanged == 1


def test_verbosity_zero_prints_warnings_only(tmp_path, capsys):
    write_feed(tmp_path, "alpha.csv", ["1;Alpha Game;PS4;10,00;EUR;", "2;Beta Game;;12,00;EUR;"])
    stdout, stderr = io.StringIO(), io.StringIO()

    # Without --quiet: -v 0 alone also leaves out the progress bars.
    call_command("import", str(tmp_path), "-v", "0", stdout=stdout, stderr=stderr)

    assert stdout.getvalue() == ""
    assert "missing platform" in stderr.getvalue()
    assert "row/s" not in capsys.readouterr().err
    assert Listing.objects.filter(product_id="1").exists()

"""Command-line behaviour a new user meets first: shop order, exports, calibrate options, an unmigrated database."""

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from coverpick.catalogue.models import Shop
from tests.conftest import HOSTILE_IMAGES, REPO
from tests.factories import heads_version, make_game, make_listing, predict


@pytest.fixture
def two_shop_game(db):
    game, (edition,) = make_game()
    version = heads_version()
    first = make_listing(edition, "shop-a", preference=0)
    second = make_listing(edition, "shop-b", preference=1)
    for listing in (first, second):
        predict(listing, version, "clean", clean_probability=0.9)
    call_command("rank", stdout=io.StringIO())
    return game, first, second


def test_shop_order_reranks_primaries(two_shop_game):
    game, first, second = two_shop_game
    game.refresh_from_db()
    assert game.primary_listing_id == first.pk
    out = io.StringIO()
    call_command("shops", order="shop-b,shop-a", stdout=out)
    game.refresh_from_db()
    assert game.primary_listing_id == second.pk
    assert "primary covers re-ranked" in out.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[-3:] == ["preference  listings  shop", "         0         1  shop-b", "         1         1  shop-a"]


@pytest.mark.parametrize(
    ("order", "fragment"),
    [("", "--order is empty"), (" , ", "--order is empty"), ("shop-a,shop-a", "names shop-a more than once"), ("nope", "Unknown shop(s): nope")],
)
def test_shop_order_rejects_bad_lists(two_shop_game, order, fragment):
    with pytest.raises(CommandError) as caught:
        call_command("shops", order=order, stdout=io.StringIO())
    assert fragment in str(caught.value)


def test_shop_order_failure_keeps_preferences(two_shop_game):
    with pytest.raises(CommandError):
        call_command("shops", order="shop-b,nope", stdout=io.StringIO())
    assert dict(Shop.objects.values_list("code", "preference")) == {"shop-a": 0, "shop-b": 1}


@pytest.mark.django_db
def test_export_creates_missing_folder(tmp_path):
    target = tmp_path / "new" / "folder" / "primaries.jsonl"
    stderr = io.StringIO()
    call_command("export", "primaries", "--out", str(target), stderr=stderr)
    assert target.is_file()
    assert f"Created the missing folder {tmp_path / 'new'} for {target}" in stderr.getvalue()

    again = io.StringIO()
    call_command("export", "primaries", "--out", str(target), stderr=again)
    assert "Created" not in again.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [(["--folds", "1"], "--folds must be at least 2, got 1"), (["--activate"], "--activate only works with --apply")],
)
def test_calibrate_rejects_bad_options(arguments, fragment):
    with pytest.raises(CommandError) as caught:
        call_command("calibrate", *arguments)
    assert fragment in str(caught.value)


def cli_env(home, **extra: str) -> dict[str, str]:
    """Return the environment of a child process on the SQLite catalogue in ``home``, with ``extra`` set."""
    env = {**os.environ, "COVERPICK_HOME": str(home), "DJANGO_SETTINGS_MODULE": "coverpick.settings", **extra}
    if "DATABASE_URL" not in extra:
        env.pop("DATABASE_URL", None)
    return env


def run_cli(home, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """Run `coverpick ARGS` in a child process on the catalogue in ``home``."""
    return subprocess.run(
        [sys.executable, "-m", "coverpick.cli", *args], env=cli_env(home, **extra), cwd=REPO, capture_output=True, text=True, timeout=120
    )


def empty_database(home) -> None:
    """Create an SQLite file without coverpick's tables in ``home``."""
    import sqlite3

    sqlite3.connect(home / "coverpick.sqlite3").close()


def test_missing_database_names_the_fix_and_creates_nothing(tmp_path):
    home = tmp_path / "mistyped-home"
    result = run_cli(home, "shops")
    assert result.returncode == 1
    assert f"No database at {home / 'coverpick.sqlite3'}" in result.stderr
    assert "run `coverpick migrate`" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists()


def test_unmigrated_database_names_the_fix(tmp_path):
    empty_database(tmp_path)
    result = run_cli(tmp_path, "shops")
    assert result.returncode == 1
    assert "has no coverpick tables yet" in result.stderr
    assert "Run `coverpick migrate`" in result.stderr
    assert str(tmp_path / "coverpick.sqlite3") in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_undecodable_tiff_names_its_path(tmp_path):
    home, catalogue = tmp_path / "home", tmp_path / "catalogue"
    (catalogue / "feeds").mkdir(parents=True)
    (catalogue / "images").mkdir()
    hostile = HOSTILE_IMAGES / "oom-225817ca0f8c663be7ab4b9e717b02c661e66834.tif"
    (catalogue / "images" / "bad.tif").write_bytes(hostile.read_bytes())
    (catalogue / "feeds" / "shop.csv").write_text(
        "id;name;system;price;currency;image\n1;Tiff Game;PS4;10,00;EUR;images/bad.tif\n", encoding="utf-8"
    )
    assert run_cli(home, "migrate").returncode == 0

    result = run_cli(home, "import", str(catalogue))

    assert result.returncode == 0
    assert "image 'images/bad.tif' cannot be decoded" in result.stdout
    # Pillow's own log line names no file, so it is left out below DEBUG.
    assert "samples per pixel" not in result.stderr


def test_pending_migration_rejected_unchanged(tmp_path):
    assert run_cli(tmp_path, "migrate").returncode == 0
    # As a home that an older coverpick migrated: the last migration undone.
    assert run_cli(tmp_path, "migrate", "catalogue", "0006").returncode == 0
    before = (tmp_path / "coverpick.sqlite3").read_bytes()

    result = run_cli(tmp_path, "shops")

    assert result.returncode == 1
    assert "The database lacks 1 of coverpick's migrations (catalogue 0007_verdict_text_novelty)" in result.stderr
    assert "Run `coverpick migrate`" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "coverpick.sqlite3").read_bytes() == before
    assert run_cli(tmp_path, "migrate").returncode == 0
    assert run_cli(tmp_path, "shops").returncode == 0


def test_help_lists_tick(tmp_path):
    result = run_cli(tmp_path, "help")
    assert result.returncode == 0
    assert "    sweep\n" in result.stdout
    assert result.stdout.rstrip().endswith("tick")


def test_help_tick_prints_tick_usage(tmp_path):
    result = run_cli(tmp_path, "help", "tick")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: coverpick tick")


def test_serve_refuses_unmigrated_database(tmp_path):
    empty_database(tmp_path)
    result = run_cli(tmp_path, "serve", "--port", "1", COVERPICK_DEBUG="1")
    assert result.returncode == 1
    assert "unapplied migration(s)" in result.stderr
    assert "Run `coverpick migrate`" in result.stderr
    assert "Starting gunicorn" not in result.stdout


REJECTED_HOST = """
import django
django.setup()
from django.test import Client
response = Client().get("/", HTTP_HOST="covers.invalid")
print(response.status_code)
"""


def test_rejected_host_is_logged(tmp_path):
    env = cli_env(tmp_path)
    env.pop("COVERPICK_DEBUG", None)
    env.pop("COVERPICK_ALLOWED_HOSTS", None)
    result = subprocess.run([sys.executable, "-c", REJECTED_HOST], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "400"
    assert "Invalid HTTP_HOST header: 'covers.invalid'." in result.stderr
    assert "Add the host to COVERPICK_ALLOWED_HOSTS if it is yours." in result.stderr
    assert "Traceback" not in result.stderr
    assert "ALLOWED_HOSTS." not in result.stderr.replace("COVERPICK_ALLOWED_HOSTS", "")


@pytest.mark.parametrize(
    "variable, value, command, fragment",
    [
        ("COVERPICK_BACKBONE", "foo", "train", "COVERPICK_BACKBONE='foo' is not a known backbone; valid values are efficientnet_lite0"),
        ("COVERPICK_BACKBONE", "resnet", "sweep", "COVERPICK_BACKBONE='resnet' is not a known backbone"),
        ("COVERPICK_BACKBONE_PRECISION", "fp8", "rank", "COVERPICK_BACKBONE_PRECISION='fp8' is invalid"),
        ("DATABASE_URL", "garbage", "shops", "DATABASE_URL='garbage' is invalid"),
        ("COVERPICK_LOG_LEVEL", "LOUD", "rank", "COVERPICK_LOG_LEVEL='LOUD' is not a log level. Use one of DEBUG, INFO"),
        ("COVERPICK_FETCH_MAX_BYTES", "lots", "import .", "COVERPICK_FETCH_MAX_BYTES='lots' is not a whole number"),
    ],
)
def test_bad_setting_gives_one_line(tmp_path, variable, value, command, fragment):
    empty_database(tmp_path)
    result = run_cli(tmp_path, *command.split(), **{variable: value})
    assert result.returncode == 1
    assert result.stderr.startswith("coverpick: ")
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_known_backbones_match_specs():
    from coverpick import conf
    from coverpick.vision.backbones import BACKBONES

    assert set(conf.BACKBONE_IDS) == set(BACKBONES)


def test_demo_rejects_zero_games():
    with pytest.raises(CommandError, match="--games must be at least 1, got 0"):
        call_command("demo", games=0)


@pytest.mark.django_db
def test_export_into_folder_is_rejected(tmp_path):
    with pytest.raises(CommandError, match="is a folder; give a file name"):
        call_command("export", "primaries", "--out", str(tmp_path), stderr=io.StringIO())


@pytest.mark.django_db
def test_export_keeps_earlier_file_on_failure(two_shop_game, tmp_path, monkeypatch):
    from coverpick import exports

    target = tmp_path / "primaries.jsonl"
    target.write_text("earlier export\n")

    def failing_records():
        yield {"game": "first"}
        raise RuntimeError("database went away")

    monkeypatch.setattr("coverpick.catalogue.management.commands.export.primary_records", failing_records)
    with pytest.raises(RuntimeError):
        call_command("export", "primaries", "--out", str(target), stderr=io.StringIO())
    assert target.read_text() == "earlier export\n"
    assert [path.name for path in tmp_path.iterdir()] == ["primaries.jsonl"]
    assert exports.write_jsonl_file([{"a": 1}], target) == 1
    assert target.read_text() == '{"a": 1}\n'


def test_export_to_closed_pipe_stops_quietly(tmp_path):
    env = cli_env(tmp_path)
    assert run_cli(tmp_path, "migrate", "-v0").returncode == 0
    seed = (
        "import django; django.setup()\n"
        "from tests.factories import make_game, make_listing\n"
        "for _ in range(3000):\n"
        "    game, (edition,) = make_game()\n"
        "    make_listing(edition)\n"
    )
    subprocess.run([sys.executable, "-c", seed], env=env, cwd=REPO, check=True, timeout=300)
    export = subprocess.Popen(
        [sys.executable, "-m", "coverpick.cli", "export", "primaries"], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    export.stdout.readline()
    export.stdout.close()
    stderr = export.stderr.read().decode()
    assert export.wait(timeout=120) == 0
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [(["--folds", "1"], "--folds must be at least 2, got 1"), (["--top", "-3"], "--top must be 0 or more, got -3")],
)
def test_audit_labels_rejects_bad_options(arguments, fragment):
    with pytest.raises(CommandError, match=fragment):
        call_command("audit-labels", *arguments, stdout=io.StringIO())


@pytest.mark.django_db
def test_audit_labels_checks_output_before_work(tmp_path):
    with pytest.raises(CommandError, match="is a folder"):
        call_command("audit-labels", "--out", str(tmp_path), stdout=io.StringIO())


@pytest.mark.django_db
def test_rescan_error_picks_unusable_listings():
    from coverpick.catalogue.models import Verdict
    from coverpick.model.sweep import select_listings

    game, (edition,) = make_game()
    version = heads_version()
    broken = make_listing(edition, "shop-a")
    Verdict.objects.create(listing=broken, source=Verdict.SOURCE_CLASSIFIER, classifier_version=version, error="image is truncated")
    judged = make_listing(edition, "shop-a")
    predict(judged, version, "clean", clean_probability=0.9)

    assert list(select_listings(version, rescan_verdicts=["error"])) == [broken]
    assert set(select_listings(version, rescan_verdicts=["error", "clean"])) == {broken, judged}
    assert list(select_listings(version, rescan_verdicts=["clean"])) == [judged]


@pytest.mark.django_db
def test_rescan_verdicts_empty_is_rejected():
    with pytest.raises(CommandError, match="--rescan-verdicts is empty"):
        call_command("sweep", "--rescan-verdicts", " ", stdout=io.StringIO())


@pytest.mark.django_db
def test_evaluate_checks_json_folder_first(sample_catalogue, tmp_path):
    target = tmp_path / "missing" / "result.json"
    with pytest.raises(CommandError, match="does not exist; create it"):
        call_command("evaluate", "--truth", str(sample_catalogue / "truth.jsonl"), "--json", str(target), stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"shop": "a", "product_id": "1", "source": "manual-pin"}\n', "line 1: missing labels"),
        ('{"shop": "a", "product_id": "1", "labels": ["clean"]}\n# notes\n', "line 2: invalid JSON"),
        ('{"shop": "a", "product_id": "1", "labels": ["shiny"]}\n', "unknown class 'shiny' in labels"),
        ('{"shop": "a", "product_id": "1", "labels": ["clean"], "image_family": "sega"}\n', "unknown image_family 'sega'"),
        ('["a", "1", ["clean"]]\n', "the line is not a JSON object"),
        ('{"shop": ["a"], "product_id": "1", "labels": ["clean"]}\n', "shop must be a string or a number, got ['a']"),
        ("\n\n", "has no records"),
    ],
)
def test_evaluate_rejects_bad_reference_file(tmp_path, content, fragment):
    truth = tmp_path / "truth.jsonl"
    truth.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", "--truth", str(truth), stdout=io.StringIO())
    assert fragment in str(caught.value)
    assert str(truth) in str(caught.value)


def test_evaluate_names_every_bad_line(tmp_path):
    truth = tmp_path / "truth.jsonl"
    good = '{"shop": "a", "product_id": "1", "labels": ["clean"]}\n'
    truth.write_text(good + "{oops\n" + good + '{"shop": "a", "product_id": "2"}\n' + "[]\n" * 11, encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", "--truth", str(truth), stdout=io.StringIO())
    message = str(caught.value)
    assert f"Reference file {truth} has 13 invalid lines: line 2: invalid JSON" in message
    assert "; line 4: missing labels; line 5: the line is not a JSON object;" in message
    assert "line 12: the line is not a JSON object; and 3 more." in message


def test_evaluate_refuses_a_folder_as_reference(tmp_path):
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", "--truth", str(tmp_path), stdout=io.StringIO())
    assert str(caught.value) == f"--truth {tmp_path} is a folder; pass the reference file itself."
    (tmp_path / "truth.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", "--truth", str(tmp_path), stdout=io.StringIO())
    assert str(caught.value) == f"--truth {tmp_path} is a folder; pass the reference file itself ({tmp_path / 'truth.jsonl'}?)."


@pytest.mark.django_db
def test_evaluate_names_reference_rows_it_leaves_out():
    from coverpick.model.evaluate import format_report, unused_reference_rows

    _game, (edition,) = make_game()
    scored, broken = make_listing(edition), make_listing(edition, decode_error="not an image")
    truth = {
        (scored.shop.code, scored.product_id): {"labels": ["clean"]},
        (broken.shop.code, broken.product_id): {"labels": ["clean"]},
        ("shop-a", "does-not-exist"): {"labels": ["clean"]},
    }
    records = [{"shop": scored.shop.code, "product_id": scored.product_id}]

    rows = unused_reference_rows(truth, records)

    assert (rows["read"], rows["scored"], rows["no_listing"], rows["no_usable_image"]) == (3, 1, 1, 1)
    report = format_report(
        {
            "listings": 1,
            "folds": 2,
            "reference_rows": rows,
            "per_class": {},
            "defects_called_clean": 0.0,
            "platform_accuracy": 1.0,
            "platform_coverage": 1.0,
            "primary_clean_rate": None,
            "clean_at_goal": {"threshold": None, "recall": None},
            "platform_at_goal": {"accuracy": None},
        }
    )
    assert "Left out: 1 of the 3 reference rows name no listing of this catalogue (matched by shop and product_id): shop-a 'does-not-exist'" in report
    assert f"Left out: 1 of the 3 reference rows name a listing without a usable image, which gets no verdict: shop-a {broken.product_id!r}" in report


@pytest.mark.django_db
def test_evaluate_rejects_reference_of_other_catalogue(tmp_path):
    _game, (edition,) = make_game()
    make_listing(edition)
    truth = tmp_path / "truth.jsonl"
    truth.write_text('{"shop": "elsewhere", "product_id": "1", "labels": ["clean"]}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="None of the 1 records in reference file .* names a listing of this catalogue"):
        call_command("evaluate", "--truth", str(truth), stdout=io.StringIO())


@pytest.mark.parametrize("command", ["migrate", "rank", "tick"])
@pytest.mark.parametrize("below", ["", "sub"])
def test_home_blocked_by_file_is_worded(tmp_path, below, command):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder", encoding="utf-8")
    home = blocker / below if below else blocker
    result = run_cli(home, command)
    assert result.returncode == 1
    assert f"COVERPICK_HOME={str(home)!r} cannot be used as coverpick's folder (a file is in the way)" in result.stderr
    assert "Traceback" not in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_demo_checks_the_catalogue_before_migrating(tmp_path):
    home = tmp_path / "home"
    result = run_cli(home, "demo", "--catalogue", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert f"{tmp_path / 'missing'} has no feeds/ folder. Pass a catalogue folder, or omit --catalogue." in result.stderr
    assert not (home / "coverpick.sqlite3").exists()


def test_version_is_coverpicks(tmp_path):
    from importlib.metadata import version

    result = run_cli(tmp_path, "--version")
    assert (result.returncode, result.stdout) == (0, f"coverpick {version('coverpick')}\n")


@pytest.mark.parametrize("command", ["rank", "tick"])
def test_unsupported_database_url_is_worded(tmp_path, command):
    result = run_cli(tmp_path, command, DATABASE_URL="mysql://user:secret@127.0.0.1/db")
    assert result.returncode == 1
    assert "DATABASE_URL uses mysql://, which coverpick does not support. Use postgresql://" in result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_home_means_default(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from coverpick import conf; print(conf.home())"],
        env=cli_env(tmp_path, COVERPICK_HOME=""), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "var")


def test_text_cache_blocked_by_file_is_worded(tmp_path, monkeypatch):
    from coverpick import conf

    blocker = tmp_path / "afile"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("COVERPICK_TEXT_CACHE", str(blocker / "text"))
    with pytest.raises(conf.SettingError) as caught:
        conf.text_cache_dir()
    assert str(caught.value).startswith(f"COVERPICK_TEXT_CACHE={str(blocker / 'text')!r} cannot be used as the cover text cache (a file is in the way).")

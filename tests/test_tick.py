"""`coverpick tick` with nothing to do: exit 0 without importing Django, numpy, ONNX Runtime or torch.

Each case runs in a child process, because this test process has already
imported all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_PACKAGES = ("django", "numpy", "onnxruntime", "torch")

SETUP = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
import django
django.setup()
from django.core.management import call_command
from coverpick.catalogue.models import ClassifierVersion, Edition, Game, Listing, Shop, Verdict
call_command("migrate", verbosity=0)
shop = Shop.objects.create(code="shop-a", name="Shop A")
game = Game.objects.create(key="tickgame", title="Tick Game")
edition = Edition.objects.create(game=game, platform="ps4", family="sony")
version = ClassifierVersion.objects.create(name="heads-tick", kind="heads", is_active=sys.argv[3] == "active")
ClassifierVersion.objects.create(name="heads-old", kind="heads", is_active=False)
for number in range(int(sys.argv[1]) + int(sys.argv[2])):
    listing = Listing.objects.create(
        shop=shop, product_id=str(number), edition=edition, title="Tick Game", platform_raw="PS4", platform_family="sony"
    )
    if number < int(sys.argv[1]):
        Verdict.objects.create(listing=listing, source="classifier", classifier_version=version, quality="clean")
"""

PROBE = """
import json, sys
from coverpick.cli import main
code = main(["tick"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def child_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env["COVERPICK_HOME"] = str(home)
    return env


def make_home(tmp_path: Path, swept: int, pending: int, active: bool = True) -> Path:
    """Create a migrated SQLite catalogue with ``swept`` listings that have a verdict from the heads and ``pending`` without.

    The heads version is active unless ``active`` is false. An older, inactive
    heads version exists too, without verdicts.
    """
    result = subprocess.run(
        [sys.executable, "-c", SETUP, str(swept), str(pending), "active" if active else "inactive"],
        env=child_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tmp_path


def run_probe(home: Path) -> tuple[dict, str]:
    result = subprocess.run([sys.executable, "-c", PROBE], env=child_env(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def heavy_modules(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY_PACKAGES]


@pytest.fixture(scope="module")
def idle_home(tmp_path_factory) -> Path:
    return make_home(tmp_path_factory.mktemp("tick-idle"), swept=3, pending=0)


def test_idle_tick_imports_nothing_heavy(idle_home):
    probe, output = run_probe(idle_home)
    assert probe["code"] == 0
    assert output.startswith("No pending listings")
    assert heavy_modules(probe["modules"]) == []


def test_tick_without_database(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], env=child_env(tmp_path), capture_output=True, text=True, timeout=60)
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["code"] == 1
    assert f"no database at {tmp_path / 'coverpick.sqlite3'}" in result.stderr
    assert "COVERPICK_HOME" in result.stderr
    assert heavy_modules(probe["modules"]) == []
    assert not (tmp_path / "coverpick.sqlite3").exists()


def test_tick_rejects_unknown_argument(idle_home):
    script = Path(sys.executable).with_name("coverpick")
    result = subprocess.run([str(script), "tick", "--bogus"], env=child_env(idle_home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown argument(s): --bogus" in result.stderr
    assert result.stdout == ""


def test_tick_without_active_heads_says_so(tmp_path):
    home = make_home(tmp_path, swept=0, pending=2, active=False)
    script = Path(sys.executable).with_name("coverpick")
    result = subprocess.run([str(script), "tick", "--quiet"], env=child_env(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "no active classifier" in result.stderr
    assert "coverpick train --activate" in result.stderr


def test_idle_tick_console_script(idle_home):
    script = Path(sys.executable).with_name("coverpick")
    if not script.is_file():
        pytest.skip(f"{script} is not installed; run pip install -e .")
    result = subprocess.run([str(script), "tick"], env=child_env(idle_home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No pending listings")


def test_quiet_idle_tick_prints_nothing(idle_home):
    script = Path(sys.executable).with_name("coverpick")
    if not script.is_file():
        pytest.skip(f"{script} is not installed; run pip install -e .")
    result = subprocess.run(
        [str(script), "tick", "--quiet"], env=child_env(idle_home), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_count_pending_counts_unswept(tmp_path, monkeypatch):
    from coverpick.tick import count_pending

    home = make_home(tmp_path, swept=2, pending=3)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COVERPICK_HOME", str(home))
    assert count_pending() == 3


def test_count_pending_idle(idle_home, monkeypatch):
    from coverpick.tick import count_pending

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COVERPICK_HOME", str(idle_home))
    assert count_pending() == 0


def test_count_pending_without_active_heads(tmp_path, monkeypatch):
    from coverpick.tick import count_pending

    home = make_home(tmp_path, swept=0, pending=2, active=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COVERPICK_HOME", str(home))
    assert count_pending() is None


def test_count_pending_empty_database(tmp_path, monkeypatch):
    import sqlite3

    from coverpick.tick import TickError, count_pending

    sqlite3.connect(tmp_path / "coverpick.sqlite3").close()
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COVERPICK_HOME", str(tmp_path))
    with pytest.raises(TickError, match="has no coverpick tables"):
        count_pending()


def test_tick_on_database_behind_migrations(tmp_path):
    home = make_home(tmp_path, swept=0, pending=2)
    script = Path(sys.executable).with_name("coverpick")
    # As a home that an older coverpick migrated: the last migration undone.
    undo = subprocess.run([str(script), "migrate", "catalogue", "0006"], env=child_env(home), capture_output=True, text=True, timeout=120)
    assert undo.returncode == 0, undo.stderr
    before = (home / "coverpick.sqlite3").read_bytes()

    result = subprocess.run([str(script), "tick"], env=child_env(home), capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "lacks 1 of coverpick's migrations (catalogue 0007_verdict_text_novelty)" in result.stderr
    assert "Run `coverpick migrate`" in result.stderr
    assert "Traceback" not in result.stderr
    assert (home / "coverpick.sqlite3").read_bytes() == before

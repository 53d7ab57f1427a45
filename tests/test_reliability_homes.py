"""Scratch coverpick homes for the reliability tests, and a check that a cloned home is independent.

A scratch home is a COVERPICK_HOME folder with a database of its own: a SQLite
file in the folder, or, when DATABASE_URL names PostgreSQL, a separate database
on that server which the tests create and drop. Commands run against it in
child processes, the way production runs them.

Importing a catalogue and training heads takes a minute or more. So a session
builds one template home per database engine, on first use, and each test
works on a clone of it. A clone's database is a backup of the SQLite file, or
a copy made with CREATE DATABASE ... TEMPLATE on PostgreSQL. The template
contains two feeds of the sample catalogue and their labels, imported, with
heads trained (seed 0) and active, and no verdict rows yet.

Every scratch home links its feature cache and its backbone ONNX export to
the session's COVERPICK_HOME. Both are derived from image content and the
backbone alone, never from labels or rows, so sharing them saves the backbone
run without changing any result.

The other reliability modules import the helpers from here.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import SAMPLE_CATALOGUE

pytestmark = pytest.mark.slow

# Two small feeds: about 340 listings, enough games for several sweep chunks.
SHOP_FEEDS = {"quickkeys": "quickkeys.csv", "lootlane": "lootlane.jsonl"}
COMMAND_TIMEOUT_S = 900
SQLITE_FILE = "coverpick.sqlite3"
ENGINES = ("sqlite", "postgresql")

# Variables of this process that must not leak into a child: the child gets
# its own home and database, and the product's default thread counts.
CHILD_DROPPED_VARIABLES = {
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "COVERPICK_TEST_HOME",
    "COVERPICK_BACKBONE_PRECISION",
    "OMP_NUM_THREADS",
}

DJANGO_PREAMBLE = """
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
django.setup()
"""

_database_numbers = itertools.count(1)


def session_home() -> Path:
    return Path(os.environ["COVERPICK_TEST_HOME"])


def session_postgres_url() -> str | None:
    """Return DATABASE_URL when it names a PostgreSQL database, else None."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if url and "postgresql" in dj_database_url.parse(url)["ENGINE"]:
        return url
    return None


def session_engine() -> str:
    return "postgresql" if session_postgres_url() else "sqlite"


def postgres_url_for(database: str) -> str:
    """Return the session's PostgreSQL URL with its database name replaced by ``database``."""
    url = session_postgres_url()
    if url is None:
        raise RuntimeError("DATABASE_URL does not name a PostgreSQL database")
    return urlsplit(url)._replace(path=f"/{database}").geturl()


@contextlib.contextmanager
def _postgres_admin():
    import psycopg

    with psycopg.connect(session_postgres_url(), autocommit=True) as connection:
        yield connection


def create_postgres_database(template: str | None = None) -> str:
    """Create an empty database, or a copy of ``template``, and return its name.

    The name carries this process id, so sessions that share the server do not
    collide. The database is dropped when this process exits, if no test
    dropped it before. The calling test is skipped when the role of
    DATABASE_URL may not create databases.
    """
    from psycopg import errors, sql

    name = f"coverpick_reliability_{os.getpid()}_{next(_database_numbers)}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    try:
        with _postgres_admin() as connection:
            connection.execute(statement)
    except errors.InsufficientPrivilege as exc:
        pytest.skip(f"needs a PostgreSQL database of its own, but the DATABASE_URL role may not create one: {exc}")
    atexit.register(drop_postgres_database, name)
    return name


def drop_postgres_database(name: str) -> None:
    from psycopg import sql

    with _postgres_admin() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class ScratchHome:
    """A COVERPICK_HOME folder and its database: SQLite in the folder, or the named PostgreSQL database."""

    folder: Path
    postgres_database: str | None = None

    @property
    def engine(self) -> str:
        return "postgresql" if self.postgres_database else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.folder / SQLITE_FILE

    def env(self, **extra: str) -> dict[str, str]:
        """Return the environment of a child process that works on this home."""
        env = {key: value for key, value in os.environ.items() if key not in CHILD_DROPPED_VARIABLES}
        env["COVERPICK_HOME"] = str(self.folder)
        if self.postgres_database:
            env["DATABASE_URL"] = postgres_url_for(self.postgres_database)
        env.update(extra)
        return env

    def coverpick(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run ``coverpick ARGS`` on this home and return the result. A non-zero exit fails the test."""
        result = subprocess.run(
            [sys.executable, "-m", "coverpick.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"coverpick {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-3000:]}"
        return result

    def query(self, code: str):
        """Run ``code`` in a child with Django set up on this home and return the JSON it prints last."""
        result = subprocess.run(
            [sys.executable, "-c", DJANGO_PREAMBLE + textwrap.dedent(code)],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert result.returncode == 0, f"query on {self.folder} failed:\n{result.stderr[-3000:]}"
        return json.loads(result.stdout.strip().splitlines()[-1])


def link_shared_caches(folder: Path) -> None:
    """Point the feature cache and the backbone folder of ``folder`` at the session home's."""
    shared_features = session_home() / "features"
    shared_backbones = session_home() / "models" / "backbones"
    shared_features.mkdir(parents=True, exist_ok=True)
    shared_backbones.mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "features").symlink_to(shared_features, target_is_directory=True)
    (folder / "models" / "backbones").symlink_to(shared_backbones, target_is_directory=True)


def subset_catalogue(destination: Path) -> Path:
    """Copy the feeds of SHOP_FEEDS, their images and their label lines into ``destination``."""
    (destination / "feeds").mkdir(parents=True)
    # Images are copied, not linked: the importer rejects paths that resolve outside the catalogue folder.
    for shop, feed in SHOP_FEEDS.items():
        shutil.copy(SAMPLE_CATALOGUE / "feeds" / feed, destination / "feeds" / feed)
        shutil.copytree(SAMPLE_CATALOGUE / "images" / shop, destination / "images" / shop)
    lines = (SAMPLE_CATALOGUE / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    label_lines = [line for line in lines if line.strip() and json.loads(line)["shop"] in SHOP_FEEDS]
    (destination / "labels.jsonl").write_text("\n".join(label_lines) + "\n", encoding="utf-8")
    return destination


_templates: dict[str, ScratchHome] = {}


def template_home(engine: str) -> ScratchHome:
    """Return this session's template home on ``engine`` ("sqlite" or "postgresql"), building it on first use.

    Tests must not change a template, so they work on a clone (see cloned_home).
    """
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine {engine!r}: use one of {', '.join(ENGINES)}.")
    if engine in _templates:
        return _templates[engine]
    root = session_home() / "reliability"
    catalogue = root / "catalogue"
    if not catalogue.is_dir():
        subset_catalogue(catalogue)
    folder = root / f"template-{engine}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    link_shared_caches(folder)
    home = ScratchHome(folder, create_postgres_database() if engine == "postgresql" else None)
    home.coverpick("migrate", "--verbosity", "0")
    home.coverpick("import", str(catalogue), "--quiet")
    home.coverpick("train", "--activate", "--seed", "0", "--quiet")
    _templates[engine] = home
    return home


def _copy_sqlite(source: Path, destination: Path) -> None:
    """Copy a SQLite database through the backup API, so pages still in the WAL file are included."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


@contextlib.contextmanager
def cloned_home(template: ScratchHome, folder: Path) -> Iterator[ScratchHome]:
    """Yield a copy of ``template`` in ``folder`` with a database of its own, and drop that database afterwards.

    The cover images and the heads checkpoints are copied. The feature cache
    and the backbone export stay shared (see the module docstring).
    """
    folder.mkdir(parents=True)
    link_shared_caches(folder)
    shutil.copytree(template.folder / "images", folder / "images")
    for entry in (template.folder / "models").iterdir():
        if entry.name != "backbones":
            shutil.copytree(entry, folder / "models" / entry.name)
    if template.postgres_database:
        home = ScratchHome(folder, create_postgres_database(template=template.postgres_database))
    else:
        home = ScratchHome(folder)
        _copy_sqlite(template.sqlite_path, home.sqlite_path)
    try:
        yield home
    finally:
        if home.postgres_database:
            drop_postgres_database(home.postgres_database)


COUNT_SHOPS = """
from coverpick.catalogue.models import Shop
print(json.dumps(sorted(Shop.objects.values_list("code", flat=True))))
"""


def test_clone_writes_leave_template_unchanged(tmp_path):
    template = template_home(session_engine())
    with cloned_home(template, tmp_path / "clone") as clone:
        assert clone.query(COUNT_SHOPS) == sorted(SHOP_FEEDS)
        clone.query(
            """
            from coverpick.catalogue.models import Shop
            Shop.objects.create(code="clone-only", name="clone-only")
            print(json.dumps(None))
            """
        )
        assert "clone-only" in clone.query(COUNT_SHOPS)
    assert template.query(COUNT_SHOPS) == sorted(SHOP_FEEDS)

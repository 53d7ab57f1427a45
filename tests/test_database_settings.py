"""How DATABASE_URL becomes Django's database settings."""

import os

import pytest
from django.db import connection

from coverpick.conf import SettingError
from coverpick.settings import _database


def test_postgresql_turns_jit_off(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db.example:5432/catalogue")
    database = _database()
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["OPTIONS"]["options"] == "-c jit=off"


def test_postgresql_keeps_options_from_the_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db.example/catalogue?options=-c%20statement_timeout%3D5000")
    assert _database()["OPTIONS"]["options"] == "-c statement_timeout=5000 -c jit=off"


def test_unsupported_scheme_names_only_the_scheme(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://user:secret@db.example/catalogue")
    with pytest.raises(SettingError) as caught:
        _database()
    assert str(caught.value).startswith("DATABASE_URL uses mysql://, which coverpick does not support.")
    assert "secret" not in str(caught.value)


@pytest.mark.django_db
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="reads the setting from a PostgreSQL session; set DATABASE_URL to a PostgreSQL database to run it",
)
def test_postgresql_session_runs_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs the PostgreSQL server of DATABASE_URL; set DATABASE_URL to a PostgreSQL database to run it",
)
def test_refused_postgresql_login_is_worded(tmp_path):
    from urllib.parse import urlsplit, urlunsplit

    from tests.test_cli_commands import run_cli

    parts = urlsplit(os.environ["DATABASE_URL"])
    netloc = f"{parts.username}:not-the-password@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    wrong = urlunsplit(parts._replace(netloc=netloc))
    result = run_cli(tmp_path, "shops", DATABASE_URL=wrong)
    assert result.returncode == 1
    assert result.stderr.startswith("coverpick: cannot connect to the database in DATABASE_URL (")
    assert "password authentication failed" in result.stderr
    assert "Check that the server is running" in result.stderr
    assert "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr

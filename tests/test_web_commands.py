"""The serve and createstaff commands."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from coverpick.catalogue.management.commands import serve
from coverpick.web.deployment import DeploymentError, require_secret_key

REPO = Path(__file__).resolve().parents[1]


# createstaff --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_createstaff_creates_staff_account(monkeypatch):
    monkeypatch.setenv("NEW_STAFF_PASSWORD", "s3cret-enough")
    stdout = io.StringIO()
    call_command("createstaff", "carol", "--password-from-env", "NEW_STAFF_PASSWORD", stdout=stdout)
    user = get_user_model().objects.get(username="carol")
    assert user.is_staff
    assert user.is_active
    assert not user.is_superuser
    assert user.check_password("s3cret-enough")
    assert "Created staff account 'carol'" in stdout.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bad name!", "x" * 151])
def test_createstaff_rejects_invalid_username(monkeypatch, username):
    monkeypatch.setenv("NEW_STAFF_PASSWORD", "s3cret-enough")
    with pytest.raises(CommandError) as caught:
        call_command("createstaff", username, "--password-from-env", "NEW_STAFF_PASSWORD", stdout=io.StringIO())
    assert str(caught.value).startswith(f"Invalid username {username!r}: ")
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_createstaff_promotes_existing_account(monkeypatch):
    user = get_user_model().objects.create_user("dave", password="old-password")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    stdout = io.StringIO()
    call_command("createstaff", "dave", stdout=stdout)
    user.refresh_from_db()
    assert user.is_staff
    assert user.check_password("old-password")
    assert "Updated staff account 'dave' (password unchanged)" in stdout.getvalue()


@pytest.mark.django_db
def test_createstaff_updates_password(monkeypatch):
    get_user_model().objects.create_user("erin", password="old-password", is_staff=True)
    monkeypatch.setenv("ERIN_PASSWORD", "a-longer-new-passphrase")
    call_command("createstaff", "erin", "--password-from-env", "ERIN_PASSWORD", stdout=io.StringIO())
    assert get_user_model().objects.get(username="erin").check_password("a-longer-new-passphrase")


@pytest.mark.django_db
def test_createstaff_rejects_weak_password(monkeypatch):
    monkeypatch.setenv("WEAK_PASSWORD", "123")
    with pytest.raises(CommandError) as caught:
        call_command("createstaff", "frank", "--password-from-env", "WEAK_PASSWORD", stdout=io.StringIO())
    assert "too short" in str(caught.value)
    assert not get_user_model().objects.filter(username="frank").exists()


@pytest.mark.django_db
def test_createstaff_missing_variable_names_it(monkeypatch):
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    with pytest.raises(CommandError, match="NO_SUCH_PASSWORD_VAR is missing or empty"):
        call_command("createstaff", "frank", "--password-from-env", "NO_SUCH_PASSWORD_VAR")
    assert not get_user_model().objects.filter(username="frank").exists()


@pytest.mark.django_db
def test_createstaff_new_account_needs_password(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with pytest.raises(CommandError, match="Pass --password-from-env VAR"):
        call_command("createstaff", "grace")
    assert not get_user_model().objects.filter(username="grace").exists()


# serve ----------------------------------------------------------------------------------


def test_require_secret_key_names_variable_and_fix():
    with pytest.raises(DeploymentError) as caught:
        require_secret_key({})
    message = str(caught.value)
    assert "COVERPICK_SECRET_KEY is not set" in message
    assert "secrets.token_urlsafe" in message


def test_require_secret_key_accepts_value():
    require_secret_key({"COVERPICK_SECRET_KEY": "Qm3-vK9_a7ZpL2x" * 3})


def test_require_secret_key_rejects_development_key():
    from django.conf import settings as django_settings

    for key in ("coverpick-insecure-development-key", "django-insecure-" + "k3y" * 12):
        with pytest.raises(DeploymentError, match="is a published development key"):
            require_secret_key({"COVERPICK_SECRET_KEY": key})
    # The fallback in the settings is the key refused.
    if not os.environ.get("COVERPICK_SECRET_KEY"):
        with pytest.raises(DeploymentError, match="published development key"):
            require_secret_key({"COVERPICK_SECRET_KEY": django_settings.SECRET_KEY})


@pytest.mark.parametrize(("key", "fragment"), [("short", "5 characters, 5 of them distinct"), ("x" * 50, "50 characters, 1 of them distinct")])
def test_require_secret_key_rejects_weak_value(key, fragment):
    with pytest.raises(DeploymentError) as caught:
        require_secret_key({"COVERPICK_SECRET_KEY": key})
    message = str(caught.value)
    assert f"COVERPICK_SECRET_KEY is too weak: {fragment}" in message
    assert "secrets.token_urlsafe" in message


def test_serve_without_secret_key_fails(db, monkeypatch, settings):
    settings.DEBUG = False
    monkeypatch.delenv("COVERPICK_SECRET_KEY", raising=False)
    monkeypatch.setattr(serve.os, "execv", pytest.fail)
    with pytest.raises(CommandError, match="COVERPICK_SECRET_KEY is not set"):
        call_command("serve")


def test_serve_debug_skips_secret_key_check(db, monkeypatch, settings):
    settings.DEBUG = True
    monkeypatch.delenv("COVERPICK_SECRET_KEY", raising=False)
    calls = []
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: calls.append(argv))
    call_command("serve", stdout=io.StringIO())
    assert calls and calls[0][3] == "coverpick.wsgi:application"


def test_serve_runs_gunicorn_with_options(db, monkeypatch, settings):
    settings.DEBUG = False
    monkeypatch.setenv("COVERPICK_SECRET_KEY", "test-only-" + "k" * 40)
    calls = []
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: calls.append((path, argv)))
    call_command("serve", "--port", "8123", "--workers", "3", stdout=io.StringIO())
    path, argv = calls[0]
    assert path == sys.executable
    assert argv[1:4] == ["-m", "gunicorn", "coverpick.wsgi:application"]
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123"
    assert argv[argv.index("--workers") + 1] == "3"


def test_serve_dev_uses_runserver(db, monkeypatch, settings):
    monkeypatch.delenv("COVERPICK_SECRET_KEY", raising=False)
    monkeypatch.delenv("COVERPICK_DEBUG", raising=False)
    calls = []
    monkeypatch.setattr(serve, "call_command", lambda *args: calls.append(args))
    monkeypatch.setattr(serve.os, "execv", pytest.fail)
    call_command("serve", "--dev", "--port", "8124", stdout=io.StringIO())
    assert calls == [("runserver", "127.0.0.1:8124")]


def test_gunicorn_control_socket_disabled_only_where_supported():
    assert "--no-control-socket" in serve.gunicorn_argv("127.0.0.1", 8000, 2, (25, 1, 0))
    assert "--no-control-socket" not in serve.gunicorn_argv("127.0.0.1", 8000, 2, (23, 0, 0))


@pytest.mark.parametrize(("option", "value"), [("--port", "0"), ("--port", "70000"), ("--workers", "0")])
def test_serve_rejects_bad_numbers(option, value, monkeypatch):
    monkeypatch.setattr(serve.os, "execv", pytest.fail)
    with pytest.raises(CommandError, match="Invalid"):
        call_command("serve", option, value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_starts_gunicorn_that_answers(tmp_path):
    env = {
        **os.environ,
        "COVERPICK_HOME": str(tmp_path),
        "COVERPICK_SECRET_KEY": "test-only-" + "k" * 40,
        "DJANGO_SETTINGS_MODULE": "coverpick.settings",
    }
    env.pop("COVERPICK_DEBUG", None)
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "coverpick.cli"]
    subprocess.run([*command, "migrate", "--verbosity", "0"], env=env, cwd=REPO, check=True, timeout=120)
    port = free_port()
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body, headers = None, None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body, headers = response.read().decode(), response.headers
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None:
                    break
                time.sleep(0.2)
        assert body is not None, server.stdout.read().decode() if server.poll() is not None else "no answer in 30 s"
        assert "coverpick" in body
        assert "gunicorn" in headers.get("Server", "")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/assets/style.css", timeout=2) as response:
            assert response.headers["Content-Type"].startswith("text/css")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def test_serve_dev_answers_without_secret_key(tmp_path):
    env = {**os.environ, "COVERPICK_HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "coverpick.settings"}
    for name in ("COVERPICK_DEBUG", "COVERPICK_SECRET_KEY", "DATABASE_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "coverpick.cli"]
    subprocess.run([*command, "migrate", "--verbosity", "0"], env=env, cwd=REPO, check=True, timeout=120)
    port = free_port()
    # The development server's reloader starts a child process, so the whole session is stopped.
    server = subprocess.Popen(
        [*command, "serve", "--dev", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    status = response.status
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None:
                    break
                time.sleep(0.2)
        assert status == 200, server.stdout.read().decode() if server.poll() is not None else "no answer in 30 s"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stdout.close()


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("Invalid HTTP_HOST header: 'covers.example'. You may need to add 'covers.example' to ALLOWED_HOSTS.", True),
        ("Invalid HTTP_HOST header: 'bad_host!'. The domain name provided is not valid according to RFC 1034/1035.", False),
    ],
)
def test_host_hint_only_for_valid_names(message, hint):
    import logging

    from coverpick.web.deployment import RejectedHostFilter

    record = logging.LogRecord("django.security.DisallowedHost", logging.ERROR, __file__, 1, message, (), None)
    assert RejectedHostFilter().filter(record)
    assert ("COVERPICK_ALLOWED_HOSTS" in record.getMessage()) is hint
    assert "ALLOWED_HOSTS." not in record.getMessage().replace("COVERPICK_ALLOWED_HOSTS", "")

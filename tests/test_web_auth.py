import pytest
from django.test import Client

from coverpick.web import login_throttle as throttle
from tests.test_web_support import PASSWORD, _clear_cache, make_user  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # The default hasher takes a noticeable fraction of a second per login on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def account(fast_hasher):
    return make_user("alice", staff=True, password=PASSWORD)


def login(client, username, password, address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_page_renders():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_login_succeeds_and_redirects(account):
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/reports/"})
    assert response.status_code == 302
    assert response["Location"] == "/reports/"
    assert client.get("/reports/").status_code == 200


def test_login_rejects_foreign_next(account):
    response = Client().post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_wrong_password_shows_error(account):
    response = login(Client(), "alice", "wrong")
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_sixth_attempt_locked_even_with_right_password(account):
    client = Client()
    for _ in range(throttle.MAX_FAILURES):
        login(client, "alice", "wrong")
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed logins for this username from your address" in response.content
    assert b"Wait 5 minutes" in response.content
    assert "_auth_user_id" not in client.session


def test_lock_is_per_address(account):
    for _ in range(throttle.MAX_FAILURES):
        login(Client(), "alice", "wrong", address="10.0.0.1")
    response = login(Client(), "alice", PASSWORD, address="10.0.0.2")
    assert response.status_code == 302


def test_lock_is_per_username(account):
    make_user("bob", staff=False, password=PASSWORD)
    for _ in range(throttle.MAX_FAILURES):
        login(Client(), "alice", "wrong")
    response = login(Client(), "bob", PASSWORD)
    assert response.status_code == 302


def test_lock_ignores_username_case(account):
    for _ in range(throttle.MAX_FAILURES):
        login(Client(), "ALICE", "wrong")
    assert throttle.is_locked("alice", "10.0.0.1")


def test_four_failures_then_success_clears_count(account):
    for _ in range(throttle.MAX_FAILURES - 1):
        login(Client(), "alice", "wrong")
    assert login(Client(), "alice", PASSWORD).status_code == 302
    for _ in range(throttle.MAX_FAILURES - 1):
        login(Client(), "alice", "wrong")
    assert not throttle.is_locked("alice", "10.0.0.1")


def test_failure_window_is_five_minutes():
    assert throttle.WINDOW_S == 300
    assert throttle.MAX_FAILURES == 5


def test_lock_lifts_when_counter_expires(account):
    for _ in range(throttle.MAX_FAILURES):
        login(Client(), "alice", "wrong")
    throttle.clear_failures("alice", "10.0.0.1")  # what the cache timeout does after WINDOW_S
    assert login(Client(), "alice", PASSWORD).status_code == 302


def test_logout_requires_post_and_logs_out(account):
    client = Client()
    client.force_login(account)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_logged_in_user_skips_login_page(account):
    client = Client()
    client.force_login(account)
    assert client.get("/accounts/login/").status_code == 302

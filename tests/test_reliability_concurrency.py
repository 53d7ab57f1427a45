"""Staff saves through the web server succeed while full sweeps write to the same database.

The test serves a clone of the template home (see tests/test_reliability_homes.py)
with `coverpick serve` (gunicorn, two workers) on a free port of 127.0.0.1, and
runs `coverpick sweep --rescan-all --apply` in child processes, one after
another, for as long as the clients send requests. CLIENTS threads, each
logged in as its own staff account with its own session and CSRF token, send
REQUESTS_PER_CLIENT label saves and pins. Every response must be a redirect
to the page the view sends a successful save to, no "database is locked"
error may reach the server log, and every saved label and pin must be in the
database afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest

from coverpick.labels import LABEL_CLASSES
from tests.test_reliability_homes import cloned_home, session_engine, template_home

pytestmark = pytest.mark.slow

CLIENTS = 20
REQUESTS_PER_CLIENT = 10
# Every PIN_EVERY-th request of a client pins a cover, and the others save labels.
PIN_EVERY = 3
PINS_PER_CLIENT = REQUESTS_PER_CLIENT // PIN_EVERY
LABELS_PER_CLIENT = REQUESTS_PER_CLIENT - PINS_PER_CLIENT
REQUEST_TIMEOUT_S = 60
TRAFFIC_LIMIT_S = 240
SERVER_START_LIMIT_S = 60
PASSWORD = "reliability-test-password"
LOCK_ERRORS = ("database is locked", "OperationalError")
# The held-lock test: how long another writer holds SQLite's write lock, and how many clients save meanwhile.
HOLD_S = 3.0
HOLDING_CLIENTS = 5

CREATE_STAFF = f"""
from django.contrib.auth import get_user_model

for number in range({CLIENTS}):
    get_user_model().objects.create_user(f"staff{{number}}", password={PASSWORD!r}, is_staff=True)
print(json.dumps(None))
"""

CATALOGUE_SHAPE = """
from coverpick.catalogue.models import Listing

print(json.dumps(list(Listing.objects.order_by("pk").values_list("pk", "edition__game_id"))))
"""

SAVED_STATE = """
from coverpick.catalogue.models import Game, Listing, Verdict

print(json.dumps({
    "labels": list(
        Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_TRAIN).values_list("listing_id", "labels")
    ),
    "pins": list(
        Verdict.objects.filter(source=Verdict.SOURCE_MANUAL_PIN, quality="clean").values_list("listing_id", "user__username")
    ),
    "primaries": list(Game.objects.values_list("pk", "primary_listing_id")),
    "listings": Listing.objects.count(),
    "heads_rows": Verdict.objects.filter(classifier_version__kind="heads").count(),
}))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Save:
    """One POST of a save form, and the redirect location that a successful save returns."""

    action: str
    path: str
    fields: dict
    expected_location: str


def label_save(listing: int, labels: list[str]) -> Save:
    return Save("label", "/admin/label/covers/save/", {"listing": listing, "labels": labels}, "/admin/label/covers/")


def pin_save(game: int, listing: int) -> Save:
    return Save("pin", f"/games/{game}/pin/", {"listing": listing}, f"/games/{game}/")


@dataclass
class Outcome:
    client: int
    save: Save
    status: int
    location: str
    started: float
    ended: float
    # The response body when the save failed, else empty.
    body: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class StaffClient:
    """One staff member's browser: its own cookies (session and CSRF token) and one request at a time."""

    def __init__(self, port: int, username: str):
        self.port = port
        self.username = username
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: dict | None = None) -> tuple[int, str, str]:
        """Send one request, keep the cookies it sets, and return (status, Location header, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if fields is not None:
            body = urlencode(fields, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                parsed = http.cookies.SimpleCookie(header)
                for name, morsel in parsed.items():
                    self.cookies[name] = morsel.value
            return response.status, response.getheader("Location", ""), text
        finally:
            connection.close()

    def log_in(self) -> None:
        status, _, page = self.request("GET", "/accounts/login/")
        assert status == 200, f"GET /accounts/login/ returned {status}"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "the login page has no CSRF token field"
        fields = {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1), "next": "/"}
        status, location, _ = self.request("POST", "/accounts/login/", fields)
        assert status == 302, f"login of {self.username} returned {status}"
        assert "sessionid" in self.cookies, f"login of {self.username} set no session cookie"

    def post(self, path: str, fields: dict) -> tuple[int, str, str]:
        # The login rotates the CSRF cookie, and its current value is a valid form token.
        return self.request("POST", path, {**fields, "csrfmiddlewaretoken": self.cookies["csrftoken"]})


@dataclass
class Plan:
    """What each client saves: listings with label sets, and games with the listing to pin."""

    labels: dict[int, list[tuple[int, list[str]]]] = field(default_factory=dict)
    pins: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def saves(self, client: int) -> list[Save]:
        """Return the client's saves in order: every PIN_EVERY-th one a pin, the others label saves."""
        labels = iter(self.labels[client])
        pins = iter(self.pins[client])
        result = []
        for number in range(1, REQUESTS_PER_CLIENT + 1):
            result.append(pin_save(*next(pins)) if number % PIN_EVERY == 0 else label_save(*next(labels)))
        return result


def make_plan(listings: list[tuple[int, int]]) -> Plan:
    """Give every client its own listings to label and its own games to pin, so each final state is known."""
    by_game: dict[int, list[int]] = {}
    for listing, game in listings:
        by_game.setdefault(game, []).append(listing)
    games = sorted(game for game, members in by_game.items() if len(members) >= 2)
    pin_games = games[: CLIENTS * PINS_PER_CLIENT]
    label_listings = sorted(listing for listing, game in listings if game not in set(pin_games))
    assert len(pin_games) == CLIENTS * PINS_PER_CLIENT, "too few games with two listings to pin"
    assert len(label_listings) >= CLIENTS * LABELS_PER_CLIENT, "too few listings to label"
    plan = Plan()
    for client in range(CLIENTS):
        mine = label_listings[client * LABELS_PER_CLIENT : (client + 1) * LABELS_PER_CLIENT]
        plan.labels[client] = [
            (listing, [LABEL_CLASSES[(client + index) % len(LABEL_CLASSES)]]) for index, listing in enumerate(mine)
        ]
        plan.pins[client] = [
            (game, by_game[game][-1]) for game in pin_games[client * PINS_PER_CLIENT : (client + 1) * PINS_PER_CLIENT]
        ]
    return plan


def send_saves(client: int, staff: StaffClient, saves: list[Save], outcomes: list[Outcome], lock: threading.Lock) -> None:
    for save in saves:
        started = time.monotonic()
        try:
            status, location, body = staff.post(save.path, save.fields)
        except OSError as exc:
            status, location, body = 0, "", f"request failed: {exc}"
        outcome = Outcome(client, save, status, location, started, time.monotonic())
        if status != 302 or location != save.expected_location:
            outcome.body = body[:2000] or "(empty body)"
        with lock:
            outcomes.append(outcome)


def send_concurrently(staff: list[StaffClient], saves: list[list[Save]]) -> tuple[list[Outcome], float, float]:
    """Send each client's saves from its own thread, and return the outcomes with the start and end times."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=send_saves, args=(client, member, saves[client], outcomes, lock), daemon=True)
        for client, member in enumerate(staff)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, started + TRAFFIC_LIMIT_S - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"clients still busy after {TRAFFIC_LIMIT_S} s"
    return outcomes, started, time.monotonic()


def assert_all_saved(outcomes: list[Outcome], expected_count: int, log_path) -> None:
    assert len(outcomes) == expected_count
    failed = [outcome for outcome in outcomes if outcome.body]
    assert failed == [], f"{len(failed)} saves failed; first: {failed[0] if failed else None}"
    log = log_path.read_text()
    for error in LOCK_ERRORS:
        assert error not in log, f"the server log contains {error!r}"


@dataclass
class SweepRun:
    started: float
    ended: float
    returncode: int
    output: str


def sweep_until(home, stop: threading.Event, runs: list[SweepRun]) -> None:
    """Run full sweeps one after another until ``stop`` is set, at least once, within TRAFFIC_LIMIT_S."""
    deadline = time.monotonic() + TRAFFIC_LIMIT_S
    while True:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "coverpick.cli", "sweep", "--rescan-all", "--apply", "--quiet"],
            env=home.env(),
            capture_output=True,
            text=True,
            timeout=TRAFFIC_LIMIT_S,
        )
        runs.append(SweepRun(started, time.monotonic(), result.returncode, result.stdout + result.stderr))
        if stop.is_set() or time.monotonic() > deadline:
            return


@pytest.fixture
def home(tmp_path):
    with cloned_home(template_home(session_engine()), tmp_path / "home") as scratch:
        scratch.coverpick("sweep", "--apply", "--quiet")
        scratch.query(CREATE_STAFF)
        yield scratch


@pytest.fixture
def server(home, tmp_path):
    """Start `coverpick serve` on a free port of 127.0.0.1 and yield (port, log path). The server stops afterwards."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "coverpick.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=home.env(COVERPICK_SECRET_KEY="reliability-test-secret-key-" + "x" * 40),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_LIMIT_S
        while True:
            assert process.poll() is None, "coverpick serve exited:\n" + log_path.read_text()[-3000:]
            try:
                status, _, _ = StaffClient(port, "probe").request("GET", "/accounts/login/")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"coverpick serve did not answer within {SERVER_START_LIMIT_S} s"
            time.sleep(0.5)
        yield port, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def logged_in_staff(port: int, count: int) -> list[StaffClient]:
    staff = [StaffClient(port, f"staff{number}") for number in range(count)]
    for member in staff:
        member.log_in()
    return staff


def test_saves_during_sweeps_all_succeed(home, server):
    port, log_path = server
    plan = make_plan([tuple(row) for row in home.query(CATALOGUE_SHAPE)])
    staff = logged_in_staff(port, CLIENTS)

    stop = threading.Event()
    runs: list[SweepRun] = []
    sweeper = threading.Thread(target=sweep_until, args=(home, stop, runs), daemon=True)
    sweeper.start()
    outcomes, traffic_started, traffic_ended = send_concurrently(staff, [plan.saves(client) for client in range(CLIENTS)])
    stop.set()
    sweeper.join(timeout=TRAFFIC_LIMIT_S)
    assert not sweeper.is_alive(), "the last sweep did not finish"

    assert_all_saved(outcomes, CLIENTS * REQUESTS_PER_CLIENT, log_path)

    # The sweeps succeeded, and a sweep process was running during every save.
    assert [run.returncode for run in runs if run.returncode != 0] == [], runs[-1].output[-3000:]
    assert "Verdict rows written" in runs[0].output
    assert runs[0].started <= traffic_started
    assert runs[-1].ended >= traffic_ended
    alone = [o for o in outcomes if not any(run.started < o.ended and run.ended > o.started for run in runs)]
    assert alone == []

    # Every saved label and pin is in the database. A label row keeps its old
    # author when the saved set equals the imported one, so only pins are
    # checked for the account that saved them.
    state = home.query(SAVED_STATE)
    labels = {listing: labels for listing, labels in state["labels"]}
    for client in range(CLIENTS):
        for listing, saved in plan.labels[client]:
            assert labels.get(listing) == saved, f"label of listing {listing}"
    pins = {listing: user for listing, user in state["pins"]}
    primaries = dict(state["primaries"])
    for client in range(CLIENTS):
        for game, listing in plan.pins[client]:
            assert pins.get(listing) == f"staff{client}", f"pin of listing {listing}"
            assert primaries[game] == listing, f"primary of game {game}"
    assert state["heads_rows"] == state["listings"]


def test_saves_wait_for_held_sqlite_write_lock(home, server):
    if home.engine != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock; the sweep test covers concurrent writes there")
    port, log_path = server
    plan = make_plan([tuple(row) for row in home.query(CATALOGUE_SHAPE)])
    staff = logged_in_staff(port, HOLDING_CLIENTS)
    saves = [[label_save(*item) for item in plan.labels[client][:2]] for client in range(HOLDING_CLIENTS)]

    # Another connection holds SQLite's write lock for HOLD_S seconds, as a long
    # sweep transaction would. The saves must wait for it, not fail.
    lock_taken = threading.Event()

    def hold_write_lock() -> None:
        with contextlib.closing(sqlite3.connect(home.sqlite_path, isolation_level=None)) as holder:
            holder.execute("BEGIN IMMEDIATE")
            lock_taken.set()
            time.sleep(HOLD_S)
            holder.execute("COMMIT")

    holder = threading.Thread(target=hold_write_lock, daemon=True)
    holder.start()
    assert lock_taken.wait(timeout=30), "taking the SQLite write lock timed out"
    outcomes, _, _ = send_concurrently(staff, saves)
    holder.join(timeout=30)

    assert_all_saved(outcomes, HOLDING_CLIENTS * 2, log_path)
    assert max(outcome.seconds for outcome in outcomes) >= HOLD_S / 2, "no save waited for the lock"
    labels = {listing: labels for listing, labels in home.query(SAVED_STATE)["labels"]}
    for client in range(HOLDING_CLIENTS):
        for listing, saved in plan.labels[client][:2]:
            assert labels.get(listing) == saved, f"label of listing {listing}"

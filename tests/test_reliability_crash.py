"""A sweep killed with SIGKILL loses at most its open chunk, and running it again completes it without duplicates.

Each test runs `coverpick sweep --apply` in a child process on a clone of the
template home (see tests/test_reliability_homes.py), on the session's engine:
a SQLite file, or a separate PostgreSQL database when DATABASE_URL names one.

To make the kill land at a known point, the child runs the real sweep through
a wrapper that lowers the chunk size to CHUNK_GAMES games. In chunk KILL_CHUNK
only, the wrapper sleeps after the chunk's old rows are deleted and its new
rows inserted, inside the sweep's own transaction and before it commits. The
test kills the child during that sleep. The second run is the unmodified
`coverpick sweep` command.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from tests.test_reliability_homes import cloned_home, session_engine, template_home

pytestmark = pytest.mark.slow

CHUNK_GAMES = 10
KILL_CHUNK = 3
KILL_WAIT_S = 300

PAUSING_SWEEP = f"""
import os, sys, time
import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
django.setup()

from django.core.management import call_command

from coverpick.catalogue.models import Verdict
from coverpick.model import sweep as sweep_module

sweep_module.GAMES_PER_CHUNK = {CHUNK_GAMES}
manager = Verdict.objects
bulk_create = manager.bulk_create
chunks_written = 0


def bulk_create_then_pause(*args, **kwargs):
    # The sweep calls this once per chunk, inside the transaction that first
    # deleted the chunk's old rows, so the pause keeps that transaction open.
    global chunks_written
    created = bulk_create(*args, **kwargs)
    chunks_written += 1
    print(f"chunk {{chunks_written}} written, not committed", flush=True)
    if chunks_written == {KILL_CHUNK}:
        time.sleep(600)
    return created


manager.bulk_create = bulk_create_then_pause
call_command("sweep", *sys.argv[1:])
"""

SNAPSHOT = """
from coverpick.catalogue.models import Listing, Verdict

listings = list(Listing.objects.values_list("pk", "edition__game_id"))
rows = list(
    Verdict.objects.filter(source=Verdict.SOURCE_CLASSIFIER).values_list(
        "pk", "listing_id", "classifier_version__kind", "quality", "platform", "error"
    )
)
print(json.dumps({"listings": listings, "rows": rows}))
"""


class Snapshot:
    """Listings and classifier verdict rows of a home, read in a child process."""

    def __init__(self, data: dict):
        self.game_of = {listing: game for listing, game in data["listings"]}
        self.rows = [tuple(row) for row in data["rows"]]

    def keys(self) -> Counter:
        """Count rows per (listing id, classifier kind). A count above 1 is a duplicate."""
        return Counter((row[1], row[2]) for row in self.rows)

    def row_ids(self) -> dict[tuple[int, str], int]:
        return {(row[1], row[2]): row[0] for row in self.rows}

    def contents(self) -> dict[tuple[int, str], tuple]:
        """Map (listing id, classifier kind) to (quality, platform, error)."""
        return {(row[1], row[2]): row[3:] for row in self.rows}

    def games_in_order(self) -> list[int]:
        return sorted(set(self.game_of.values()))

    def listings_of(self, games) -> set[int]:
        chosen_games = set(games)
        return {listing for listing, game in self.game_of.items() if game in chosen_games}


def snapshot(home) -> Snapshot:
    return Snapshot(home.query(SNAPSHOT))


def kill_sweep_in_open_chunk(home, *args: str) -> str:
    """Run the pausing sweep, SIGKILL it while chunk KILL_CHUNK is uncommitted, and return its output."""
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSING_SWEEP, "--apply", "--quiet", *args],
        env=home.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read_output() -> None:
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_output, daemon=True).start()
    output = []
    marker = f"chunk {KILL_CHUNK} written, not committed"
    deadline = time.monotonic() + KILL_WAIT_S
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail("The sweep ended before the kill point:\n" + "".join(output)[-3000:])
            output.append(line)
            if marker in line:
                break
    except queue.Empty:
        pytest.fail(f"No {marker!r} within {KILL_WAIT_S} s:\n" + "".join(output)[-3000:])
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return "".join(output)


@pytest.fixture
def home(tmp_path):
    with cloned_home(template_home(session_engine()), tmp_path / "home") as scratch:
        yield scratch


def committed_games(state: Snapshot) -> list[int]:
    """Return the games of the chunks that committed before the kill: chunks 1 to KILL_CHUNK - 1."""
    return state.games_in_order()[: (KILL_CHUNK - 1) * CHUNK_GAMES]


def assert_no_duplicates(state: Snapshot) -> None:
    duplicates = {key: count for key, count in state.keys().items() if count > 1}
    assert duplicates == {}


def assert_one_heads_row_per_listing(state: Snapshot) -> None:
    with_heads = {listing for listing, kind in state.keys() if kind == "heads"}
    assert with_heads == set(state.game_of)


def test_killed_pending_sweep_resumes_to_full_result(home, tmp_path):
    fresh = snapshot(home)
    assert fresh.rows == []
    games = fresh.games_in_order()
    assert len(games) > KILL_CHUNK * CHUNK_GAMES, "the catalogue is too small to kill the sweep mid-run"

    output = kill_sweep_in_open_chunk(home)
    assert "chunk 2 written, not committed" in output

    killed = snapshot(home)
    assert_no_duplicates(killed)
    expected_listings = killed.listings_of(committed_games(killed))
    assert {listing for listing, kind in killed.keys() if kind == "heads"} == expected_listings
    assert {listing for listing, _ in killed.keys()} <= expected_listings

    rerun = home.coverpick("sweep", "--apply", "--quiet")
    assert f"Listings selected: {len(killed.game_of) - len(expected_listings)}," in rerun.stdout

    resumed = snapshot(home)
    assert_no_duplicates(resumed)
    assert_one_heads_row_per_listing(resumed)

    # The killed and resumed sweep stores what one uninterrupted sweep stores.
    with cloned_home(template_home(session_engine()), tmp_path / "reference") as reference:
        reference.coverpick("sweep", "--apply", "--quiet")
        assert resumed.contents() == snapshot(reference).contents()


def test_killed_rescan_keeps_previous_rows(home):
    home.coverpick("sweep", "--apply", "--quiet")
    before = snapshot(home)
    assert_no_duplicates(before)
    assert_one_heads_row_per_listing(before)

    kill_sweep_in_open_chunk(home, "--rescan-all")

    killed = snapshot(home)
    assert_no_duplicates(killed)
    assert set(killed.keys()) == set(before.keys())
    rewritten = killed.listings_of(committed_games(killed))
    old_ids, new_ids = before.row_ids(), killed.row_ids()
    for key, row_id in old_ids.items():
        if key[0] in rewritten:
            assert new_ids[key] != row_id, f"row {key} of a committed chunk was not replaced"
        else:
            assert new_ids[key] == row_id, f"row {key} changed although its chunk was rolled back"

    rerun = home.coverpick("sweep", "--apply", "--rescan-all", "--quiet")
    assert f"Listings selected: {len(killed.game_of)}," in rerun.stdout

    after = snapshot(home)
    assert_no_duplicates(after)
    assert set(after.keys()) == set(before.keys())
    final_ids = after.row_ids()
    assert all(final_ids[key] != row_id for key, row_id in old_ids.items())
    assert after.contents() == before.contents()


def test_snapshot_counts_duplicates():
    state = Snapshot(
        {
            "listings": [[1, 10], [2, 10], [3, 11]],
            "rows": [[7, 1, "heads", "clean", "sony", None], [8, 1, "heads", "clean", "sony", None], [9, 2, "phase1", None, "sony", None]],
        }
    )
    assert state.keys()[(1, "heads")] == 2
    assert state.listings_of([10]) == {1, 2}
    with pytest.raises(AssertionError):
        assert_no_duplicates(state)

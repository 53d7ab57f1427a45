"""PostgreSQL and SQLite give the same trained heads, verdicts and primary covers for the same catalogue.

Runs only when DATABASE_URL names PostgreSQL. Both sides are template homes
(see tests/test_reliability_homes.py): two feeds of the sample catalogue with
their labels, imported and trained with seed 0 in child processes, one on a
separate PostgreSQL database and one on a SQLite file. Each side then runs
`coverpick sweep --apply` and `coverpick rank` on a clone, and the exports of
both are compared. The feature cache is shared, so both sides train on the same
features, and training is deterministic for a fixed seed and thread count.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_reliability_homes import cloned_home, session_postgres_url, template_home

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        session_postgres_url() is None,
        reason="compares PostgreSQL with SQLite; set DATABASE_URL to a PostgreSQL database to run it",
    ),
]


def heads_arrays(home) -> dict[str, np.ndarray]:
    (weights,) = sorted((home.folder / "models").glob("heads-*/heads.npz"))
    with np.load(weights, allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def exported(home, what: str, dropped: tuple[str, ...] = ()) -> list[dict]:
    """Return `coverpick export WHAT` records without the ``dropped`` keys, in a fixed order.

    Sorting makes the comparison independent of title collation, which
    differs between a PostgreSQL cluster's locale and SQLite's binary order.
    """
    output = home.coverpick("export", what).stdout
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    for record in records:
        for key in dropped:
            record.pop(key)
    return sorted(records, key=lambda record: json.dumps(record, sort_keys=True))


@pytest.fixture(scope="module")
def ranked_homes(tmp_path_factory):
    """Yield (PostgreSQL home, SQLite home), each swept and ranked from its template."""
    folder = tmp_path_factory.mktemp("parity")
    postgres_template = template_home("postgresql")
    sqlite_template = template_home("sqlite")
    with cloned_home(postgres_template, folder / "postgresql") as postgres, cloned_home(sqlite_template, folder / "sqlite") as sqlite:
        for home in (postgres, sqlite):
            home.coverpick("sweep", "--apply", "--quiet")
            home.coverpick("rank")
        yield postgres, sqlite


def test_training_gives_identical_heads(ranked_homes):
    postgres, sqlite = ranked_homes
    on_postgres, on_sqlite = heads_arrays(postgres), heads_arrays(sqlite)
    assert sorted(on_postgres) == sorted(on_sqlite)
    for name in on_postgres:
        assert np.array_equal(on_postgres[name], on_sqlite[name]), f"{name} differs between PostgreSQL and SQLite"


def test_sweep_gives_identical_verdicts(ranked_homes):
    postgres, sqlite = ranked_homes
    # The version name carries the training time, so it differs between the two runs.
    on_postgres = exported(postgres, "verdicts", dropped=("classifier_version",))
    on_sqlite = exported(sqlite, "verdicts", dropped=("classifier_version",))
    assert len(on_postgres) == len(on_sqlite) > 0
    assert on_postgres == on_sqlite


def test_ranking_gives_identical_primaries(ranked_homes):
    postgres, sqlite = ranked_homes
    on_postgres, on_sqlite = exported(postgres, "primaries"), exported(sqlite, "primaries")
    assert len(on_postgres) == len(on_sqlite) > 0
    assert all(record["product_id"] for record in on_postgres)
    assert on_postgres == on_sqlite

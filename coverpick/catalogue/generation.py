"""The catalogue generation: a token that changes whenever anything a public page shows is written.

The public page cache (coverpick.web.page_cache) keeps a rendered page
together with the generation it was rendered at, and serves it only while
the generation is unchanged. Correctness therefore rests on one property:
no committed write to a table that a public page reads can leave the
generation unchanged.

Database triggers provide that property, not Python code. Migration 0004
installs AFTER INSERT, UPDATE and DELETE triggers (and TRUNCATE on
PostgreSQL) on every table that a page reads, ``TRACKED_TABLES``. A trigger
fires inside the writing transaction for every writer: the importer, the
sweep, ``coverpick rank``, manual labels, pins, a web form, another process
such as the tick, or raw SQL. So a new write path cannot
forget to invalidate the cache, and the new generation becomes visible in
the same commit as the data it describes. A Python hook (model signals, or a
helper that every writer calls) would miss ``QuerySet.update()``,
``bulk_create()``, raw SQL and any writer added later.

How the token is kept depends on the database:

- SQLite: each row trigger increments the single row of
  ``coverpick_catalogue_generation``. SQLite lets one transaction write at a
  time, so the counter row adds no lock that writers did not already queue
  on. A deleted row comes back seeded from the clock, so no committed value
  repeats.
- PostgreSQL: a single counter row would be a new lock that every writing
  transaction takes at its first write. A transaction holding it and then
  waiting for a row lock could deadlock with one that holds that row lock
  and waits for the counter: a pin locks its game's row, and a label save's
  foreign-key check takes a share lock on the same game row at commit. So
  each writing transaction instead writes a row of its own, keyed by its
  transaction id, into ``coverpick_catalogue_writer``. The token is the
  largest committed writer id plus the ids of transactions still running
  below it. A commit either raises the largest id or removes an id from the
  running list, so the token changes whenever a write becomes visible. The
  reading transaction's own uncommitted writes, which only it sees, add
  their statement count to its token. Each writer's first statement deletes
  older committed rows with SKIP LOCKED, so pruning never waits and the
  largest committed id always survives.

Other databases get no triggers, ``current_generation`` returns None, and
the page cache stays off.

Readers must call ``current_generation`` before they read the data they
render. Data read afterwards is at least as new as the token, so a page
stored under a token is never older than that token.
"""

from __future__ import annotations

from django.db import connections

# Tables whose rows a public page shows or ranks by, as migration 0004 lists
# them. AuditEvent is left out, because no public page reads it.
TRACKED_TABLES = (
    "catalogue_shop",
    "catalogue_game",
    "catalogue_edition",
    "catalogue_coverimage",
    "catalogue_listing",
    "catalogue_classifierversion",
    "catalogue_verdict",
)

SQLITE_COUNTER_TABLE = "coverpick_catalogue_generation"
POSTGRESQL_WRITER_TABLE = "coverpick_catalogue_writer"
TRIGGER_PREFIX = "coverpick_generation_"

_SQLITE_READ = f"SELECT value FROM {SQLITE_COUNTER_TABLE} WHERE id = 1"

# The snapshot that pg_current_snapshot() returns is the statement's own, so
# the largest writer id and the running list come from the same instant. The
# third column is the number of write statements of the reading transaction
# itself, when it has written: its own writes change what it reads before
# they commit. Other transactions never see that uncommitted row.
_POSTGRESQL_READ = f"""
SELECT newest.txid,
       ARRAY(
           SELECT running::text::bigint
           FROM pg_snapshot_xip(pg_current_snapshot()) AS running
           WHERE running::text::bigint < newest.txid
           ORDER BY 1
       ),
       (SELECT statements FROM {POSTGRESQL_WRITER_TABLE} WHERE txid = pg_current_xact_id_if_assigned()::text::bigint)
FROM (SELECT max(txid) AS txid FROM {POSTGRESQL_WRITER_TABLE}) AS newest
"""


def current_generation(using: str = "default") -> str | None:
    """Return the catalogue generation as a short string, or None when it is unknown.

    None means a page must not be served from or stored in the cache: the
    database is neither SQLite nor PostgreSQL, or nothing has been written
    since the tracking tables were emptied (only a test database flush does that).
    """
    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(_SQLITE_READ)
            row = cursor.fetchone()
        return None if row is None else f"s{row[0]}"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_POSTGRESQL_READ)
            newest, running, own_statements = cursor.fetchone()
        if newest is None:
            return None
        return f"p{newest}" + "".join(f"-{txid}" for txid in running) + f"/{own_statements or 0}"
    return None

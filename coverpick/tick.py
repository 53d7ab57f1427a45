"""`coverpick tick`: the timer's command. Counts pending listings with plain SQL and exits at once when none.

Only the standard library (and psycopg for PostgreSQL) is imported before the
count, so an idle tick costs milliseconds; Django, numpy and ONNX Runtime are
loaded only when there is work.
"""

from __future__ import annotations

import os
import sys
import time

# Listings with no verdict row from the active trained heads. A catalogue with
# no active heads has nothing the tick can do. The active version's id is an
# uncorrelated subquery, which the database evaluates once, so each listing
# costs one probe of the (listing, classifier version) unique index. On the
# benchmark's 6,149-listing SQLite catalogue this took 1.4 ms, against 3.8 ms
# when every probe joined the version table (AMD EPYC core, warm page cache).
ACTIVE_HEADS_SQL = "(SELECT id FROM catalogue_classifierversion WHERE kind = 'heads' AND is_active LIMIT 1)"
PENDING_SQL = (
    f"SELECT COUNT(*) FROM catalogue_listing l WHERE EXISTS {ACTIVE_HEADS_SQL} "
    "AND NOT EXISTS (SELECT 1 FROM catalogue_verdict d "
    f"WHERE d.listing_id = l.id AND d.classifier_version_id = {ACTIVE_HEADS_SQL})"
)


ACTIVE_COUNT_SQL = "SELECT COUNT(*) FROM catalogue_classifierversion WHERE kind = 'heads' AND is_active"
USAGE = "usage: coverpick tick [--quiet]"


class TickError(Exception):
    """The tick cannot count pending listings: no database, or one without coverpick's tables."""


def _counts(connection) -> int | None:
    """Return the pending count, or None when no heads version is active."""
    pending = int(connection.execute(PENDING_SQL).fetchone()[0])
    if pending == 0 and int(connection.execute(ACTIVE_COUNT_SQL).fetchone()[0]) == 0:
        return None
    return pending


def count_pending() -> int | None:
    """Return the number of listings without a verdict from the active heads, or None when no heads are active.

    Raises TickError when the database is missing or has no coverpick tables.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        if not url.startswith(("postgres://", "postgresql://")):
            raise SystemExit(
                f"coverpick tick: DATABASE_URL uses {url.split(':', 1)[0]}://, which coverpick does not support. "
                "Use postgresql://user:password@host:port/name, or unset it to use SQLite in COVERPICK_HOME."
            )
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as connection:
                return _counts(connection)
        except psycopg.errors.UndefinedTable as exc:
            raise TickError(f"the PostgreSQL database has no coverpick tables ({exc}). Run `coverpick migrate`.") from exc
        except psycopg.errors.UndefinedColumn as exc:
            raise TickError(f"the PostgreSQL database lacks some of coverpick's migrations ({exc}). Run `coverpick migrate`.") from exc
        except psycopg.OperationalError as exc:
            raise TickError(f"connection to the PostgreSQL database in DATABASE_URL failed ({exc}). Check that the server is running and the URL is right.") from exc
    import sqlite3

    from coverpick.conf import file_in_the_way, home, sqlite_path

    path = sqlite_path()
    if file_in_the_way(path.parent) is not None:
        raise TickError(
            f"COVERPICK_HOME={str(home())!r} cannot be used as coverpick's folder (a file is in the way). "
            "Set COVERPICK_HOME to a folder that exists or that coverpick may create."
        )
    if not path.is_file():
        raise TickError(
            f"no database at {path}. Check COVERPICK_HOME, or run `coverpick migrate` and `coverpick import` to create the catalogue."
        )
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return _counts(connection)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise TickError(f"the database {path} has no coverpick tables ({exc}). Run `coverpick migrate`.") from exc
        if "no such column" in str(exc):
            raise TickError(f"the database {path} lacks some of coverpick's migrations ({exc}). Run `coverpick migrate`.") from exc
        raise
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    if argv and argv[0] in {"-h", "--help"}:
        print(
            f"{USAGE}\n\nSweep pending listings with the active heads and choose every game's primary cover again; "
            "exit at once when there are none.\n\noptions:\n"
            "  --quiet  print nothing when no listing is pending (errors and the sweep's summary still print)"
        )
        return 0
    unknown = [argument for argument in argv if argument != "--quiet"]
    if unknown:
        sys.stderr.write(f"{USAGE}\ncoverpick tick: unknown argument(s): {' '.join(unknown)}\n")
        return 2
    quiet = "--quiet" in argv
    started = time.monotonic()
    try:
        pending = count_pending()
    except TickError as exc:
        sys.stderr.write(f"coverpick tick: {exc}\n")
        return 1
    if pending is None:
        # Printed even with --quiet: until a model is active the timer sweeps nothing.
        sys.stderr.write("coverpick tick: no active classifier, so nothing is swept. Run `coverpick train --activate`.\n")
        return 0
    if pending == 0:
        if not quiet:
            print(f"No pending listings ({(time.monotonic() - started) * 1000:.0f} ms)")
        return 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    import django

    from coverpick.conf import SettingError

    try:
        django.setup()
    except SettingError as exc:
        sys.stderr.write(f"coverpick tick: {exc}\n")
        return 1
    from coverpick.cli import schema_behind_message

    # The count reads columns that every schema has, so a database that lacks
    # a later migration is found here, before the sweep writes anything.
    behind = schema_behind_message("coverpick tick")
    if behind:
        sys.stderr.write(f"coverpick tick: {behind}\n")
        return 1
    from coverpick.model.sweep import sweep
    from coverpick.ranking import compute_primaries

    summary = sweep(apply=True, progress=False)
    compute_primaries()
    for line in summary.lines():
        print(line)
    return 0

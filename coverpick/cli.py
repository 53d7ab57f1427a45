"""The `coverpick` console script: runs Django management commands with coverpick's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        # Django's own --version would print Django's version.
        from importlib.metadata import version

        print(f"coverpick {version('coverpick')}")
        return 0
    if args[:2] == ["help", "tick"]:
        args = ["tick", "--help"]
    if args and args[0] == "tick":
        # The timer's command decides before importing Django whether there is work.
        from coverpick.tick import main as tick_main

        return tick_main(args[1:])
    missing = _missing_sqlite_database(args)
    if missing:
        sys.stderr.write(missing + "\n")
        return 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    from django.core.management import execute_from_command_line

    from django.db.utils import OperationalError, ProgrammingError

    if not args:
        args = ["help"]
    from coverpick.conf import SettingError

    try:
        behind = _schema_behind(args)
        if behind:
            sys.stderr.write(behind + "\n")
            return 1
        execute_from_command_line(["coverpick", *args])
        if args in (["help"], ["--help"], ["-h"]):
            # tick runs before Django loads, so Django's list of commands lacks it.
            print("\n[coverpick, without Django]\n    tick")
    except SettingError as exc:
        sys.stderr.write(f"coverpick: {exc}\n")
        return 1
    except (OperationalError, ProgrammingError) as exc:
        if isinstance(exc, OperationalError) and _unreachable(exc):
            sys.stderr.write(
                f"coverpick: cannot connect to the database in DATABASE_URL ({' '.join(str(exc).split())}). "
                "Check that the server is running and that the URL's host, port, user and database are right.\n"
            )
            return 1
        if not _missing_table(exc):
            raise
        from django.conf import settings

        database = settings.DATABASES["default"]
        where = database["NAME"] if "sqlite" in database["ENGINE"] else f"{database['ENGINE'].rsplit('.', 1)[-1]} database {database['NAME']}"
        sys.stderr.write(
            f"The database {where} has no coverpick tables yet ({exc}). "
            "Run `coverpick migrate` with the same COVERPICK_HOME or DATABASE_URL, then run this command again.\n"
        )
        return 1
    return 0


# Commands that read or change an existing catalogue. Run on a home without a
# database they would create an empty one (and the folder) before failing.
NEEDS_CATALOGUE = {
    "audit-labels", "calibrate", "createstaff", "evaluate", "export", "import", "rank", "report", "serve", "shops", "sweep", "train",
}


def _missing_sqlite_database(args: list[str]) -> str | None:
    """Return an error message when a catalogue command would run on an SQLite database that does not exist."""
    if not args or args[0] not in NEEDS_CATALOGUE or os.environ.get("DATABASE_URL"):
        return None
    if any(argument in ("-h", "--help") for argument in args[1:]):
        return None
    from coverpick.conf import SettingError, file_in_the_way, home, sqlite_path

    try:
        path = sqlite_path()
    except SettingError:
        return None
    if path.is_file():
        return None
    if file_in_the_way(path.parent) is not None:
        return (
            f"COVERPICK_HOME={str(home())!r} cannot be used as coverpick's folder (a file is in the way). "
            "Set COVERPICK_HOME to a folder that exists or that coverpick may create."
        )
    return (
        f"No database at {path} (COVERPICK_HOME is {home()}). Check COVERPICK_HOME, "
        "or run `coverpick migrate` to create the catalogue there, then run this command again."
    )


def _schema_behind(args: list[str]) -> str | None:
    """Return an error message when a catalogue command would run on a database that lacks some of coverpick's migrations.

    Such a command would otherwise fail part way, on the first missing column,
    after it had already written rows. A database with no migrations at all
    is left to the "no coverpick tables" message.
    """
    if not args or args[0] not in NEEDS_CATALOGUE or any(argument in ("-h", "--help") for argument in args[1:]):
        return None
    import django

    django.setup()
    return schema_behind_message(f"coverpick {args[0]}")


def schema_behind_message(command: str) -> str | None:
    """Return an error message naming the migrations that a migrated database lacks, or None when it has them all.

    Django must be set up. A database with no migrations at all gives None.
    """
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if not executor.loader.applied_migrations:
        return None
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label} {migration.name}" for migration, backwards in plan if not backwards]
    if not pending:
        return None
    return (
        f"The database lacks {len(pending)} of coverpick's migrations ({', '.join(pending)}), so `{command}` "
        "was not run and nothing was changed. Run `coverpick migrate` with the same COVERPICK_HOME or DATABASE_URL, "
        "then run this command again."
    )


def _unreachable(error: Exception) -> bool:
    """Tell whether a database error means no session could be opened (PostgreSQL wording)."""
    text = str(error)
    return "connection to server" in text or "could not connect" in text or "password authentication failed" in text


def _missing_table(error: Exception) -> bool:
    """Tell whether a database error means the schema was never created (SQLite or PostgreSQL wording)."""
    text = str(error)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


if __name__ == "__main__":
    sys.exit(main())

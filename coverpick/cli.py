"""The `coverpick` console script: runs Django management commands with coverpick's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["help", "tick"]:
        args = ["tick", "--help"]
    if args and args[0] == "tick":
        # The timer's command decides before importing Django whether there is work.
        from coverpick.tick import main as tick_main

        return tick_main(args[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    from django.core.management import execute_from_command_line

    from django.db.utils import OperationalError, ProgrammingError

    if not args:
        args = ["help"]
    from coverpick.conf import SettingError

    try:
        execute_from_command_line(["coverpick", *args])
        if args in (["help"], ["--help"], ["-h"]):
            # tick runs before Django loads, so Django's list of commands lacks it.
            print("\n[coverpick, without Django]\n    tick")
    except SettingError as exc:
        sys.stderr.write(f"coverpick: {exc}\n")
        return 1
    except (OperationalError, ProgrammingError) as exc:
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


def _missing_table(error: Exception) -> bool:
    """Tell whether a database error means the schema was never created (SQLite or PostgreSQL wording)."""
    text = str(error)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


if __name__ == "__main__":
    sys.exit(main())

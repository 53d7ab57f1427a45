"""The `coverpick` console script: runs Django management commands with coverpick's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "tick":
        # The timer's command decides before importing Django whether there is work.
        from coverpick.tick import main as tick_main

        return tick_main(args[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    from django.core.management import execute_from_command_line

    if not args:
        args = ["help"]
    execute_from_command_line(["coverpick", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())

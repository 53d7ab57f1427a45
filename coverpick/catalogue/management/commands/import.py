"""coverpick import CATALOGUE_DIR: read every feed in feeds/, store covers, import labels.jsonl."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from coverpick.catalogue.importer import import_catalogue


class Command(BaseCommand):
    # Django's system checks import every web view (and matplotlib with them); this
    # command needs none of them.
    requires_system_checks = []
    help = "Import a catalogue folder: every feed in CATALOGUE_DIR/feeds/, their cover images, and labels.jsonl."

    def add_arguments(self, parser):
        parser.add_argument("catalogue_dir", type=Path, help="Folder holding feeds/ and optionally labels.jsonl")
        parser.add_argument("--no-labels", action="store_true", help="Skip labels.jsonl (default: import it when present)")
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bars")
        parser.add_argument(
            "--allow-mass-withdrawal",
            action="store_true",
            help="Mark listings out of stock even when a feed lacks more than half of its shop's listings in stock "
            "(default: such a feed is taken for a cut export and marks none)",
        )

    def handle(self, catalogue_dir: Path, no_labels: bool, quiet: bool, allow_mass_withdrawal: bool, **options):
        # Warnings go to stderr once each. Skipped rows and files do not change
        # the exit status, and a missing or wrong folder is a CommandError.
        try:
            summary = import_catalogue(
                catalogue_dir,
                with_labels=not no_labels,
                warn=lambda m: self.stderr.write(f"warning: {m}"),
                progress=not quiet and options.get("verbosity", 1) > 0,
                allow_mass_withdrawal=allow_mass_withdrawal,
            )
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise CommandError(str(exc)) from exc
        if options.get("verbosity", 1) == 0:
            # Django's -v 0: no progress bars and no summary, only the warnings, for scripts and timers.
            return
        for line in summary.lines():
            self.stdout.write(line)

"""coverpick report: write the recall and verdict charts and their counts to a folder."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from coverpick.reports import active_heads_version, write_report


class Command(BaseCommand):
    help = (
        "Write recall.png (validation recall per class of the active classifier version), "
        "verdicts.png (its verdicts across the catalogue) and counts.json (the numbers behind both) to a folder."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, help="Folder to write the files into; created if missing")

    def handle(self, out: Path, **options):
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a folder; name a folder (it is created if missing), such as {out}-report.")
        version = active_heads_version()
        if version is None:
            self.stderr.write(
                "No trained heads are active, so the charts only show a notice. Run `coverpick train --activate` first."
            )
        try:
            paths = write_report(out)
        except OSError as exc:
            raise CommandError(f"Failed to write the report to {out}: {exc}") from exc
        for path in paths:
            self.stdout.write(f"Wrote {path}")

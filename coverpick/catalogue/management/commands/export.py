"""coverpick export verdicts|primaries [--out FILE]."""

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from coverpick.exports import check_output_path, primary_records, verdict_records, write_jsonl, write_jsonl_file

NOUNS = {"verdicts": "verdict", "primaries": "primary cover"}


class Command(BaseCommand):
    help = "Write verdicts (one JSON object per listing) or primaries (one per game) as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["verdicts", "primaries"], help="What to export")
        parser.add_argument("--out", default="-", help="Output file (default: standard output)")

    def handle(self, what, out, **options):
        if out != "-":
            try:
                created = check_output_path(Path(out))
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if created is not None:
                self.stderr.write(f"Created the missing folder {created} for {out}")
        records = verdict_records() if what == "verdicts" else primary_records()
        if out == "-":
            try:
                count = write_jsonl(records, self.stdout)
                self.stdout.flush()
            except BrokenPipeError:
                # The reader stopped early (as `| head` does): stop quietly, and point
                # stdout at /dev/null so the interpreter's final flush does not fail too.
                records.close()
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
        else:
            count = write_jsonl_file(records, Path(out))
        where = "standard output" if out == "-" else out
        self.stderr.write(f"Wrote {count} {NOUNS[what]} records to {where}")

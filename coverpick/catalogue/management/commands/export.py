"""coverpick export verdicts|primaries [--out FILE]."""

from pathlib import Path

from django.core.management.base import BaseCommand

from coverpick.exports import primary_records, verdict_records, write_jsonl


class Command(BaseCommand):
    help = "Write verdicts (one JSON object per listing) or primaries (one per game) as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["verdicts", "primaries"], help="What to export")
        parser.add_argument("--out", default="-", help="Output file (default: standard output)")

    def handle(self, what, out, **options):
        records = verdict_records() if what == "verdicts" else primary_records()
        if out == "-":
            count = write_jsonl(records, self.stdout)
        else:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", encoding="utf-8") as handle:
                count = write_jsonl(records, handle)
        self.stderr.write(f"Wrote {count} {what} records to {'standard output' if out == '-' else out}")

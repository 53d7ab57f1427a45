"""coverpick demo: import, train, sweep and rank a catalogue, then print a summary."""

import tempfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from coverpick.demo import run_demo


class Command(BaseCommand):
    help = (
        "Run import → train → sweep → rank on a catalogue folder and print a summary. "
        "Without --catalogue, a small catalogue of drawn covers is generated first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--catalogue", type=Path, default=None, help="Catalogue folder with feeds/ and labels.jsonl")
        parser.add_argument("--games", type=int, default=40, help="Games in the generated catalogue (default: 40)")

    def handle(self, catalogue, games, **options):
        if games < 1:
            raise CommandError(f"--games must be at least 1, got {games}.")
        # Checked before the migration, so a mistyped folder leaves the home as it was.
        if catalogue is not None and not (catalogue / "feeds").is_dir():
            raise CommandError(f"{catalogue} has no feeds/ folder. Pass a catalogue folder, or omit --catalogue.")
        call_command("migrate", verbosity=0)
        if catalogue is not None:
            self._run(catalogue)
            return
        from coverpick.demo_catalogue import generate_catalogue

        # The import copies every image into the image store, so the generated
        # feeds and images are not needed once the demo has run.
        with tempfile.TemporaryDirectory(prefix="coverpick-demo-") as folder:
            generate_catalogue(Path(folder), games=games)
            self.stdout.write(f"Generated a sample catalogue of {games} games in {folder} (removed after the run)")
            self._run(Path(folder))

    def _run(self, catalogue: Path) -> None:
        # Each line is written and flushed as its step ends, so the steps show up
        # while the demo runs, also when the output goes to a file or a pipe.
        run_demo(catalogue, out=self._say)

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

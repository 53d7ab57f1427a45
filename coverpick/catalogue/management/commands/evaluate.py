"""coverpick evaluate --truth FILE: k-fold cross-validation grouped by game against reference labels."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Cross-validate the heads with folds grouped by game and score them against reference labels (truth.jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("--truth", type=Path, required=True, help="JSONL with shop, product_id, labels and image_family per listing")
        parser.add_argument("--folds", type=int, default=5, help="Number of folds (default: 5)")
        parser.add_argument("--seed", type=int, default=0, help="Seed for assigning games to folds (default: 0)")
        parser.add_argument("--json", type=Path, default=None, help="Also write the full result as JSON to this file")
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bar and the lines that mark each fold done")

    def handle(self, truth, folds, seed, quiet, json: Path | None = None, **options):
        from coverpick.model.evaluate import TruthError, cross_validate, format_report
        from coverpick.model.train import TrainingError

        if truth.is_dir():
            inside = truth / "truth.jsonl"
            hint = f" ({inside}?)" if inside.is_file() else ""
            raise CommandError(f"--truth {truth} is a folder; pass the reference file itself{hint}.")
        if not truth.is_file():
            raise CommandError(f"Reference file {truth} not found.")
        if folds < 2:
            raise CommandError(f"--folds must be at least 2, got {folds}.")
        if json is not None and not json.parent.is_dir():
            raise CommandError(f"The folder of --json {json} does not exist; create it or choose another path.")
        try:
            result = cross_validate(truth, folds=folds, seed=seed, progress=not quiet, report=None if quiet else self.stdout.write)
        except (TrainingError, TruthError) as exc:
            raise CommandError(str(exc)) from exc
        for line in format_report(result):
            self.stdout.write(line)
        if json is not None:
            json.write_text(_dumps(result))


def _dumps(result) -> str:
    return json.dumps(result, indent=2)

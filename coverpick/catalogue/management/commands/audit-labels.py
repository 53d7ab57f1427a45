"""coverpick audit-labels: rank human labels by how likely they are to be wrong."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Rank labelled covers by how likely their labels are wrong, from out-of-fold predictions and "
        "cleanlab's multi-label label quality, and write JSONL (most suspect first) plus a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, default=None, help="JSONL file to write (default: COVERPICK_HOME/audit/suspects.jsonl, the file the labelling queue reads)")
        parser.add_argument("--folds", type=int, default=5, help="Folds grouped by game (default: 5)")
        parser.add_argument("--seed", type=int, default=0, help="Seed for folds and initialisation (default: 0)")
        parser.add_argument("--top", type=int, default=15, help="Suspects listed in the summary (default: 15)")
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bar and the lines that mark each fold done")

    def handle(self, out, folds, seed, top, quiet, **options):
        from coverpick import conf
        from coverpick.exports import check_output_path, write_jsonl_file
        from coverpick.model.audit import audit_labels
        from coverpick.model.calibration import out_of_fold
        from coverpick.model.train import TrainingError, build_training_data
        from coverpick.web.queue import SUSPECT_LIMIT, SUSPECT_MIN_SCORE

        if folds < 2:
            raise CommandError(f"--folds must be at least 2, got {folds}.")
        if top < 0:
            raise CommandError(f"--top must be 0 or more, got {top}.")
        out = out or conf.home() / "audit" / "suspects.jsonl"
        # Check the output path before the cross-validation, which takes minutes.
        try:
            created = check_output_path(out)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if created is not None:
            self.stdout.write(f"Created the missing folder {created} for {out}")
        try:
            data = build_training_data(conf.backbone_id(), progress=not quiet)
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        oof = out_of_fold(data, folds=folds, seed=seed, progress=None if quiet else self.stdout.write)
        suspects = audit_labels(data, oof.quality)
        write_jsonl_file((suspect.record() for suspect in suspects), out)
        contradicting = sum(1 for s in suspects if s.contradicts_classifier)
        self.stdout.write(f"Audited {len(suspects)} labelled covers; wrote all of them to {out}, most suspect first")
        self.stdout.write(f"Manual labels contradicting a confident classifier verdict: {contradicting}")
        self.stdout.write(
            f"Most suspect {min(top, len(suspects))} (suspicion from 0 to 1, higher means the label is more likely wrong; "
            f"the labelling queue serves the first {SUSPECT_LIMIT} at {SUSPECT_MIN_SCORE} or more):"
        )
        for suspect in suspects[:top]:
            self.stdout.write(
                f"  {suspect.score:.3f}  {suspect.shop} {suspect.product_id}: labelled {'+'.join(suspect.labels)}, "
                f"model suggests {'+'.join(suspect.suggested)}"
            )

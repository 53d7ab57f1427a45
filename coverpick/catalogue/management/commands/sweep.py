"""coverpick sweep: predict verdicts with the active heads."""

from django.core.management.base import BaseCommand, CommandError

from coverpick.labels import ERROR_VERDICT, LABEL_CLASSES, UNKNOWN


class Command(BaseCommand):
    # Django's system checks import every web view (and matplotlib with them); this
    # command needs none of them.
    requires_system_checks = []
    help = (
        "Predict verdicts with the active heads for listings that have none from that version. "
        "Nothing is stored without --apply (the feature cache is still filled)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="Store the verdicts (default: dry run)")
        parser.add_argument("--rescan-all", action="store_true", help="Predict every listing again")
        parser.add_argument(
            "--rescan-verdicts", default=None,
            help="Comma-separated verdicts whose listings are predicted again, e.g. 3d_render,unknown; "
            "'error' picks the listings whose image could not be used",
        )
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bar")

    def handle(self, apply, rescan_all, rescan_verdicts, quiet, **options):
        from coverpick.model.heads import CheckpointMismatch
        from coverpick.model.sweep import sweep
        from coverpick.model.versions import NoActiveModel

        verdicts = [v.strip() for v in (rescan_verdicts or "").split(",") if v.strip()]
        if rescan_verdicts is not None and not verdicts:
            raise CommandError("--rescan-verdicts is empty; give verdicts such as 3d_render,unknown, or leave the option out.")
        valid = (*LABEL_CLASSES, UNKNOWN, ERROR_VERDICT)
        invalid = [v for v in verdicts if v not in valid]
        if invalid:
            raise CommandError(f"Unknown verdict(s) in --rescan-verdicts: {', '.join(invalid)}. Valid verdicts are: {', '.join(valid)}.")
        try:
            summary = sweep(rescan_all=rescan_all, rescan_verdicts=verdicts or None, apply=apply, progress=not quiet)
        except (NoActiveModel, CheckpointMismatch, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        for line in summary.lines():
            self.stdout.write(line)

"""coverpick train: fit both heads on human labels and save a versioned checkpoint."""

from django.core.management.base import BaseCommand, CommandError

from coverpick import conf
from coverpick.model.dataset import LabelLintError
from coverpick.vision.backbones import BACKBONES, BackboneUnavailable


class Command(BaseCommand):
    # Django's system checks import every web view (and matplotlib with them); this
    # command needs none of them.
    requires_system_checks = []
    help = "Train the quality and platform heads from human labels and save a versioned checkpoint."

    def add_arguments(self, parser):
        parser.add_argument("--activate", action="store_true", help="Make the new checkpoint the active classifier version")
        parser.add_argument(
            "--backbone", choices=sorted(BACKBONES), default=None,
            help=f"Backbone whose features the heads read (default: COVERPICK_BACKBONE or {conf.DEFAULT_BACKBONE})",
        )
        parser.add_argument("--seed", type=int, default=0, help="Random seed for the split and the initialisation (default: 0)")
        parser.add_argument(
            "--throttle", action="store_true",
            help="Run at the lowest CPU and I/O priority on one core with one thread, for hosts without systemd",
        )
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bars")

    def handle(self, activate, backbone, seed, throttle, quiet, **options):
        if throttle:
            from coverpick.throttle import apply_throttle

            for line in apply_throttle():
                self.stdout.write(line)
        from coverpick.model.heads import CheckpointMismatch
        from coverpick.model.train import TrainingError, train

        try:
            train(backbone, activate=activate, seed=seed, progress=not quiet, out=self.stdout.write)
        except (TrainingError, LabelLintError, BackboneUnavailable, CheckpointMismatch) as exc:
            raise CommandError(str(exc)) from exc

"""coverpick calibrate: temperature scaling and thresholds from out-of-fold predictions."""

from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Fit temperatures on out-of-fold predictions of the human labels (folds grouped by game), "
        "print the reliability table and the thresholds that reach the stated precision, and with "
        "--apply save them as a new classifier version derived from the active one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--folds", type=int, default=5, help="Folds grouped by game (default: 5)")
        parser.add_argument("--clean-precision", type=float, default=0.95, help="Precision the clean threshold must reach (default: 0.95)")
        parser.add_argument("--platform-accuracy", type=float, default=0.95, help="Accuracy the platform threshold must reach (default: 0.95)")
        parser.add_argument("--seed", type=int, default=0, help="Seed for folds and initialisation (default: 0)")
        parser.add_argument("--apply", action="store_true", help="Save a calibrated version derived from the active one")
        parser.add_argument("--activate", action="store_true", help="With --apply, also activate the calibrated version")
        parser.add_argument("--quiet", action="store_true", help="Hide the progress bar and the lines that mark each fold done")

    def handle(self, folds, clean_precision, platform_accuracy, seed, apply, activate, quiet, **options):
        from coverpick import conf
        from coverpick.model.calibration import calibrate, format_calibration, out_of_fold
        from coverpick.model.heads import CheckpointMismatch
        from coverpick.model.train import TrainingError, build_training_data
        from coverpick.model.versions import NoActiveModel, activate_version, derive_version, load_active_heads

        if folds < 2:
            raise CommandError(f"--folds must be at least 2, got {folds}.")
        if activate and not apply:
            raise CommandError("--activate only works with --apply, which saves the calibrated version to activate.")
        for name, value in (("--clean-precision", clean_precision), ("--platform-accuracy", platform_accuracy)):
            if not 0.0 < value <= 1.0:
                raise CommandError(f"{name} must be in (0, 1], got {value}.")
        # Read before the cross-validation, so a bad PLATFORM_THRESHOLD stops the command at once.
        platform_floor = conf.platform_threshold()
        try:
            version, heads = load_active_heads()
            data = build_training_data(heads.backbone, progress=not quiet)
        except (NoActiveModel, TrainingError, CheckpointMismatch, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        oof = out_of_fold(data, folds=folds, seed=seed, progress=None if quiet else self.stdout.write)
        result = calibrate(data, oof, clean_precision, platform_accuracy, platform_floor=platform_floor)
        for line in format_calibration(result, clean_precision, platform_accuracy):
            self.stdout.write(line)
        if not apply:
            self.stdout.write("Nothing saved (pass --apply to save a calibrated version).")
            return
        final = "stage2" if heads.heads.stage2 is not None else "quality"
        final_platform = "platform_stage2" if heads.heads.platform_stage2 is not None else "platform"
        derived = derive_version(
            version,
            "cal",
            {
                "temperature": {final: result.quality_temperature, final_platform: result.platform_temperature},
                "thresholds": {"clean": result.clean_threshold, "platform": result.platform_threshold},
                "calibration": asdict(result) | {"clean_precision": clean_precision, "platform_accuracy": platform_accuracy},
            },
        )
        self.stdout.write(f"Saved calibrated version {derived.name}")
        if activate:
            activate_version(derived)
            self.stdout.write(f"Activated {derived.name}; run `coverpick sweep --apply` to predict with it")

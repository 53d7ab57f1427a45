"""Model quality on games held out from training, scored against the sample's reference labels.

The floors are the cross-validated results measured when they were set,
minus a small margin for run-to-run noise; a regression below them fails.
"""

import io
import os
import random

import numpy as np
import pytest
from django.core.management import call_command

from coverpick.catalogue.manual import set_labels
from coverpick.catalogue.models import Listing, Verdict
from coverpick.model.audit import audit_labels
from coverpick.model.calibration import apply_temperature, fit_temperature, log_loss, out_of_fold
from coverpick.model.evaluate import cross_validate
from coverpick.model.train import build_training_data

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    # The model's numbers come from numpy over cached features and do not
    # depend on the database, so the PostgreSQL run skips the costly refits.
    pytest.mark.skipif(
        os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="model quality is measured in the SQLite run; it does not depend on the database",
    ),
]

RECALL_FLOORS = {
    "clean": 0.88,
    "3d_render": 0.80,
    "deluxe_bundle": 0.90,
    "contents": 0.90,
    "wrong_console": 0.85,
    "wrong_game": 0.76,
    "low_resolution": 0.90,
    "multi_platform": 0.74,
    "gkc": 0.72,
    "ciab": 0.86,
    "placeholder": 0.85,
    "margins": 0.88,
    "bad_background": 0.68,
}


def test_cross_validated_recall_stays_above_floors(trained_sample, sample_catalogue):
    result = cross_validate(sample_catalogue / "truth.jsonl", folds=5, seed=0)
    for name, floor in RECALL_FLOORS.items():
        assert result["per_class"][name]["recall"] >= floor, (name, result["per_class"][name])
    # At the default platform threshold (measured: 0.989, with a verdict for 0.939 of the covers).
    assert result["platform_accuracy"] >= 0.92
    assert result["platform_coverage"] >= 0.78
    assert result["platform_at_goal"]["accuracy"] >= 0.90  # measured 0.996 at 90 % coverage
    assert result["clean_at_goal"]["recall"] >= 0.85  # measured 0.923 at 5 % of defects called clean
    assert result["defects_called_clean"] <= 0.08  # measured 0.046
    assert result["primary_clean_rate"] >= 0.96  # measured 0.995


def test_audit_ranks_flipped_labels_near_the_top_and_calibration_helps(trained_sample):
    clean_rows = list(Listing.objects.filter(verdicts__source=Verdict.SOURCE_MANUAL_TRAIN, verdicts__labels=["clean"]))
    flipped = random.Random(7).sample(clean_rows, 8)
    for listing in flipped:
        set_labels(listing, ["contents"])
    data = build_training_data(trained_sample["version"].backbone)
    oof = out_of_fold(data, folds=3, seed=0)

    suspects = audit_labels(data, oof.quality)
    top = {s.listing_id for s in suspects[: len(suspects) // 10]}
    found = sum(1 for listing in flipped if listing.pk in top)
    assert found >= 6, f"only {found} of 8 flipped labels in the top 10%"

    games = data.game_ids
    first_half = np.isin(games, sorted(set(games.tolist()))[::2])
    known = data.platform_targets >= 0
    fitted, held_out = first_half & known, ~first_half & known
    targets = np.eye(4)[data.platform_targets[held_out]]
    # The platform second stage comes out close to calibrated, so its fitted
    # temperature stays near 1 and the held-out loss barely moves (measured:
    # 0.343 before, 0.350 after).
    temperature = fit_temperature(oof.platform[fitted], np.eye(4)[data.platform_targets[fitted]])
    assert log_loss(apply_temperature(oof.platform[held_out], temperature), targets) <= log_loss(oof.platform[held_out], targets) + 0.02
    # An overconfident copy of the same predictions, with every logit doubled,
    # is what temperature scaling corrects.
    sharp = apply_temperature(oof.platform, 0.5)
    temperature = fit_temperature(sharp[fitted], np.eye(4)[data.platform_targets[fitted]])
    assert temperature > 1.5
    assert log_loss(apply_temperature(sharp[held_out], temperature), targets) < log_loss(sharp[held_out], targets) - 0.05


def test_audit_command_quiet_hides_fold_lines(trained_sample, tmp_path):
    loud, quiet = io.StringIO(), io.StringIO()
    arguments = ("--folds", "2", "--top", "0")
    call_command("audit-labels", *arguments, "--out", str(tmp_path / "loud.jsonl"), stdout=loud)
    call_command("audit-labels", *arguments, "--quiet", "--out", str(tmp_path / "quiet.jsonl"), stdout=quiet)

    assert "fold 1/2 done" in loud.getvalue()
    assert "fold" not in quiet.getvalue()
    assert "Audited" in quiet.getvalue()
    assert "suspicion from 0 to 1, higher means the label is more likely wrong" in quiet.getvalue()
    assert (tmp_path / "quiet.jsonl").read_bytes() == (tmp_path / "loud.jsonl").read_bytes()

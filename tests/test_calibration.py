import numpy as np
import pytest

from coverpick.labels import LABEL_CLASSES
from coverpick.model.audit import suggested_labels, suspicion_scores
from coverpick.model.calibration import apply_temperature, fit_temperature, log_loss, reliability_table, threshold_for_precision
from coverpick.model.heads import softmax


def overconfident_sample(rows: int, seed: int):
    """Probabilities from logits scaled three times too sharp, with targets drawn from the true ones."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(rows, 5)) * 1.5
    true_probs = softmax(true_logits)
    labels = np.array([rng.choice(5, p=p) for p in true_probs])
    return softmax(true_logits * 3.0), np.eye(5)[labels]


def test_temperature_lowers_held_out_log_loss():
    fit_probs, fit_targets = overconfident_sample(2000, seed=1)
    test_probs, test_targets = overconfident_sample(2000, seed=2)
    temperature = fit_temperature(fit_probs, fit_targets)
    assert 2.0 < temperature < 4.5
    assert log_loss(apply_temperature(test_probs, temperature), test_targets) < log_loss(test_probs, test_targets) - 0.05


def test_temperature_near_one_for_calibrated_probabilities():
    rng = np.random.default_rng(3)
    probs = softmax(rng.normal(size=(4000, 4)))
    targets = np.eye(4)[[rng.choice(4, p=p) for p in probs]]
    assert fit_temperature(probs, targets) == pytest.approx(1.0, abs=0.15)


def test_threshold_reaches_the_precision_or_rejects_everything():
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    assert threshold_for_precision(scores, positive, 0.99, 0.0) == pytest.approx(0.8)
    assert threshold_for_precision(scores, positive, 0.75, 0.0) == pytest.approx(0.6)
    assert threshold_for_precision(scores, np.zeros(6, dtype=bool), 0.5, 0.0) == 1.0


def test_reliability_table_bins_count_every_row():
    probs = softmax(np.random.default_rng(4).normal(size=(500, 3)) * 2)
    correct = np.random.default_rng(5).random(500) < 0.5
    table = reliability_table(probs, correct)
    assert sum(row["rows"] for row in table) == 500


def test_audit_scores_a_class_with_a_single_example():
    rng = np.random.default_rng(6)
    label_sets = [["clean"]] * 30 + [["margins"]] * 10 + [["ciab"]]
    probs = softmax(rng.normal(size=(len(label_sets), len(LABEL_CLASSES))))
    scores = suspicion_scores(label_sets, probs)
    assert scores.shape == (len(label_sets),)
    assert np.isfinite(scores).all()


def test_audit_scores_one_class_only():
    probs = softmax(np.zeros((3, len(LABEL_CLASSES))))
    scores = suspicion_scores([["clean"]] * 3, probs)
    assert np.isfinite(scores).all()


def test_audit_puts_an_obvious_mistake_first():
    clean, contents = LABEL_CLASSES.index("clean"), LABEL_CLASSES.index("contents")
    probs = np.full((20, len(LABEL_CLASSES)), 0.01)
    probs[:10, clean] = 0.9
    probs[10:, contents] = 0.9
    label_sets = [["clean"]] * 10 + [["contents"]] * 10
    label_sets[3] = ["contents"]
    scores = suspicion_scores(label_sets, probs / probs.sum(axis=1, keepdims=True))
    assert int(np.argmax(scores)) == 3


@pytest.mark.django_db
def test_calibrate_reports_stale_checkpoint():
    import json

    from django.core.management import CommandError, call_command

    from coverpick import conf
    from coverpick.model.heads import META_FILE
    from tests.factories import heads_version

    version = heads_version("heads-stale")
    version.checkpoint = "heads-stale"
    version.save(update_fields=["checkpoint"])
    folder = conf.model_dir() / version.checkpoint
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_FILE).write_text(json.dumps({"version": "heads-stale", "layout_version": 0}))
    with pytest.raises(CommandError) as caught:
        call_command("calibrate")
    assert "Checkpoint heads-stale cannot be used" in str(caught.value)
    assert "Retrain with `coverpick train`" in str(caught.value)


@pytest.mark.django_db
def test_calibrate_reports_missing_checkpoint_folder():
    from django.core.management import CommandError, call_command

    from tests.factories import heads_version

    version = heads_version("heads-gone")
    version.checkpoint = "heads-gone"
    version.save(update_fields=["checkpoint"])
    with pytest.raises(CommandError, match="No meta.json in checkpoint folder"):
        call_command("calibrate")


def test_calibrate_reports_clean_recall_and_warns_when_low():
    from types import SimpleNamespace

    from coverpick.model.calibration import OutOfFold, calibrate, format_calibration

    rng = np.random.default_rng(8)
    clean = LABEL_CLASSES.index("clean")
    rows = 400
    truly_clean = rng.random(rows) < 0.5
    logits = rng.normal(size=(rows, len(LABEL_CLASSES)))
    # Clean covers lean clean, and so do a third of the defects. A high
    # precision then needs a threshold that leaves most clean covers out.
    logits[truly_clean, clean] += 3.0
    lookalike = ~truly_clean & (rng.random(rows) < 0.33)
    logits[lookalike, clean] += 3.0
    quality = softmax(logits)
    platform = softmax(rng.normal(size=(rows, 4)) * 3)
    label_sets = [["clean"] if is_clean else ["margins"] for is_clean in truly_clean]
    targets = np.array([[1.0 if name in labels else 0.0 for name in LABEL_CLASSES] for labels in label_sets])
    data = SimpleNamespace(targets=targets, label_sets=label_sets, platform_targets=platform.argmax(axis=1))
    oof = OutOfFold(quality=quality, platform=platform, folds=5)

    strict = calibrate(data, oof, clean_precision=0.99)
    lenient = calibrate(data, oof, clean_precision=0.6)
    predicted_clean = quality.argmax(axis=1) == clean
    expected = (predicted_clean & truly_clean & (apply_temperature(quality, strict.quality_temperature)[:, clean] >= strict.clean_threshold)).sum()
    assert strict.clean_recall == pytest.approx(expected / truly_clean.sum(), abs=1e-4)
    assert strict.clean_recall < lenient.clean_recall
    strict_lines = format_calibration(strict, 0.99, 0.95)
    lenient_lines = format_calibration(lenient, 0.6, 0.95)
    assert strict.clean_recall < 0.5
    assert any(line.startswith("Warning:") for line in strict_lines)
    assert lenient.clean_recall >= 0.5
    assert not any(line.startswith("Warning:") for line in lenient_lines)
    assert f"keeps {lenient.clean_recall:.0%} of truly clean covers" in "\n".join(lenient_lines)
    # Both reliability tables start with the same column header.
    header = lenient_lines[4]
    assert "mean conf" in header
    platform_title = lenient_lines.index("Reliability of the calibrated platform verdict (out-of-fold):")
    assert lenient_lines[platform_title + 1] == header


def test_platform_threshold_never_below_the_floor():
    """The covers given a platform verdict reach the accuracy together long before the least confident verdicts are right."""
    from types import SimpleNamespace

    from coverpick.model.calibration import OutOfFold, calibrate, format_calibration

    rng = np.random.default_rng(3)
    rows = 500
    truth = rng.integers(0, 4, rows)
    sure = rng.random(rows) < 0.9
    logits = rng.normal(size=(rows, 4))
    # Nine covers in ten get a confident, right verdict. The rest get a guess among four families.
    logits[sure, truth[sure]] += 8.0
    platform = softmax(logits)
    quality = softmax(rng.normal(size=(rows, len(LABEL_CLASSES))))
    label_sets = [["clean"]] * rows
    targets = np.array([[1.0 if name == "clean" else 0.0 for name in LABEL_CLASSES]] * rows)
    data = SimpleNamespace(targets=targets, label_sets=label_sets, platform_targets=truth)
    oof = OutOfFold(quality=quality, platform=platform, folds=5)

    free = calibrate(data, oof, platform_accuracy=0.9)
    floored = calibrate(data, oof, platform_accuracy=0.9, platform_floor=0.7)

    assert free.platform_threshold < 0.7
    assert floored.platform_threshold == 0.7
    assert floored.platform_coverage < free.platform_coverage
    lines = format_calibration(floored, 0.95, 0.9)
    assert any("below 0.70, the configured PLATFORM_THRESHOLD, which is kept" in line for line in lines)
    assert not any("PLATFORM_THRESHOLD" in line for line in format_calibration(free, 0.95, 0.9))


def probabilities(**given: float) -> np.ndarray:
    row = np.full(len(LABEL_CLASSES), 0.001)
    for name, value in given.items():
        row[LABEL_CLASSES.index(name)] = value
    return row


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"placeholder": 0.5, "clean": 0.4}, ["placeholder"]),
        ({"wrong_game": 0.5, "clean": 0.4}, ["wrong_game"]),
        ({"gkc": 0.5, "ciab": 0.45}, ["gkc"]),
        ({"clean": 0.5, "gkc": 0.4}, ["clean", "gkc"]),
        ({"3d_render": 0.5, "multi_platform": 0.3}, ["3d_render", "multi_platform"]),
        ({"3d_render": 0.8, "multi_platform": 0.1}, ["3d_render"]),
    ],
)
def test_suggestions_keep_labelling_rules(given, expected):
    assert suggested_labels(probabilities(**given)) == expected

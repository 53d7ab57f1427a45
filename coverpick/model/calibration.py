"""Calibration: temperature scaling on out-of-fold predictions, and thresholds chosen from calibrated scores.

Out-of-fold means every labelled cover is predicted by heads trained on other
games only, so the probabilities are as honest as on new games. A temperature
T divides the logits; it is fitted by minimising the log-loss of those
predictions against the human labels. Thresholds are then the lowest scores
that still reach a stated precision, instead of numbers picked by eye.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model.heads import softmax


@dataclass
class OutOfFold:
    """Out-of-fold quality and platform probabilities for the training rows, in row order."""

    quality: np.ndarray
    platform: np.ndarray
    folds: int


def out_of_fold(data, folds: int = 5, seed: int = 0, progress=None) -> OutOfFold:
    """Predict every training row with heads fitted on the other folds' games."""
    from coverpick.model.train import fit_heads, predict_rows

    games = sorted(set(data.game_ids.tolist()))
    folds = max(2, min(folds, len(games)))
    random.Random(seed).shuffle(games)
    fold_of = {game: i % folds for i, game in enumerate(games)}
    row_fold = np.array([fold_of[g] for g in data.game_ids])
    quality = np.zeros((len(data.rows), len(LABEL_CLASSES)), dtype=np.float32)
    platform = np.zeros((len(data.rows), len(PLATFORM_FAMILIES)), dtype=np.float32)
    for fold in range(folds):
        heads = fit_heads(data, np.flatnonzero(row_fold != fold), seed)
        held = np.flatnonzero(row_fold == fold)
        quality[held], platform[held] = predict_rows(heads, data, held)
        if progress is not None:
            progress(f"fold {fold + 1}/{folds} done")
    return OutOfFold(quality=quality, platform=platform, folds=folds)


def log_loss(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of probability rows against (soft) target rows."""
    return float(-(targets * np.log(np.clip(probs, 1e-7, 1.0))).sum(axis=1).mean())


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities as if their logits were divided by ``temperature``."""
    return softmax(np.log(np.clip(probs, 1e-7, 1.0)) / temperature)


def fit_temperature(probs: np.ndarray, targets: np.ndarray) -> float:
    """Return the temperature in [0.05, 20] that minimises the log-loss, by golden-section search on log T."""
    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return log_loss(apply_temperature(probs, float(np.exp(log_t))), targets)

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    for _ in range(60):
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return float(np.exp((low + high) / 2))


def reliability_table(probs: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict]:
    """Per confidence bin: rows, mean confidence and accuracy of the argmax."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            table.append(
                {
                    "bin": f"{low:.1f}-{high:.1f}",
                    "rows": int(inside.sum()),
                    "confidence": round(float(confidence[inside].mean()), 3),
                    "accuracy": round(float(correct[inside].mean()), 3),
                }
            )
    return table


def threshold_for_precision(scores: np.ndarray, positive: np.ndarray, target: float, floor: float) -> float:
    """Return the lowest score threshold whose selected rows reach ``target`` precision, never below ``floor``.

    Returns 1.0 when no threshold reaches the target, so nothing is accepted.
    """
    order = np.argsort(-scores)
    hits = np.cumsum(positive[order])
    precision = hits / np.arange(1, len(order) + 1)
    reaching = np.flatnonzero(precision >= target)
    if len(reaching) == 0:
        return 1.0
    return float(max(floor, scores[order][reaching.max()]))


# Below this share of truly clean covers kept as clean, calibrate warns that
# the threshold turns most clean verdicts into unknown.
LOW_CLEAN_RECALL = 0.5


@dataclass
class Calibration:
    quality_temperature: float
    platform_temperature: float
    clean_threshold: float
    platform_threshold: float
    quality_loss_before: float
    quality_loss_after: float
    platform_loss_before: float
    platform_loss_after: float
    quality_table: list[dict]
    platform_table: list[dict]
    # Share of truly clean covers still called clean at the clean threshold,
    # and share of covers that still get a platform verdict at the platform threshold.
    clean_recall: float = 0.0
    platform_coverage: float = 0.0
    # The platform threshold is never set below this (see calibrate).
    platform_floor: float = 0.0


def calibrate(
    data, oof: OutOfFold, clean_precision: float = 0.95, platform_accuracy: float = 0.95, platform_floor: float = 0.0
) -> Calibration:
    """Fit temperatures on out-of-fold predictions and choose the clean and platform thresholds.

    The platform threshold is the lowest one at which the covers given a
    platform verdict reach ``platform_accuracy`` together, but never below
    ``platform_floor``. Accuracy over all those covers can stay high while
    the least sure verdicts are mostly wrong, and a wrong platform verdict
    demotes a cover as wrong_console, so the platform head should abstain
    more readily than the average allows.
    """
    targets = data.targets
    quality_t = fit_temperature(oof.quality, targets)
    quality = apply_temperature(oof.quality, quality_t)

    known = data.platform_targets >= 0
    platform_targets = np.eye(len(PLATFORM_FAMILIES), dtype=np.float32)[data.platform_targets[known]]
    platform_t = fit_temperature(oof.platform[known], platform_targets)
    platform = apply_temperature(oof.platform[known], platform_t)

    clean = LABEL_CLASSES.index("clean")
    said_clean = quality.argmax(axis=1) == clean
    truly_clean = np.array(["clean" in labels for labels in data.label_sets])
    clean_threshold = threshold_for_precision(quality[said_clean, clean], truly_clean[said_clean], clean_precision, 0.0)
    platform_correct = platform.argmax(axis=1) == data.platform_targets[known]
    platform_threshold = threshold_for_precision(platform.max(axis=1), platform_correct, platform_accuracy, platform_floor)

    kept_clean = said_clean & truly_clean & (quality[:, clean] >= clean_threshold)
    clean_recall = float(kept_clean.sum() / max(1, truly_clean.sum()))
    platform_coverage = float((platform.max(axis=1) >= platform_threshold).mean()) if len(platform) else 0.0
    quality_correct = np.array([LABEL_CLASSES[i] in labels for i, labels in zip(quality.argmax(axis=1), data.label_sets)])
    return Calibration(
        quality_temperature=quality_t,
        platform_temperature=platform_t,
        clean_threshold=round(clean_threshold, 4),
        platform_threshold=round(platform_threshold, 4),
        quality_loss_before=log_loss(oof.quality, targets),
        quality_loss_after=log_loss(quality, targets),
        platform_loss_before=log_loss(oof.platform[known], platform_targets),
        platform_loss_after=log_loss(platform, platform_targets),
        quality_table=reliability_table(quality, quality_correct),
        platform_table=reliability_table(platform, platform_correct),
        clean_recall=round(clean_recall, 4),
        platform_coverage=round(platform_coverage, 4),
        platform_floor=platform_floor,
    )


def format_calibration(result: Calibration, clean_precision: float, platform_accuracy: float) -> list[str]:
    header = f"  {'confidence':<10} {'rows':>5} {'mean conf':>9} {'accuracy':>8}"
    lines = [
        f"Quality temperature {result.quality_temperature:.3f}: log-loss {result.quality_loss_before:.4f} → {result.quality_loss_after:.4f}",
        f"Platform temperature {result.platform_temperature:.3f}: log-loss {result.platform_loss_before:.4f} → {result.platform_loss_after:.4f}",
        "",
        "Reliability of the calibrated quality verdict (out-of-fold):",
        header,
    ]
    for row in result.quality_table:
        lines.append(f"  {row['bin']:<10} {row['rows']:>5} {row['confidence']:>9.3f} {row['accuracy']:>8.3f}")
    lines.append("Reliability of the calibrated platform verdict (out-of-fold):")
    lines.append(header)
    for row in result.platform_table:
        lines.append(f"  {row['bin']:<10} {row['rows']:>5} {row['confidence']:>9.3f} {row['accuracy']:>8.3f}")
    lines.append("")
    lines.append(
        f"Clean threshold for clean precision {clean_precision:.2f}: {result.clean_threshold:.3f} "
        f"(keeps {result.clean_recall:.0%} of truly clean covers as clean; the rest become unknown)"
    )
    lines.append(
        f"Platform threshold for platform accuracy {platform_accuracy:.2f}: {result.platform_threshold:.3f} "
        f"(the head answers for {result.platform_coverage:.0%} of covers)"
    )
    if result.platform_floor and result.platform_threshold == result.platform_floor:
        lines.append(
            f"  The accuracy is reached below {result.platform_floor:.2f}, the configured PLATFORM_THRESHOLD, which is kept: "
            "a wrong platform verdict demotes a cover, so the head abstains at least as readily as configured."
        )
    if result.clean_recall < LOW_CLEAN_RECALL:
        lines.append(
            f"Warning: at this clean threshold most clean covers would become unknown. "
            f"Ask for a lower --clean-precision than {clean_precision:.2f} to keep more clean verdicts."
        )
    return lines

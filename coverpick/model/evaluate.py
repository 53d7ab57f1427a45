"""Cross-validation grouped by game, scored against reference labels (a truth.jsonl file).

Each fold trains the heads on human labels of the other folds' games only,
then predicts every listing of its own games and compares the verdicts with
the reference labels. Nothing here reads a held-out game's labels for training.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from coverpick import conf
from coverpick.catalogue.feeds.records import json_error_text
from coverpick.catalogue.models import Listing
from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES, SKU_LABELS, UNKNOWN, tier_for
from coverpick.model.heads import decide
from coverpick.model.inputs import new_text, text_novelty
from coverpick.model.train import build_training_data, fit_heads


class TruthError(ValueError):
    """A reference file that cannot be scored against: unreadable, or a line without the fields the scores need."""


TRUTH_FORMAT = (
    "Each line must be a JSON object with shop, product_id, labels (a list of quality classes) and, "
    "optionally, image_family (the platform family the cover shows), as in the sample's truth.jsonl."
)


# Invalid lines of a reference file named in its error; the rest are counted.
BAD_LINES_SHOWN = 10


def load_truth(path: Path) -> dict[tuple[str, str], dict]:
    """Read a reference file into {(shop, product_id): record}, checking every line before any training starts.

    Raises TruthError naming the invalid lines (the first BAD_LINES_SHOWN of
    them, and how many there are), so one run finds them all.
    """
    truth = {}
    problems = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    record = _truth_record(line)
                    if isinstance(record, str):
                        problems.append(f"line {number}: {record}")
                    else:
                        truth[(record["shop"], str(record["product_id"]))] = record
    except UnicodeDecodeError as exc:
        raise TruthError(f"Reference file {path} is not UTF-8 text ({exc.reason}). {TRUTH_FORMAT}") from exc
    except OSError as exc:
        raise TruthError(f"Reference file {path} cannot be read ({exc.strerror or exc}).") from exc
    if len(problems) == 1:
        raise TruthError(f"Reference file {path}, {problems[0]}. {TRUTH_FORMAT}")
    if problems:
        shown = "; ".join(problems[:BAD_LINES_SHOWN])
        more = f"; and {len(problems) - BAD_LINES_SHOWN} more" if len(problems) > BAD_LINES_SHOWN else ""
        raise TruthError(f"Reference file {path} has {len(problems)} invalid lines: {shown}{more}. {TRUTH_FORMAT}")
    if not truth:
        raise TruthError(f"Reference file {path} has no records. {TRUTH_FORMAT}")
    return truth


# Reference rows named one by one in the report when they cannot be scored.
UNUSED_ROWS_SHOWN = 5


def unused_reference_rows(truth: dict[tuple[str, str], dict], records: list[dict]) -> dict:
    """Count the reference rows that no out-of-fold record scored, by reason.

    A row names no listing of the catalogue (a typing error, or another
    catalogue's listing), or a listing without a usable image, which has no
    features and so no verdict.
    """
    scored = {(record["shop"], str(record["product_id"])) for record in records}
    known = {(shop, str(product_id)) for shop, product_id in Listing.objects.values_list("shop__code", "product_id")}
    no_listing = [key for key in truth if key not in known]
    no_image = [key for key in truth if key in known and key not in scored]
    return {
        "read": len(truth),
        "scored": len(scored & set(truth)),
        "no_listing": len(no_listing),
        "no_listing_examples": [list(key) for key in no_listing[:UNUSED_ROWS_SHOWN]],
        "no_usable_image": len(no_image),
        "no_usable_image_examples": [list(key) for key in no_image[:UNUSED_ROWS_SHOWN]],
    }


def _truth_record(line: str) -> dict | str:
    """Return the parsed record of one reference line, or why it is invalid."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({json_error_text(exc)})"
    if not isinstance(record, dict):
        return "the line is not a JSON object"
    missing = [name for name in ("shop", "product_id", "labels") if record.get(name) in (None, "")]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in ("shop", "product_id"):
        if not isinstance(record[name], (str, int)) or isinstance(record[name], bool):
            return f"{name} must be a string or a number, got {record[name]!r}"
    labels = record["labels"]
    if not isinstance(labels, list) or not labels:
        return f"labels must be a non-empty list of classes, got {labels!r}"
    unknown = [label for label in labels if label not in LABEL_CLASSES]
    if unknown:
        return f"unknown class {unknown[0]!r} in labels (known: {', '.join(LABEL_CLASSES)})"
    family = record.get("image_family")
    if family is not None and family not in PLATFORM_FAMILIES and family != "other":
        return f"unknown image_family {family!r} (known: {', '.join(PLATFORM_FAMILIES)}, other)"
    return record


def game_folds(game_ids: list, folds: int, seed: int) -> dict:
    games = sorted(set(game_ids))
    random.Random(seed).shuffle(games)
    return {game: i % folds for i, game in enumerate(games)}


def cross_validate(
    truth_path: Path, *, folds: int = 5, seed: int = 0, backbone_id: str | None = None, progress: bool = False, report=None
) -> dict:
    """Cross-validate the heads by game against reference labels; ``report``, if given, gets a line after each fold."""
    records = out_of_fold_records(truth_path, folds=folds, seed=seed, backbone_id=backbone_id, progress=progress, report=report)
    result = summarise(records, folds)
    result["reference_rows"] = unused_reference_rows(load_truth(truth_path), records)
    return result


def out_of_fold_records(
    truth_path: Path, *, folds: int = 5, seed: int = 0, backbone_id: str | None = None, progress: bool = False, report=None
) -> list[dict]:
    """Return one record per listing named in the reference file: its labels, fold and out-of-fold verdicts."""
    backbone_id = backbone_id or conf.backbone_id()
    truth = load_truth(truth_path)
    known = set(Listing.objects.values_list("shop__code", "product_id"))
    if not any(key in known for key in truth):
        raise TruthError(
            f"None of the {len(truth)} records in reference file {truth_path} names a listing of this catalogue "
            "(matched by shop and product_id). Import the catalogue that the file describes, or pass its reference file."
        )
    data = build_training_data(backbone_id, progress)
    arrays = data.catalogue
    keys = dict(Listing.objects.values_list("pk", "shop__code"))
    products = dict(Listing.objects.values_list("pk", "product_id"))
    pixels = dict(Listing.objects.values_list("pk", "cover__width"))
    heights = dict(Listing.objects.values_list("pk", "cover__height"))
    fold_of_game = game_folds(arrays.game_ids, folds, seed)
    row_fold = np.array([fold_of_game[g] for g in data.game_ids])
    listing_fold = np.array([fold_of_game[g] for g in arrays.game_ids])

    quality_probs = np.zeros((len(arrays.listing_ids), len(LABEL_CLASSES)), dtype=np.float32)
    platform_probs = np.zeros((len(arrays.listing_ids), len(PLATFORM_FAMILIES)), dtype=np.float32)
    for fold in range(folds):
        heads = fit_heads(data, np.flatnonzero(row_fold != fold), seed)
        held = np.flatnonzero(listing_fold == fold)
        quality_probs[held], platform_probs[held] = heads.predict(
            arrays.features, arrays.families, arrays.game_ids, arrays.edition_ids, arrays.stats, arrays.phase1, arrays.titles, held
        )
        if report is not None:
            report(f"fold {fold + 1}/{folds} done")

    predictions = decide(quality_probs, platform_probs, conf.clean_threshold(), conf.platform_threshold())
    novelty = text_novelty(arrays.features, arrays.game_ids)
    records = []
    for i, listing_id in enumerate(arrays.listing_ids):
        reference = truth.get((keys[listing_id], products[listing_id]))
        if reference is None:
            continue
        records.append(
            {
                "listing": listing_id,
                "shop": keys[listing_id],
                "product_id": products[listing_id],
                "fold": int(listing_fold[i]),
                "game": arrays.game_ids[i],
                "declared": arrays.families[i],
                "labels": reference["labels"],
                "image_family": reference.get("image_family"),
                "quality": predictions[i].quality,
                "clean_probability": float(quality_probs[i, LABEL_CLASSES.index("clean")]),
                "platform": predictions[i].platform,
                "platform_guess": PLATFORM_FAMILIES[int(platform_probs[i].argmax())],
                "platform_confidence": float(platform_probs[i].max()),
                "pixels": (pixels[listing_id] or 0) * (heights[listing_id] or 0),
                "text_novelty": new_text(novelty, i),
            }
        )
    return records


# The quality goals' operating points: clean recall where at most this share
# of defect covers is called clean, and platform accuracy where the platform
# verdict is given for this share of covers.
DEFECT_SHARE_GOAL = 0.05
PLATFORM_COVERAGE_GOAL = 0.90


def clean_recall_at(records: list[dict], defect_share: float = DEFECT_SHARE_GOAL) -> dict:
    """Return the lowest clean threshold that calls at most ``defect_share`` of the defect covers clean, and its clean recall.

    A cover counts as called clean when clean is its argmax (a verdict of
    clean or unknown) and its probability of clean reaches the threshold.
    Recall is over the listings whose reference labels include clean.

    ``recall_with_notices`` also counts a clean cover that carries a key-card
    or code-in-a-box notice (reference labels clean and gkc, or clean and
    ciab) when its verdict names that notice: the ranking puts it in the
    clean tier, after the covers called clean. Its threshold and defect
    share are the ones above: a defect cover called gkc or ciab, which the
    ranking also puts in the clean tier, does not count as called clean.
    """
    scores = np.array([r["clean_probability"] if r["quality"] in ("clean", UNKNOWN) else -1.0 for r in records])
    is_clean = np.array(["clean" in r["labels"] for r in records])
    if not is_clean.any() or is_clean.all():
        return {"threshold": None, "recall": None, "defects_called_clean": None, "recall_with_notices": None}
    by_notice = np.array([r["quality"] in SKU_LABELS and r["quality"] in r["labels"] for r in records])
    for threshold in np.unique(scores[scores >= 0.0]):
        called = scores >= threshold
        share = float(called[~is_clean].mean())
        if share <= defect_share:
            return {
                "threshold": round(float(threshold), 4),
                "recall": round(float(called[is_clean].mean()), 4),
                "defects_called_clean": round(share, 4),
                "recall_with_notices": round(float((called | by_notice)[is_clean].mean()), 4),
            }
    return {"threshold": None, "recall": 0.0, "defects_called_clean": 0.0, "recall_with_notices": round(float(by_notice[is_clean].mean()), 4)}


def platform_accuracy_at(records: list[dict], coverage: float = PLATFORM_COVERAGE_GOAL) -> dict:
    """Return the platform accuracy on the ``coverage`` share of covers where the platform output is most confident."""
    rows = [r for r in records if r["image_family"] in PLATFORM_FAMILIES]
    if not rows:
        return {"threshold": None, "accuracy": None, "coverage": None}
    rows.sort(key=lambda r: r["platform_confidence"], reverse=True)
    answered = rows[: max(1, round(coverage * len(rows)))]
    correct = sum(1 for r in answered if r["platform_guess"] == r["image_family"])
    return {
        "threshold": round(answered[-1]["platform_confidence"], 4),
        "accuracy": round(correct / len(answered), 4),
        "coverage": round(len(answered) / len(rows), 4),
    }


def _recall(rows: list[dict], name: str) -> tuple[int, int]:
    relevant = [r for r in rows if name in r["labels"]]
    hits = sum(1 for r in relevant if r["quality"] in r["labels"] or (name in SKU_LABELS and r["quality"] == name))
    return hits, len(relevant)


def summarise(records: list[dict], folds: int) -> dict:
    per_class = {}
    for name in LABEL_CLASSES:
        fold_recalls = []
        hits_total = count_total = 0
        for fold in range(folds):
            hits, count = _recall([r for r in records if r["fold"] == fold], name)
            hits_total += hits
            count_total += count
            if count:
                fold_recalls.append(hits / count)
        if count_total:
            per_class[name] = {
                "recall": round(hits_total / count_total, 4),
                "mean": round(float(np.mean(fold_recalls)), 4),
                "std": round(float(np.std(fold_recalls)), 4),
                "count": count_total,
            }
    defects = [r for r in records if "clean" not in r["labels"]]
    called_clean = sum(1 for r in defects if r["quality"] == "clean")
    platform_rows = [r for r in records if r["image_family"] in PLATFORM_FAMILIES]
    answered = [r for r in platform_rows if r["platform"] in PLATFORM_FAMILIES]
    correct = sum(1 for r in answered if r["platform"] == r["image_family"])
    return {
        "folds": folds,
        "listings": len(records),
        "per_class": per_class,
        "defects_called_clean": round(called_clean / max(1, len(defects)), 4),
        "platform_accuracy": round(correct / max(1, len(answered)), 4),
        "platform_coverage": round(len(answered) / max(1, len(platform_rows)), 4),
        "primary_clean_rate": primary_clean_rate(records),
        "clean_at_goal": clean_recall_at(records),
        "platform_at_goal": platform_accuracy_at(records),
    }


def _predicted_tier(record: dict) -> int:
    mismatch = record["platform"] in PLATFORM_FAMILIES and record["declared"] in PLATFORM_FAMILIES and record["platform"] != record["declared"]
    return tier_for("wrong_console") if mismatch else tier_for(record["quality"])


def _rank_key(record: dict) -> tuple:
    """Return the sort key coverpick.ranking gives a cover judged by the heads alone."""
    tier = _predicted_tier(record)
    clean_leaning = tier == tier_for("clean") or (record["quality"] == UNKNOWN and tier != tier_for("wrong_console"))
    return (0 if clean_leaning else 1, record["quality"] in ("gkc", "ciab"), -record["clean_probability"], tier, -record["pixels"], record["listing"])


def primary_clean_rate(records: list[dict]) -> float | None:
    """Share of games with a truly clean listing whose model-chosen primary is truly clean.

    The choice follows the ranking without manual rows or shop preference:
    clean-leaning covers first (with platform mismatch demotion), a clean
    verdict before gkc or ciab, the probability of clean, tier, then resolution.
    """
    by_game = defaultdict(list)
    for record in records:
        by_game[record["game"]].append(record)
    eligible = good = 0
    for rows in by_game.values():
        if not any("clean" in r["labels"] for r in rows):
            continue
        eligible += 1
        best = min(rows, key=_rank_key)
        good += "clean" in best["labels"]
    return round(good / eligible, 4) if eligible else None


def _unused_rows_lines(rows: dict | None) -> list[str]:
    """Return the report's lines on reference rows left out of the scores, none when every row was scored."""
    if not rows:
        return []
    lines = []
    for count_key, examples_key, reason in (
        ("no_listing", "no_listing_examples", "name no listing of this catalogue (matched by shop and product_id)"),
        ("no_usable_image", "no_usable_image_examples", "name a listing without a usable image, which gets no verdict"),
    ):
        count = rows[count_key]
        if count:
            names = ", ".join(f"{shop} {product_id!r}" for shop, product_id in rows[examples_key])
            more = f" and {count - len(rows[examples_key])} more" if count > len(rows[examples_key]) else ""
            lines.append(f"Left out: {count} of the {rows['read']} reference rows {reason}: {names}{more}")
    return lines


def format_report(result: dict) -> list[str]:
    lines = [f"Cross-validation over {result['listings']} listings, {result['folds']} folds grouped by game"]
    lines.extend(_unused_rows_lines(result.get("reference_rows")))
    lines.append("")
    lines.append(f"{'class':<15} {'recall':>7} {'mean':>6} {'± std':>6} {'n':>5}")
    for name, entry in result["per_class"].items():
        lines.append(f"{name:<15} {entry['recall']:>7.2f} {entry['mean']:>6.2f} {entry['std']:>6.2f} {entry['count']:>5}")
    lines.append("")
    lines.append(f"Defect covers called clean: {result['defects_called_clean']:.3f}")
    lines.append(f"Platform accuracy {result['platform_accuracy']:.3f} at coverage {result['platform_coverage']:.3f}")
    if result["primary_clean_rate"] is not None:
        lines.append(f"Primary cover truly clean (games that have one): {result['primary_clean_rate']:.3f}")
    clean = result["clean_at_goal"]
    if clean["threshold"] is not None:
        lines.append(
            f"Clean recall {clean['recall']:.3f} with {clean['defects_called_clean']:.3f} of defect covers called clean "
            f"(clean threshold {clean['threshold']:.3f})"
        )
        lines.append(
            f"Clean recall counting notice verdicts: {clean['recall_with_notices']:.3f} at that threshold "
            "(a clean cover called gkc or ciab counts when it carries that notice)"
        )
    elif clean["recall"] is None:
        lines.append("Clean recall at a clean threshold: not measured, since the reference labels need clean and defect covers both")
    else:
        lines.append(
            f"Clean recall: no clean threshold calls any clean cover clean while calling {DEFECT_SHARE_GOAL:.0%} or fewer "
            f"of the defect covers clean, so it is 0 at that share (counting notice verdicts: {clean['recall_with_notices']:.3f})"
        )
    platform = result["platform_at_goal"]
    if platform["accuracy"] is not None:
        lines.append(
            f"Platform accuracy {platform['accuracy']:.3f} on the {platform['coverage']:.0%} of covers it is surest of "
            f"(platform threshold {platform['threshold']:.3f})"
        )
    return lines

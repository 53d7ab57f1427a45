"""Train the quality and platform heads over cached backbone features (PyTorch).

Rows come from human labels only (see ``coverpick.model.dataset``). A split by
game holds out validation rows for the reported metrics; the saved heads are
then refitted on every row with the same settings, so no label is wasted.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coverpick import conf
from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model import dataset
from coverpick.model.heads import META_FILE, WEIGHTS_FILE, MLP, HeadSet, first_stage_quality
from coverpick.model.inputs import (
    LAYOUT_VERSION,
    border_columns,
    box_front_comparison,
    comparison_features,
    edition_platform_columns,
    fit_similarity_space,
    full_view_dim,
    game_prototypes,
    image_columns,
    platform_layout,
    platform_stage2_inputs,
    platform_stage2_layout,
    quality_inputs,
    quality_layout,
    stage2_inputs,
    stage2_layout,
    text_columns,
    text_layout,
    text_novelty,
    title_match,
)
from coverpick.vision.presets import VIEWS, view_id
from coverpick.vision.profile import PROFILE_VERSION
from coverpick.vision.text import TEXT_READINGS, TEXT_VERSION

logger = logging.getLogger(__name__)

CLASS_CAP = 1000
MAX_CLASS_WEIGHT = 5.0
HIDDEN = 64
DROPOUT = 0.5
WEIGHT_DECAY = 1e-3
LEARNING_RATE = 1e-3
BATCH_SIZE = 128
MIN_STEPS = 400
EPOCHS = 40
# NOTE: caps the optimiser steps so that a retrain over tens of thousands of
# rows stays under a minute with three views. At 27,000 training rows, 12,600
# remain after the class cap, and 800 steps of 128 rows pass over them about
# 8 times. The cap's effect on accuracy at that size is not measured.
MAX_STEPS = 800
# NOTE: the text heads stop at MIN_STEPS. Their 1,024 inputs make each step
# cheap, so the fixed cost of a step dominates: at 800 steps their ten fits
# took 11.5 s of a 65.6 s retrain at 27,000 rows. The sample catalogue's
# folds train them MIN_STEPS steps either way, so its cross-validation
# cannot tell the two apart. The effect at that size is not measured.
TEXT_MAX_STEPS = MIN_STEPS
VALIDATION_SHARE = 0.2


class TrainingError(RuntimeError):
    """Training cannot start: too few labels, missing features, or a failed lint."""


@dataclass
class CatalogueArrays:
    """Image features, statistics and context of every usable listing, in listing-id order."""

    listing_ids: list[int]
    families: list[str]
    game_ids: list[int]
    edition_ids: list[int]
    titles: list[str]
    features: np.ndarray
    stats: np.ndarray
    phase1: np.ndarray


@dataclass
class TrainingData:
    """The catalogue's arrays plus, for each labelled listing, its row index and targets."""

    catalogue: CatalogueArrays
    rows: np.ndarray
    label_sets: list[list[str]]
    targets: np.ndarray
    platform_targets: np.ndarray
    sources: Counter = field(default_factory=Counter)

    @property
    def feature_dim(self) -> int:
        return int(self.catalogue.features.shape[1])

    @property
    def game_ids(self) -> np.ndarray:
        return np.array([self.catalogue.game_ids[i] for i in self.rows])


def catalogue_arrays(backbone_id: str, progress: bool = False) -> CatalogueArrays:
    """Featurize every usable listing's cover and return the arrays the heads read."""
    from coverpick.catalogue.models import CoverImage
    from coverpick.model.featurize import featurize, load_image_features, load_phase1, load_stats

    covers = CoverImage.objects.filter(listings__isnull=False, decode_error__isnull=True).distinct()
    featurize(covers, backbone_id, progress=progress)
    context = dataset.listing_context(dataset.usable_listings())
    return CatalogueArrays(
        listing_ids=context.listing_ids,
        families=context.families,
        game_ids=context.game_ids,
        edition_ids=context.edition_ids,
        titles=context.titles,
        features=load_image_features(context.sha256, backbone_id),
        stats=load_stats(context.sha256),
        phase1=load_phase1(context.sha256),
    )


def build_training_data(backbone_id: str, progress: bool = False) -> TrainingData:
    dataset.lint_labels()
    rows = dataset.training_rows()
    if len(rows) < dataset.MIN_TRAINING_ROWS:
        raise TrainingError(
            f"Only {len(rows)} labelled covers with a usable image; at least {dataset.MIN_TRAINING_ROWS} are needed. "
            "Import labels (coverpick import) or label covers on the labelling page first."
        )
    arrays = catalogue_arrays(backbone_id, progress)
    index = {listing_id: i for i, listing_id in enumerate(arrays.listing_ids)}
    rows = [row for row in rows if row.listing_id in index]
    picked = np.array([index[row.listing_id] for row in rows], dtype=np.int64)
    label_sets = [row.labels for row in rows]
    return TrainingData(
        catalogue=arrays,
        rows=picked,
        label_sets=label_sets,
        targets=dataset.soft_targets(label_sets),
        platform_targets=dataset.platform_targets(label_sets, [arrays.families[i] for i in picked]),
        sources=Counter(row.source for row in rows),
    )


def cap_rows(label_sets: list[list[str]], cap: int = CLASS_CAP, seed: int = 0) -> np.ndarray:
    """Indices of rows kept under a per-class cap: a row stays while any of its labels is under the cap."""
    order = list(range(len(label_sets)))
    random.Random(seed).shuffle(order)
    counts: Counter[str] = Counter()
    kept = []
    for i in order:
        labels = label_sets[i]
        if any(counts[label] < cap for label in labels):
            kept.append(i)
            counts.update(labels)
    return np.array(sorted(kept), dtype=np.int64)


def class_weights(targets: np.ndarray, max_weight: float = MAX_CLASS_WEIGHT) -> np.ndarray:
    """Square-root inverse-frequency weights, 1.0 for the largest class and capped at ``max_weight``."""
    counts = targets.sum(axis=0)
    weights = np.zeros(targets.shape[1], dtype=np.float32)
    present = counts > 0
    weights[present] = np.minimum(max_weight, np.sqrt(counts.max() / counts[present]))
    return weights


def _torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def fit_mlp(x: np.ndarray, targets: np.ndarray, weights: np.ndarray, seed: int = 0, max_steps: int = MAX_STEPS) -> MLP:
    """Fit Linear → ReLU → Dropout → Linear on soft targets with weighted cross-entropy, for at most ``max_steps`` steps."""
    import torch
    from torch import nn

    _torch_seed(seed)
    if not os.environ.get("OMP_NUM_THREADS"):
        # The heads are small: one thread is faster than contending for cores
        # with the web server, and keeps training from starving it.
        torch.set_num_threads(1)
    mean = x.mean(axis=0).astype(np.float32)
    std = np.maximum(x.std(axis=0), 1e-3).astype(np.float32)
    # One float32 array for the standardised inputs, divided in place: at
    # 12,600 rows of 8,000 inputs each temporary copy would take 400 MB.
    standardised = np.subtract(x, mean, dtype=np.float32)
    standardised /= std
    inputs = torch.from_numpy(standardised)
    goal = torch.from_numpy(targets.astype(np.float32))
    class_w = torch.from_numpy(weights.astype(np.float32))
    model = nn.Sequential(nn.Linear(x.shape[1], HIDDEN), nn.ReLU(), nn.Dropout(DROPOUT), nn.Linear(HIDDEN, targets.shape[1]))
    # The fused update does each parameter's AdamW step in one kernel. At
    # 12,600 rows of 8,000 inputs it took 6.5 ms per step against 7.5 ms for
    # foreach, and the weights after 200 steps differed by at most 3e-7.
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, fused=True)
    n = len(inputs)
    steps = min(max_steps, max(MIN_STEPS, EPOCHS * max(1, n // BATCH_SIZE)))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            batch = torch.randint(0, n, (min(BATCH_SIZE, n),), generator=generator)
            log_probs = torch.log_softmax(model(inputs[batch]), dim=1)
            row_weight = (goal[batch] * class_w).sum(dim=1)
            loss = -((goal[batch] * class_w * log_probs).sum(dim=1)).sum() / row_weight.sum().clamp_min(1e-6)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    first, last = model[0], model[3]
    return MLP(
        mean=mean,
        std=std,
        w1=first.weight.detach().numpy().copy(),
        b1=first.bias.detach().numpy().copy(),
        w2=last.weight.detach().numpy().copy(),
        b2=last.bias.detach().numpy().copy(),
    )


INNER_FOLDS = 4


def _fit_first_stage(data: TrainingData, subset: np.ndarray, seed: int, prototypes: np.ndarray) -> tuple[MLP, MLP, MLP, MLP]:
    """Fit the quality, platform and two text heads on training-row indices ``subset``, with cap and weights.

    ``prototypes`` are ``game_prototypes`` of the catalogue's features.
    """
    arrays = data.catalogue
    kept = subset[cap_rows([data.label_sets[i] for i in subset], seed=seed)]
    at = data.rows[kept]
    x_quality = quality_inputs(
        image_columns(arrays.features, at), [arrays.families[i] for i in at], image_columns(prototypes, at), arrays.stats[at]
    )
    weights = class_weights(data.targets[kept])
    quality = fit_mlp(x_quality, data.targets[kept], weights, seed)
    platform_rows = kept[data.platform_targets[kept] >= 0]
    onehot = np.eye(len(PLATFORM_FAMILIES), dtype=np.float32)[data.platform_targets[platform_rows]]
    platform_at = data.rows[platform_rows]
    platform_weights = class_weights(onehot)
    platform = fit_mlp(image_columns(arrays.features, platform_at), onehot, platform_weights, seed)
    text_quality = fit_mlp(text_columns(arrays.features, at), data.targets[kept], weights, seed, TEXT_MAX_STEPS)
    text_platform = fit_mlp(text_columns(arrays.features, platform_at), onehot, platform_weights, seed, TEXT_MAX_STEPS)
    return quality, platform, text_quality, text_platform


def fit_heads(data: TrainingData, subset: np.ndarray, seed: int = 0) -> HeadSet:
    """Fit both heads on ``subset`` (training-row indices), then the second stages on their out-of-fold outputs.

    The second stage must see first-stage outputs for covers the first stage
    did not train on, or it would learn to trust overfitted probabilities. So
    the rows are split by game into INNER_FOLDS folds, each predicted by heads
    fitted on the others. With fewer games than that, no second stage is fitted.
    """
    subset = np.asarray(subset, dtype=np.int64)
    arrays = data.catalogue
    # One array as large as the features, shared by every fit below. A
    # prototype is a mean per column, so dropping the text columns from it
    # equals averaging the image columns, without copying all features.
    prototypes = game_prototypes(arrays.features, arrays.game_ids, arrays.edition_ids)
    quality, platform, text_quality, text_platform = _fit_first_stage(data, subset, seed, prototypes)
    games = data.game_ids[subset]
    if len(set(games.tolist())) < INNER_FOLDS:
        return HeadSet(quality, platform, None, text_quality=text_quality, text_platform=text_platform)
    order = sorted(set(games.tolist()))
    random.Random(seed + 1).shuffle(order)
    fold_of = {game: i % INNER_FOLDS for i, game in enumerate(order)}
    folds = np.array([fold_of[g] for g in games])
    # Every listing of the training games, labelled or not, gets out-of-fold
    # outputs: its edition's other listings read the platform ones as
    # evidence, and its game's other covers the quality ones, to tell which
    # siblings show a box front (box_front_comparison).
    listing_folds = np.array([fold_of.get(game, -1) for game in arrays.game_ids])
    platform_by_listing = np.zeros((len(arrays.game_ids), len(PLATFORM_FAMILIES)), dtype=np.float32)
    text_platform_by_listing = np.zeros_like(platform_by_listing)
    quality_by_listing = np.zeros((len(arrays.game_ids), len(LABEL_CLASSES)), dtype=np.float32)
    quality_oof = np.zeros((len(subset), len(LABEL_CLASSES)), dtype=np.float32)
    text_quality_oof = np.zeros_like(quality_oof)
    for fold in range(INNER_FOLDS):
        inner_quality, inner_platform, inner_text_quality, inner_text_platform = _fit_first_stage(
            data, subset[folds != fold], seed, prototypes
        )
        listings = np.flatnonzero(listing_folds == fold)
        quality_by_listing[listings] = first_stage_quality(
            inner_quality, arrays.features, arrays.families, prototypes, arrays.stats, listings
        )
        held = np.flatnonzero(folds == fold)
        held_rows = data.rows[subset[held]]
        quality_oof[held] = quality_by_listing[held_rows]
        text_quality_oof[held] = inner_text_quality.probabilities(text_columns(arrays.features, held_rows), calibrated=False)
        platform_by_listing[listings] = inner_platform.probabilities(image_columns(arrays.features, listings), calibrated=False)
        text_platform_by_listing[listings] = inner_text_platform.probabilities(text_columns(arrays.features, listings), calibrated=False)
    del prototypes
    at = data.rows[subset]
    similarity = fit_similarity_space(arrays.features, full_view_dim(arrays.features.shape[1]), rows=at)
    comparisons = comparison_features(arrays.features, arrays.game_ids, arrays.edition_ids, similarity, arrays.stats)[at]
    x_stage2 = stage2_inputs(
        quality_oof,
        platform_by_listing[at],
        [arrays.families[i] for i in at],
        comparisons,
        arrays.stats[at],
        border_columns(arrays.features, at),
        arrays.phase1[at],
        text_quality_oof,
        title_match(arrays.features, arrays.titles, arrays.game_ids)[at],
        box_front_comparison(arrays.features, arrays.game_ids, quality_by_listing, similarity)[at],
        text_novelty(arrays.features, arrays.game_ids)[at],
    )
    targets = data.targets[subset]
    stage2 = fit_mlp(x_stage2, targets, class_weights(targets), seed)
    platform_stage2 = _fit_platform_stage2(data, subset, platform_by_listing, text_platform_by_listing, seed)
    return HeadSet(quality, platform, stage2, similarity, platform_stage2, text_quality, text_platform)


def _fit_platform_stage2(
    data: TrainingData, subset: np.ndarray, platform_by_listing: np.ndarray, text_platform_by_listing: np.ndarray, seed: int
) -> MLP | None:
    """Fit the platform second stage on out-of-fold first-stage outputs, or None without targets of two families.

    The two ``*_by_listing`` arrays are the out-of-fold platform and text
    platform probabilities of every listing of the ``subset`` games. The rows'
    own outputs and their editions' evidence both come from them.
    """
    known = data.platform_targets[subset] >= 0
    if len(set(data.platform_targets[subset][known].tolist())) < 2:
        return None
    at = data.rows[subset][known]
    editions = edition_platform_columns(platform_by_listing, text_platform_by_listing, data.catalogue.edition_ids, at)
    x = platform_stage2_inputs(platform_by_listing[at], data.catalogue.phase1[at], text_platform_by_listing[at], *editions)
    onehot = np.eye(len(PLATFORM_FAMILIES), dtype=np.float32)[data.platform_targets[subset][known]]
    return fit_mlp(x, onehot, class_weights(onehot), seed)


def predict_rows(heads: HeadSet, data: TrainingData, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arrays = data.catalogue
    return heads.predict(
        arrays.features, arrays.families, arrays.game_ids, arrays.edition_ids, arrays.stats, arrays.phase1, arrays.titles, data.rows[subset]
    )


def split_by_game(game_ids: np.ndarray, share: float = VALIDATION_SHARE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    games = sorted(set(game_ids.tolist()))
    random.Random(seed).shuffle(games)
    held = set(games[: max(1, round(len(games) * share))])
    validation = np.array([i for i, g in enumerate(game_ids) if g in held], dtype=np.int64)
    training = np.array([i for i, g in enumerate(game_ids) if g not in held], dtype=np.int64)
    return training, validation


def recall_report(label_sets: list[list[str]], probs: np.ndarray) -> dict:
    """Per-class recall where a prediction counts as a hit when its argmax is one of the row's labels."""
    predicted = [LABEL_CLASSES[i] for i in probs.argmax(axis=1)]
    per_class = {}
    for name in LABEL_CLASSES:
        rows = [i for i, labels in enumerate(label_sets) if name in labels]
        if rows:
            hits = sum(1 for i in rows if predicted[i] in label_sets[i])
            per_class[name] = {"recall": round(hits / len(rows), 4), "count": len(rows)}
    confusion: dict[str, Counter] = {}
    for labels, guess in zip(label_sets, predicted):
        if guess not in labels:
            for label in labels:
                confusion.setdefault(label, Counter())[guess] += 1
    return {"per_class": per_class, "confusion": {k: dict(v.most_common(3)) for k, v in confusion.items()}}


def platform_report(probs: np.ndarray, targets: np.ndarray, threshold: float) -> dict:
    known = targets >= 0
    if not known.any():
        return {"accuracy": None, "coverage": None, "count": 0}
    confident = probs.max(axis=1) >= threshold
    answered = known & confident
    correct = (probs.argmax(axis=1) == targets) & answered
    return {
        "accuracy": round(float(correct.sum() / max(1, answered.sum())), 4),
        "coverage": round(float(answered.sum() / known.sum()), 4),
        "count": int(known.sum()),
    }


def format_metrics(metrics: dict) -> list[str]:
    lines = ["Validation recall per class (held-out games):"]
    for name, entry in metrics["quality"]["per_class"].items():
        lines.append(f"  {name:<15} {entry['recall']:.2f}  (n={entry['count']})")
    worst = sorted(metrics["quality"]["per_class"].items(), key=lambda item: item[1]["recall"])[:3]
    for name, _ in worst:
        confused = metrics["quality"]["confusion"].get(name, {})
        if confused:
            lines.append(f"  {name} confused with: " + ", ".join(f"{k} ×{v}" for k, v in confused.items()))
    plat = metrics["platform"]
    if plat["accuracy"] is not None:
        lines.append(f"Platform accuracy {plat['accuracy']:.2f} at coverage {plat['coverage']:.2f} (n={plat['count']})")
    return lines


def save_checkpoint(folder: Path, heads: HeadSet, meta: dict) -> None:
    """Write heads.npz, heads.pt and meta.json into a new folder, each under a temporary name first."""
    import torch

    folder.mkdir(parents=True, exist_ok=False)
    arrays = heads.arrays()
    partial = folder / f"{WEIGHTS_FILE}.partial"
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(partial, folder / WEIGHTS_FILE)
    torch.save({name: torch.from_numpy(np.asarray(value)) for name, value in arrays.items()}, folder / "heads.pt.partial")
    os.replace(folder / "heads.pt.partial", folder / "heads.pt")
    (folder / f"{META_FILE}.partial").write_text(json.dumps(meta, indent=2))
    os.replace(folder / f"{META_FILE}.partial", folder / META_FILE)


def train(backbone_id: str | None = None, *, activate: bool = False, seed: int = 0, progress: bool = False, out=print):
    """Train both heads, save a versioned checkpoint, record its ClassifierVersion and optionally activate it."""
    from django.utils import timezone

    from coverpick.model.versions import activate_version, register_version

    backbone_id = backbone_id or conf.backbone_id()
    data = build_training_data(backbone_id, progress)
    out(f"Training rows: {len(data.label_sets)} ({', '.join(f'{k}: {v}' for k, v in sorted(data.sources.items()))})")
    training, validation = split_by_game(data.game_ids, seed=seed)
    quality_probs, platform_probs = predict_rows(fit_heads(data, training, seed), data, validation)
    metrics = {
        "quality": recall_report([data.label_sets[i] for i in validation], quality_probs),
        "platform": platform_report(platform_probs, data.platform_targets[validation], conf.platform_threshold()),
        "validation_rows": int(len(validation)),
        "training_rows": int(len(training)),
    }
    for line in format_metrics(metrics):
        out(line)
    heads = fit_heads(data, np.arange(len(data.label_sets)), seed)
    label_counts = Counter(label for labels in data.label_sets for label in labels)
    version = f"heads-{timezone.now():%Y%m%d-%H%M%S}-{backbone_id}"
    meta = {
        "version": version,
        "backbone": backbone_id,
        "backbone_precision": conf.backbone_precision(),
        "views": [view_id(view) for view in VIEWS],
        "strip_profile": PROFILE_VERSION,
        "cover_text": TEXT_VERSION,
        "text_readings": list(TEXT_READINGS),
        "feature_dim": data.feature_dim,
        "classes": list(LABEL_CLASSES),
        "platform_families": list(PLATFORM_FAMILIES),
        "layout_version": LAYOUT_VERSION,
        "quality_layout": quality_layout(data.feature_dim),
        "platform_layout": platform_layout(data.feature_dim),
        "stage2_layout": stage2_layout() if heads.stage2 is not None else None,
        "platform_stage2_layout": platform_stage2_layout() if heads.platform_stage2 is not None else None,
        "text_layout": text_layout(),
        "thresholds": {"clean": conf.clean_threshold(), "platform": conf.platform_threshold()},
        "label_counts": dict(sorted(label_counts.items())),
        "metrics": metrics,
        "hyperparameters": {
            "hidden": HIDDEN, "dropout": DROPOUT, "weight_decay": WEIGHT_DECAY, "class_cap": CLASS_CAP,
            "max_class_weight": MAX_CLASS_WEIGHT, "seed": seed, "max_steps": MAX_STEPS, "text_max_steps": TEXT_MAX_STEPS,
        },
    }
    folder = conf.model_dir() / version
    save_checkpoint(folder, heads, meta)
    record = register_version(version, backbone_id, folder, meta)
    out(f"Saved checkpoint {version} in {folder}")
    if activate:
        activate_version(record)
        out(f"Activated {version}")
    return record

"""Trained heads on the inference path: load a checkpoint folder and predict, in numpy.

A checkpoint folder holds ``meta.json`` (class list, backbone, views, input
layouts, thresholds, label counts, metrics) and ``heads.npz`` (standardisation
and the weights of the quality head, the platform head and the two second stages).
Training also writes ``heads.pt`` with the same tensors for torch users;
inference never reads it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.vision.presets import VIEWS, view_id
from coverpick.vision.profile import PROFILE_VERSION
from coverpick.vision.text import TEXT_READINGS, TEXT_VERSION
from coverpick.model.inputs import (
    LAYOUT_VERSION,
    SimilaritySpace,
    border_columns,
    box_front_comparison,
    comparison_features,
    edition_neighbours,
    edition_platform_columns,
    family_onehot,
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

META_FILE = "meta.json"
WEIGHTS_FILE = "heads.npz"


class CheckpointMismatch(ValueError):
    """A checkpoint was trained for a different class list, backbone or input layout than this code."""


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class MLP:
    """A two-layer head: standardise, Linear → ReLU → Linear, divided by a temperature."""

    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    temperature: float = 1.0

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        hidden = np.maximum(z @ self.w1.T + self.b1, 0.0)
        return hidden @ self.w2.T + self.b2

    def probabilities(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Softmax of the logits, divided by the fitted temperature unless ``calibrated`` is false."""
        logits = self.logits(x)
        return softmax(logits / self.temperature if calibrated else logits)


HEAD_NAMES = ("quality", "platform", "stage2", "platform_stage2", "text_quality", "text_platform")
ARRAY_NAMES = ("mean", "std", "w1", "b1", "w2", "b2")
SIMILARITY_ARRAYS = ("mean", "components", "scale", "bands_mean")


# wrong_console means that the cover shows another platform family than its
# listing declares. Where the platform output gives the declared family at
# least this probability (the default platform threshold), the quality output
# cannot be wrong_console.
# NOTE: fixed. A platform threshold set by `coverpick calibrate` does not move it.
DECLARED_FAMILY_SHOWN = 0.7


def rule_out_wrong_console(quality: np.ndarray, platform: np.ndarray, families: list[str]) -> np.ndarray:
    """Remove wrong_console from ``quality`` on rows whose platform output names their declared family.

    The other classes of those rows are rescaled to sum to 1. Rows that declare
    a family outside the platform head (``other``) are left alone. Without this
    rule, a clean cover of a game sold with the same art on several platforms
    was called wrong_console when its siblings of the other platforms were.
    """
    # family_onehot gives ``other`` an all-zero row, so such rows never agree.
    declared = (np.asarray(platform, dtype=np.float32) * family_onehot(families)).sum(axis=1)
    agrees = declared >= DECLARED_FAMILY_SHOWN
    if not agrees.any():
        return quality
    result = np.array(quality, dtype=np.float32, copy=True)
    result[agrees, LABEL_CLASSES.index("wrong_console")] = 0.0
    totals = result[agrees].sum(axis=1, keepdims=True)
    result[agrees] = result[agrees] / np.maximum(totals, 1e-12)
    return result


@dataclass
class HeadSet:
    """The quality and platform heads, their text heads, the second stage of each, and the space the quality stage compares covers in.

    The second stages read the text heads, so a HeadSet with a second stage has both text heads.
    """

    quality: MLP
    platform: MLP
    stage2: MLP | None
    similarity: SimilaritySpace | None = None
    platform_stage2: MLP | None = None
    text_quality: MLP | None = None
    text_platform: MLP | None = None

    def predict(self, features, families, game_ids, edition_ids, stats, phase1, titles, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """Return (quality probabilities, platform probabilities) for ``rows`` (default: all).

        All covers of the games involved must be passed, because prototypes and
        comparisons read each cover's siblings; ``rows`` picks whose verdicts to return.
        ``titles`` are the covers' game titles, which the text is matched with.
        """
        rows = np.arange(len(features)) if rows is None else np.asarray(rows, dtype=np.int64)
        prototypes = game_prototypes(features, game_ids, edition_ids)
        image = image_columns(features, rows)
        picked_families = [families[i] for i in rows]
        x_quality = quality_inputs(image, picked_families, image_columns(prototypes, rows), stats[rows])
        # The second stage was trained on uncalibrated first-stage outputs, so
        # it reads those; temperatures apply to what is returned.
        quality_raw = self.quality.probabilities(x_quality, calibrated=self.stage2 is None)
        platform_raw = self.platform.probabilities(image, calibrated=False)
        text = text_columns(features, rows)
        if self.platform_stage2 is None:
            platform = self.platform.probabilities(image)
        else:
            text_platform = self.text_platform.probabilities(text, calibrated=False)
            editions = self._edition_platform(features, edition_ids, rows, platform_raw, text_platform)
            platform = self.platform_stage2.probabilities(platform_stage2_inputs(platform_raw, phase1[rows], text_platform, *editions))
        if self.stage2 is None:
            # Heads fitted on too few games have no second stage, so the first
            # stage's outputs are the verdict.
            return quality_raw, platform
        comparisons = comparison_features(features, game_ids, edition_ids, self.similarity, stats)[rows]
        siblings_quality = self._game_quality(features, families, game_ids, prototypes, stats, rows, quality_raw)
        x_stage2 = stage2_inputs(
            quality_raw,
            platform_raw,
            picked_families,
            comparisons,
            stats[rows],
            border_columns(features, rows),
            phase1[rows],
            self.text_quality.probabilities(text, calibrated=False),
            title_match(features, titles, game_ids)[rows],
            box_front_comparison(features, game_ids, siblings_quality, self.similarity)[rows],
            text_novelty(features, game_ids)[rows],
        )
        return rule_out_wrong_console(self.stage2.probabilities(x_stage2), platform, picked_families), platform

    def _game_quality(self, features, families, game_ids, prototypes, stats, rows, quality_raw) -> np.ndarray:
        """Return first-stage quality outputs for ``rows`` and every other cover of their games, zeros elsewhere.

        ``quality_raw`` are those of ``rows``; the other covers are read through the first stage here.
        """
        quality_all = np.zeros((len(features), len(LABEL_CLASSES)), dtype=np.float32)
        quality_all[rows] = quality_raw
        games = {game_ids[i] for i in rows}
        others = np.setdiff1d([i for i, game in enumerate(game_ids) if game in games], rows)
        if len(others):
            quality_all[others] = first_stage_quality(self.quality, features, families, prototypes, stats, others)
        return quality_all

    def _edition_platform(self, features, edition_ids, rows, platform_raw, text_platform) -> tuple:
        """Return the edition inputs of the platform second stage for ``rows``, given their own first-stage outputs.

        Listings of the same editions outside ``rows`` are read through both first-stage platform heads here.
        """
        width = len(PLATFORM_FAMILIES)
        image_all = np.zeros((len(features), width), dtype=np.float32)
        text_all = np.zeros((len(features), width), dtype=np.float32)
        image_all[rows], text_all[rows] = platform_raw, text_platform
        others = np.setdiff1d(edition_neighbours(edition_ids, rows), rows)
        if len(others):
            image_all[others] = self.platform.probabilities(image_columns(features, others), calibrated=False)
            text_all[others] = self.text_platform.probabilities(text_columns(features, others), calibrated=False)
        return edition_platform_columns(image_all, text_all, edition_ids, rows)

    def arrays(self) -> dict[str, np.ndarray]:
        result = {}
        for prefix in HEAD_NAMES:
            head = getattr(self, prefix)
            if head is not None:
                for name in ARRAY_NAMES:
                    result[f"{prefix}_{name}"] = getattr(head, name)
        if self.similarity is not None:
            for name in SIMILARITY_ARRAYS:
                result[f"similarity_{name}"] = getattr(self.similarity, name)
        return result


@dataclass
class Heads:
    meta: dict
    heads: HeadSet
    folder: Path

    @property
    def quality(self) -> MLP:
        return self.heads.quality

    @property
    def platform(self) -> MLP:
        return self.heads.platform

    @property
    def views(self) -> list[str]:
        return list(self.meta["views"])

    @property
    def backbone(self) -> str:
        return self.meta["backbone"]

    @property
    def version(self) -> str:
        return self.meta["version"]

    @property
    def precision(self) -> str | None:
        """Backbone precision the heads were trained at (fp32 or int8), None for checkpoints that predate it."""
        return self.meta.get("backbone_precision")

    @property
    def clean_threshold(self) -> float:
        return float(self.meta["thresholds"]["clean"])

    @property
    def platform_threshold(self) -> float:
        return float(self.meta["thresholds"]["platform"])


def check_meta(meta: dict, backbone: str | None = None, precision: str | None = None) -> None:
    """Raise CheckpointMismatch naming each way the checkpoint's config differs from this code.

    ``backbone`` and ``precision``, when given, are the configured backbone id
    and backbone precision (coverpick.conf), which the checkpoint must match.
    """
    problems = []
    classes = meta.get("classes")
    if classes != list(LABEL_CLASSES):
        problems.append(f"class list {classes} differs from this code's {list(LABEL_CLASSES)}")
    if meta.get("platform_families") != list(PLATFORM_FAMILIES):
        problems.append(f"platform families {meta.get('platform_families')} differ from {list(PLATFORM_FAMILIES)}")
    dim = meta.get("feature_dim")
    if not isinstance(dim, int) or dim <= 0:
        problems.append(f"feature width {dim!r} is not a positive whole number")
        dim = 0
    if meta.get("layout_version") != LAYOUT_VERSION:
        problems.append(f"quality input layout version {meta.get('layout_version')} differs from {LAYOUT_VERSION}")
    if meta.get("quality_layout") != quality_layout(dim):
        problems.append(f"quality input layout {meta.get('quality_layout')} differs from {quality_layout(dim)}")
    if meta.get("platform_layout") != platform_layout(dim):
        problems.append(f"platform input layout {meta.get('platform_layout')} differs from {platform_layout(dim)}")
    if meta.get("stage2_layout") not in (None, stage2_layout()):
        problems.append(f"second-stage input layout {meta.get('stage2_layout')} differs from {stage2_layout()}")
    if meta.get("platform_stage2_layout") not in (None, platform_stage2_layout()):
        problems.append(
            f"platform second-stage input layout {meta.get('platform_stage2_layout')} differs from {platform_stage2_layout()}"
        )
    if meta.get("text_layout") not in (None, text_layout()):
        problems.append(f"text head input layout {meta.get('text_layout')} differs from {text_layout()}")
    views = [view_id(view) for view in VIEWS]
    if meta.get("views") != views:
        problems.append(f"backbone views {meta.get('views')} differ from this code's {views}")
    if meta.get("strip_profile") != PROFILE_VERSION:
        problems.append(f"strip profile {meta.get('strip_profile')!r} differs from this code's {PROFILE_VERSION!r}")
    if meta.get("cover_text") != TEXT_VERSION:
        problems.append(f"cover text {meta.get('cover_text')!r} differs from this code's {TEXT_VERSION!r}")
    if "text_readings" not in meta:
        problems.append("the checkpoint records no cover text readings, because it predates the reading of the top corners")
    elif meta["text_readings"] != list(TEXT_READINGS):
        problems.append(f"cover text readings {meta['text_readings']} differ from this code's {list(TEXT_READINGS)}")
    if backbone is not None and meta.get("backbone") != backbone:
        problems.append(f"backbone {meta.get('backbone')!r} differs from the configured {backbone!r}")
    if precision is not None:
        problems += _precision_problems(meta.get("backbone_precision"), precision)
    if problems:
        raise CheckpointMismatch(
            f"Checkpoint {meta.get('version', '?')} cannot be used: " + "; ".join(problems) + ". Retrain with `coverpick train`."
        )


def _precision_problems(trained: str | None, configured: str) -> list[str]:
    """Describe a difference between the precision the heads were trained at and the configured one."""
    if trained is None:
        return [
            f"the checkpoint does not record the backbone precision it was trained at (configured: {configured!r}), "
            "because it predates checkpoints that record it"
        ]
    if trained != configured:
        return [
            f"backbone precision {trained!r} differs from the configured {configured!r} (COVERPICK_BACKBONE_PRECISION), "
            f"and the features of the two precisions differ. To use these heads, set COVERPICK_BACKBONE_PRECISION={trained}"
        ]
    return []


def load_heads(folder: Path, backbone: str | None = None, precision: str | None = None) -> Heads:
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"No {META_FILE} in checkpoint folder {folder}. Run `coverpick train --activate`.")
    meta = json.loads(meta_path.read_text())
    check_meta(meta, backbone, precision)
    loaded = {}
    try:
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
            for prefix in HEAD_NAMES:
                if f"{prefix}_w1" in arrays:
                    loaded[prefix] = MLP(*(arrays[f"{prefix}_{name}"] for name in ARRAY_NAMES))
                    loaded[prefix].temperature = float(meta.get("temperature", {}).get(prefix, 1.0))
            similarity = None
            stored = [name for name in SIMILARITY_ARRAYS if f"similarity_{name}" in arrays]
            if stored and len(stored) < len(SIMILARITY_ARRAYS):
                absent = ", ".join(f"similarity_{name}" for name in SIMILARITY_ARRAYS if name not in stored)
                raise CheckpointMismatch(
                    f"Checkpoint {meta.get('version', '?')} lacks {absent} in {WEIGHTS_FILE}. Retrain with `coverpick train`."
                )
            if stored:
                similarity = SimilaritySpace(*(arrays[f"similarity_{name}"] for name in SIMILARITY_ARRAYS))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointMismatch(
            f"Checkpoint weights {folder / WEIGHTS_FILE} are truncated or corrupt ({exc}). Retrain with `coverpick train`."
        ) from exc
    missing = [name for name in ("quality", "platform") if name not in loaded]
    if missing:
        raise CheckpointMismatch(f"Checkpoint {meta.get('version', '?')} lacks the {' and '.join(missing)} head weights in {WEIGHTS_FILE}.")
    needs_text = [name for name in ("text_quality", "text_platform") if name not in loaded]
    if ("stage2" in loaded or "platform_stage2" in loaded) and needs_text:
        raise CheckpointMismatch(
            f"Checkpoint {meta.get('version', '?')} has a second stage but lacks the {' and '.join(needs_text)} head weights "
            f"in {WEIGHTS_FILE}. Retrain with `coverpick train`."
        )
    if "stage2" in loaded and similarity is None:
        raise CheckpointMismatch(
            f"Checkpoint {meta.get('version', '?')} has a second stage but no similarity space in {WEIGHTS_FILE}. "
            "Retrain with `coverpick train`."
        )
    heads = HeadSet(
        quality=loaded["quality"],
        platform=loaded["platform"],
        stage2=loaded.get("stage2"),
        similarity=similarity,
        platform_stage2=loaded.get("platform_stage2"),
        text_quality=loaded.get("text_quality"),
        text_platform=loaded.get("text_platform"),
    )
    return Heads(meta=meta, heads=heads, folder=folder)


@dataclass(frozen=True)
class Prediction:
    quality: str
    quality_confidence: float
    quality_probs: dict[str, float]
    platform: str
    platform_confidence: float
    platform_probs: dict[str, float]


# Covers per batch where the first quality stage reads many covers at once.
# Its inputs are twice the image features wide (the cover and its game's
# prototype), so 27,000 covers at once would take about 0.9 GB.
QUALITY_BATCH = 2048


def first_stage_quality(quality: MLP, features, families, prototypes, stats, rows) -> np.ndarray:
    """Return the first quality stage's uncalibrated outputs for ``rows``, read QUALITY_BATCH covers at a time.

    ``prototypes`` are ``game_prototypes`` of all ``features``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    result = np.zeros((len(rows), len(LABEL_CLASSES)), dtype=np.float32)
    for start in range(0, len(rows), QUALITY_BATCH):
        batch = rows[start : start + QUALITY_BATCH]
        x_quality = quality_inputs(
            image_columns(features, batch), [families[i] for i in batch], image_columns(prototypes, batch), stats[batch]
        )
        result[start : start + len(batch)] = quality.probabilities(x_quality, calibrated=False)
    return result


def decide(quality_probs: np.ndarray, platform_probs: np.ndarray, clean_threshold: float, platform_threshold: float) -> list[Prediction]:
    """Turn probability rows into verdicts.

    The quality verdict is the argmax class name verbatim; an argmax of
    ``clean`` below the clean threshold becomes ``unknown``. The platform
    verdict is ``unknown`` below the platform threshold.
    """
    predictions = []
    for q_row, p_row in zip(quality_probs, platform_probs):
        q_index = int(np.argmax(q_row))
        quality = LABEL_CLASSES[q_index]
        if quality == "clean" and q_row[q_index] < clean_threshold:
            quality = "unknown"
        p_index = int(np.argmax(p_row))
        platform = PLATFORM_FAMILIES[p_index] if p_row[p_index] >= platform_threshold else "unknown"
        predictions.append(
            Prediction(
                quality=quality,
                quality_confidence=float(q_row[q_index]),
                quality_probs={name: round(float(p), 5) for name, p in zip(LABEL_CLASSES, q_row)},
                platform=platform,
                platform_confidence=float(p_row[p_index]),
                platform_probs={name: round(float(p), 5) for name, p in zip(PLATFORM_FAMILIES, p_row)},
            )
        )
    return predictions

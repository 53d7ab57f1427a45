"""Head input layouts, shared by training and inference (numpy only).

The quality head reads, in this order: image features (D), a one-hot of the
listing's declared platform family (4, all zeros for "other"), the game
prototype (D: mean features of the covers of the game's other editions, zeros
when there are none) and the 10 image statistics. The platform head reads the
image features alone. A checkpoint stores the layout it was trained with, and
loading refuses a layout that differs from this module's.
"""

from __future__ import annotations

import numpy as np

from coverpick.labels import PLATFORM_FAMILIES

N_STATS = 10
LAYOUT_VERSION = 1


def quality_layout(feature_dim: int) -> list[list]:
    """Return the quality head's input layout as [name, width] pairs."""
    return [
        ["features", feature_dim],
        ["declared_family_onehot", len(PLATFORM_FAMILIES)],
        ["game_prototype", feature_dim],
        ["image_statistics", N_STATS],
    ]


def platform_layout(feature_dim: int) -> list[list]:
    return [["features", feature_dim]]


def family_onehot(families: list[str]) -> np.ndarray:
    """One-hot rows for declared families; a family outside the four heads' families is all zeros."""
    onehot = np.zeros((len(families), len(PLATFORM_FAMILIES)), dtype=np.float32)
    for row, family in enumerate(families):
        if family in PLATFORM_FAMILIES:
            onehot[row, PLATFORM_FAMILIES.index(family)] = 1.0
    return onehot


def game_prototypes(features: np.ndarray, game_ids: list, edition_ids: list) -> np.ndarray:
    """Mean features of each row's game's covers on OTHER editions; zeros where the game has no other edition.

    Rows are covers; two rows of the same edition never feed each other's prototype.
    """
    features = np.asarray(features, dtype=np.float32)
    prototypes = np.zeros_like(features)
    game_sum: dict = {}
    game_count: dict = {}
    edition_sum: dict = {}
    edition_count: dict = {}
    for row, (game, edition) in enumerate(zip(game_ids, edition_ids)):
        game_sum[game] = game_sum.get(game, 0) + features[row]
        game_count[game] = game_count.get(game, 0) + 1
        edition_sum[edition] = edition_sum.get(edition, 0) + features[row]
        edition_count[edition] = edition_count.get(edition, 0) + 1
    for row, (game, edition) in enumerate(zip(game_ids, edition_ids)):
        others = game_count[game] - edition_count[edition]
        if others > 0:
            prototypes[row] = (game_sum[game] - edition_sum[edition]) / others
    return prototypes


def quality_inputs(features: np.ndarray, families: list[str], prototypes: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Concatenate the quality head's inputs in layout order."""
    return np.concatenate(
        [
            np.asarray(features, dtype=np.float32),
            family_onehot(families),
            np.asarray(prototypes, dtype=np.float32),
            np.asarray(stats, dtype=np.float32).reshape(len(families), N_STATS),
        ],
        axis=1,
    )

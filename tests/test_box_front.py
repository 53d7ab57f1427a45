"""The second stage's comparison with the siblings that show a box front.

A clean cover whose game's other listings are flat-lays of the contents or of
a deluxe edition's items shares little with them, and without this input it
read as a cover of another game.
"""

from __future__ import annotations

import numpy as np
import pytest

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model.inputs import FLAT_LAY_CEILING, N_BOX_FRONT, N_TEXT_NOVELTY, box_front_comparison, stage2_layout
from tests.test_title_match import neutral_stage2


def quality(*classes: str) -> np.ndarray:
    """First-stage quality outputs that give each row's class 0.9 and spread the rest evenly."""
    rows = np.full((len(classes), len(LABEL_CLASSES)), 0.1 / (len(LABEL_CLASSES) - 1), dtype=np.float32)
    for row, name in enumerate(classes):
        rows[row, LABEL_CLASSES.index(name)] = 0.9
    return rows


def directions(*angles: float) -> np.ndarray:
    """Features on the unit circle, so the cosine similarity of two rows is the cosine of their angle apart."""
    return np.array([[np.cos(a), np.sin(a)] for a in angles], dtype=np.float32)


def test_flat_lay_siblings_are_not_compared():
    # A clean cover at 0, a flat-lay of its contents at 90 degrees and a deluxe flat-lay at 120.
    features = directions(0.0, np.pi / 2, 2 * np.pi / 3)
    result = box_front_comparison(features, ["g"] * 3, quality("clean", "contents", "deluxe_bundle"))

    # No sibling of the clean cover shows a box front, so nothing contradicts it.
    assert result[0, 0] == 1.0
    # Each flat-lay is compared with the clean cover alone, not with the other flat-lay.
    np.testing.assert_allclose(result[1:, 0], [np.cos(np.pi / 2), np.cos(2 * np.pi / 3)], atol=1e-6)
    # The second column is the siblings' mean of one minus their flat-lay probability.
    rest = 0.1 / (len(LABEL_CLASSES) - 1)
    clean_front, flat_lay_front = 1.0 - 2 * rest, 1.0 - 0.9 - rest
    assert result[0, 1] == pytest.approx(flat_lay_front, abs=1e-6)
    assert result[1, 1] == pytest.approx((clean_front + flat_lay_front) / 2, abs=1e-6)


def test_nearest_box_front_sibling_decides():
    # Two box fronts at 0 and 30 degrees, a cover of another picture at 150, and a game of its own.
    features = directions(0.0, np.pi / 6, 5 * np.pi / 6, 0.0)
    result = box_front_comparison(features, ["g", "g", "g", "h"], quality("clean", "3d_render", "clean", "clean"))

    np.testing.assert_allclose(result[:3, 0], [np.cos(np.pi / 6), np.cos(np.pi / 6), np.cos(2 * np.pi / 3)], atol=1e-6)
    # A cover without siblings has the neutral similarity and no siblings to look like box fronts.
    np.testing.assert_array_equal(result[3], [1.0, 0.0])


def test_flat_lay_classes_count_together():
    probs = np.full((2, len(LABEL_CLASSES)), 0.0, dtype=np.float32)
    probs[:, LABEL_CLASSES.index("clean")] = 1.0
    # The second cover is a flat-lay by the two classes together, though by neither alone.
    share = FLAT_LAY_CEILING / 2 + 0.01
    probs[1, LABEL_CLASSES.index("clean")] = 1.0 - 2 * share
    probs[1, LABEL_CLASSES.index("contents")] = share
    probs[1, LABEL_CLASSES.index("deluxe_bundle")] = share

    result = box_front_comparison(directions(0.0, np.pi / 2), ["g", "g"], probs)

    assert result[0, 0] == 1.0
    assert result[1, 0] == pytest.approx(0.0, abs=1e-6)
    assert result[0, 1] == pytest.approx(1.0 - 2 * share)


def test_stage2_reads_box_front():
    n = 2
    box_front = np.array([[0.9, 0.8], [1.0, 0.1]], dtype=np.float32)
    x = neutral_stage2(["sony", "xbox"], box_front=box_front)

    layout = stage2_layout()
    assert x.shape == (n, sum(width for _, width in layout))
    assert layout[-2] == ["box_front_comparison", N_BOX_FRONT]
    np.testing.assert_array_equal(x[:, -N_BOX_FRONT - N_TEXT_NOVELTY : -N_TEXT_NOVELTY], box_front)


def test_predict_one_cover_matches_all():
    from coverpick.model.heads import HeadSet
    from coverpick.model.inputs import fit_similarity_space, full_view_dim, platform_stage2_layout, quality_layout
    from coverpick.vision.profile import PROFILE_DIM
    from coverpick.vision.text import TEXT_DIM
    from tests.test_reliability_checkpoints import random_mlp

    rng = np.random.default_rng(3)
    # A game of three covers and a game of one, in the full layout: 8 image columns, text, profile.
    width = 8 + TEXT_DIM + PROFILE_DIM
    features = rng.normal(size=(4, width)).astype(np.float32)
    families, games, editions = ["sony", "sony", "xbox", "pc"], ["g", "g", "g", "h"], ["e1", "e1", "e2", "e3"]
    stats, phase1 = rng.normal(size=(4, 10)).astype(np.float32), np.zeros((4, len(PLATFORM_FAMILIES)), np.float32)
    titles = ["Game", "Game", "Game", "Other"]
    heads = HeadSet(
        quality=random_mlp(rng, sum(w for _, w in quality_layout(width)), len(LABEL_CLASSES)),
        platform=random_mlp(rng, width - TEXT_DIM, len(PLATFORM_FAMILIES)),
        stage2=random_mlp(rng, sum(w for _, w in stage2_layout()), len(LABEL_CLASSES)),
        similarity=fit_similarity_space(features, full_view_dim(width)),
        platform_stage2=random_mlp(rng, sum(w for _, w in platform_stage2_layout()), len(PLATFORM_FAMILIES)),
        text_quality=random_mlp(rng, TEXT_DIM, len(LABEL_CLASSES)),
        text_platform=random_mlp(rng, TEXT_DIM, len(PLATFORM_FAMILIES)),
    )

    # The sweep may ask for one cover alone; its siblings' first-stage outputs are read all the same.
    together, _ = heads.predict(features, families, games, editions, stats, phase1, titles)
    alone, _ = heads.predict(features, families, games, editions, stats, phase1, titles, rows=np.array([0]))

    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-7)

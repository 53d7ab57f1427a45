"""Matching a cover's printed text with its game's title: the second stage's evidence for wrong_game."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model.inputs import (
    BORDER_COLUMNS,
    N_BOX_FRONT,
    N_COMPARISONS,
    N_STATS,
    N_TEXT_NOVELTY,
    N_TITLE_MATCH,
    stage2_inputs,
    stage2_layout,
    title_match,
)
from coverpick.vision.profile import PROFILE_DIM
from coverpick.vision.text import TEXT_DIM, TextLine, TextReader, text_vector
from tests.conftest import SHARED

IMAGES = SHARED / "catalogue" / "images"
# Two covers of the sample catalogue whose titles the reader can make out
# (see truth.jsonl): Dark Souls III on PS4 and Kane & Lynch: Dead Men on Xbox 360.
DARK_SOULS = IMAGES / "pixelcrate" / "0193.jpg"
KANE_AND_LYNCH = IMAGES / "pixelcrate" / "0046.jpg"
BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def features_with_text(vectors: list[np.ndarray]) -> np.ndarray:
    """Image features in the heads' layout: a few image columns, the given text vectors, then an empty profile."""
    features = np.zeros((len(vectors), 8 + TEXT_DIM + PROFILE_DIM), dtype=np.float32)
    features[:, 8 : 8 + TEXT_DIM] = np.stack(vectors)
    return features


def printed(*lines: str) -> np.ndarray:
    return text_vector([TextLine(text=line, score=1.0, box=BOX) for line in lines])


def read(reader: TextReader, path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.fail(f"Sample cover not found at {path}; set COVERPICK_SHARED to the folder that holds catalogue/.")
    return text_vector(reader.read(Image.open(path).convert("RGB")))


def test_title_match_real_covers():
    # Both covers are listed under one game at a time, so one of them is always a cover of another game.
    reader = TextReader()
    text = [read(reader, DARK_SOULS), read(reader, KANE_AND_LYNCH)]
    features = features_with_text(text)

    as_dark_souls = title_match(features, ["Dark Souls III", "Dark Souls III"], ["g1", "g1"])
    as_kane = title_match(features, ["Kane & Lynch: Dead Men", "Kane & Lynch: Dead Men"], ["g2", "g2"])

    assert as_dark_souls[0, 0] > 0.5
    assert as_dark_souls[1, 0] < 0.2
    assert as_kane[1, 0] > 0.5
    assert as_kane[0, 0] < 0.2
    # The contrast with the other cover of the game points at the stranger.
    assert as_dark_souls[0, 2] > 0.3
    assert as_dark_souls[1, 2] < -0.3
    # The second column is the text's own density, whatever the title.
    np.testing.assert_allclose(as_dark_souls[:, 1], as_kane[:, 1])
    np.testing.assert_allclose(as_dark_souls[:, 1], (np.stack(text) > 0).mean(axis=1), rtol=1e-6)


def test_title_match_share_of_buckets():
    features = features_with_text([printed("SUPER HANG-ON"), printed("Gran Turismo"), printed()])

    result = title_match(features, ["Super Hang-On", "Super Hang-On", "Super Hang-On"], ["g1", "g1", "g1"])

    assert result.shape == (3, N_TITLE_MATCH)
    assert result[0, 0] == pytest.approx(1.0)
    assert result[2, 0] == 0.0
    assert result[2, 1] == 0.0
    # Each cover is contrasted with the best of the others: the first with the
    # second, the others with the first.
    np.testing.assert_allclose(result[:, 2], [1.0 - result[1, 0], result[1, 0] - 1.0, -1.0], atol=1e-6)


def test_title_match_non_latin_title():
    """A title without letters or digits of a-z and 0-9 is no evidence for or against any cover."""
    features = features_with_text([printed("DOSHIN THE GIANT"), printed("Another game entirely")])

    result = title_match(features, ["巨人のドシン", "巨人のドシン"], ["g1", "g1"])

    np.testing.assert_array_equal(result[:, 0], result[:, 1])
    np.testing.assert_array_equal(result[:, 2], [0.0, 0.0])


def test_title_match_single_cover_game():
    features = features_with_text([printed("Rayman Origins"), printed("Rayman Origins")])

    result = title_match(features, ["Rayman Origins", "Catherine"], ["g1", "g2"])

    assert result[0, 0] == pytest.approx(1.0)
    np.testing.assert_array_equal(result[:, 2], [0.0, 0.0])


def neutral_stage2(families: list[str], titles=None, box_front=None, novelty=None) -> np.ndarray:
    """Return second-stage inputs with uniform probabilities and zeros, except for the parts given."""
    n = len(families)
    uniform = np.full((n, len(LABEL_CLASSES)), 1.0 / len(LABEL_CLASSES))
    return stage2_inputs(
        uniform,
        np.full((n, len(PLATFORM_FAMILIES)), 0.25),
        families,
        np.zeros((n, N_COMPARISONS)),
        np.zeros((n, N_STATS)),
        np.zeros((n, BORDER_COLUMNS)),
        np.zeros((n, len(PLATFORM_FAMILIES))),
        uniform,
        np.zeros((n, N_TITLE_MATCH)) if titles is None else titles,
        np.zeros((n, N_BOX_FRONT)) if box_front is None else box_front,
        np.zeros((n, N_TEXT_NOVELTY)) if novelty is None else novelty,
    )


def test_stage2_inputs_title_columns():
    n = 2
    titles = np.array([[0.9, 0.05, 0.8], [0.1, 0.07, -0.8]], dtype=np.float32)
    x = neutral_stage2(["sony", "xbox"], titles=titles)

    layout = stage2_layout()
    assert x.shape == (n, sum(width for _, width in layout))
    assert layout[-3] == ["title_match", N_TITLE_MATCH]
    tail = N_BOX_FRONT + N_TEXT_NOVELTY
    np.testing.assert_array_equal(x[:, -N_TITLE_MATCH - tail : -tail], titles)

"""Printed text that a cover carries and its game's other covers lack: the second stage's evidence for an added notice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from coverpick.model.inputs import N_TEXT_NOVELTY, stage2_layout, text_novelty
from coverpick.vision.text import TextReader, text_vector
from tests.conftest import SHARED
from tests.test_title_match import features_with_text, neutral_stage2, printed

# A clean PS4 cover of the sample catalogue (Dark Souls III, see truth.jsonl).
DARK_SOULS = SHARED / "catalogue" / "images" / "pixelcrate" / "0193.jpg"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def test_text_novelty_added_line():
    features = features_with_text([printed("SUPER HANG-ON", "SEGA"), printed("SUPER HANG-ON", "SEGA", "Digital copy only, disc not included")])

    result = text_novelty(features, ["g1", "g1"])

    assert result.shape == (2, N_TEXT_NOVELTY)
    # The plain cover's words all appear on the other one.
    assert result[0, 0] == 0.0
    assert result[0, 1] == 0.0
    assert result[1, 0] > 2.0
    assert 0.5 < result[1, 1] < 1.0
    np.testing.assert_array_equal(result[:, 2], [1.0, 1.0])


def test_text_novelty_nearest_of_several():
    """The sibling with the fewest new buckets sets the measure, so one stranger among the siblings does not raise it."""
    features = features_with_text([printed("Gran Turismo 4"), printed("Gran Turismo 4"), printed("Ridge Racer Type 4")])

    result = text_novelty(features, ["g1", "g1", "g1"])

    assert result[0, 0] == 0.0
    assert result[1, 0] == 0.0
    assert result[2, 0] > 1.0


def test_text_novelty_nothing_to_compare():
    features = features_with_text([printed("Rayman Origins"), printed(), printed("Catherine")])

    result = text_novelty(features, ["g1", "g1", "g2"])

    # The first cover's only sibling has no text, and the third cover has no sibling.
    np.testing.assert_array_equal(result[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(result[2], [0.0, 0.0, 0.0])
    # A cover without text adds nothing, though it has a sibling to compare with.
    np.testing.assert_array_equal(result[1], [0.0, 0.0, 1.0])


def test_text_novelty_painted_notice():
    if not DARK_SOULS.is_file():
        pytest.fail(f"Sample cover not found at {DARK_SOULS}; set COVERPICK_SHARED to the folder that holds catalogue/.")
    if not Path(FONT).is_file():
        pytest.fail(f"Font not found at {FONT}; install the Debian package fonts-dejavu-core.")
    plain = Image.open(DARK_SOULS).convert("RGB")
    noticed = plain.copy()
    band = plain.height // 14
    draw = ImageDraw.Draw(noticed)
    draw.rectangle((0, 0, plain.width, band), fill=(250, 200, 20))
    face = ImageFont.truetype(FONT, int(band * 0.6))
    draw.text((plain.width / 2, band / 2), "Activation voucher inside, no disc", font=face, fill=(0, 0, 0), anchor="mm")
    reader = TextReader()
    features = features_with_text([text_vector(reader.read(plain)), text_vector(reader.read(noticed))])

    result = text_novelty(features, ["g1", "g1"])

    assert result[1, 0] > result[0, 0] + 1.0
    assert result[1, 1] > 0.2


def test_stage2_reads_novelty_last():
    n = 2
    novelty = np.array([[4.1, 0.6, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    x = neutral_stage2(["sony", "xbox"], novelty=novelty)

    layout = stage2_layout()
    assert x.shape == (n, sum(width for _, width in layout))
    assert layout[-1] == ["text_novelty", N_TEXT_NOVELTY]
    np.testing.assert_array_equal(x[:, -N_TEXT_NOVELTY:], novelty)

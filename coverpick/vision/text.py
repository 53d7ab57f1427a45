"""The words printed on a cover, read by an OCR model and hashed into a fixed-length vector.

Key-card and code-in-a-box notices, "available on" strips and "art not
final" stamps differ from a clean cover mostly in their words, and the
pooled features of an ImageNet backbone do not read words. A console's
wordmark in a banner is also a word. So each cover is read once with the
PP-OCR text detector and recogniser. The rapidocr-onnxruntime package ships
both as ONNX files inside its wheel, so nothing is downloaded. The text
becomes counts of character 3- and 4-grams, hashed into TEXT_DIM buckets.
Character n-grams of the letters and digits alone survive the recogniser's
habit of dropping spaces ("Codeinabox") and its odd wrong letter, and they
match a notice worded differently when the words share their stems.

The text heads read this vector (see coverpick.model.inputs). On the sample
catalogue, under cross-validation by game over two seeds, they raised ciab
recall from about 0.60 to 0.95 and placeholder from 0.73 to 0.94. They raised
multi_platform from about 0.68 to 0.82 and gkc from about 0.72 to 0.80. The position of the text
boxes alone (how many, how wide, how close to an edge, how tilted) moved no
class beyond fold noise, so only the words are kept.

Reading costs about 0.37 s per cover on one core, with its second JPEG
decode, ten times the backbone's three views. The result is cached by
image content like the features, so it is paid once per distinct image.

Two more readings join the words of the cover (coverpick.model.featurize
adds them up): the spine word up the left edge (``read_spine``) and the
words across the top corners, turned level (``read_corners``, about 0.12 s
more per cover). On the sample catalogue, under cross-validation by game
over five fold seeds and two training seeds, the corner reading raised gkc
recall from 0.82 to 0.86 on average and the lowest run from 0.79 to 0.81.
Most of the gain is on key-card sashes across a top corner, which had been
called clean.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

# v1: PP-OCRv4 detection (shorter side scaled to DETECT_SIDE) and recognition,
# character 3- and 4-grams of letters and digits, TEXT_DIM buckets.
TEXT_VERSION = "cover-text-v1"
TEXT_DIM = 1024
GRAM_SIZES = (3, 4)
# The JPEG draft size the cover is decoded at for reading: large enough for
# the small print of a notice, small enough to decode quickly.
READ_SIZE = 640
# The detector scales the image so that its shorter side is this long. On 40
# sample covers, on one thread, 480 took 0.29 s per cover and found 268 text
# boxes, against 0.48 s and 340 boxes at the package's default of 736.
DETECT_SIDE = 480
# Images with a shorter side than this have no legible text to read.
MIN_SIDE = 16
# The spine reading (TextReader.read_spine) has a cache of its own, so that
# adding it left the cached text vectors valid.
SPINE_VERSION = "cover-spine-v1"
# Share of the cover's width, from its left edge, that the spine covers.
# NOTE: checked only on the sample's PlayStation and Nintendo DS covers. How
# other spine widths fare is untested, and a spine on the right edge is not read.
SPINE_SHARE = 0.12
# A spine reading below this recognition score is dropped, because a spine
# without words still yields a few letters at low scores.
SPINE_MIN_SCORE = 0.5
# The corner reading (TextReader.read_corners) has a cache of its own too.
CORNER_VERSION = "cover-corners-v1"
# Side of the square read at each top corner, as a share of the cover's shorter side.
CORNER_SHARE = 0.4
# The detector's shorter side for a corner square turned 45 degrees. On 40
# sample covers it took 0.13 s per cover for both corners against 0.21 s at
# DETECT_SIDE (decode excluded). On 8 other sample covers, each with a
# key-card sash across a top corner, it read every sash at either side.
CORNER_DETECT_SIDE = 320
# The readings whose words make up a cover's text vector (see
# coverpick.model.featurize.load_texts). A checkpoint records them, since
# heads trained on one set of readings misread a vector made of another.
TEXT_READINGS = (TEXT_VERSION, SPINE_VERSION, CORNER_VERSION)
# The detector scales the shorter side to DETECT_SIDE, so its work grows with
# the aspect ratio: a 2000×20 strip would become 48,000×480 pixels. Longer
# images are padded with white to this ratio first.
MAX_ASPECT = 4.0
_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]")


class TextReaderUnavailable(RuntimeError):
    """The OCR package is not installed, or its version lacks what the reader needs."""


@dataclass(frozen=True)
class TextLine:
    text: str
    score: float
    # Four (x, y) corners in the read image's pixels, clockwise from top left.
    box: tuple[tuple[float, float], ...]


class TextReader:
    """Read text lines from RGB covers with one OCR engine, built on first use.

    The engine runs each ONNX model on ``threads`` threads: by default
    OMP_NUM_THREADS or one, as for the backbone, so reading leaves the web
    server its core. It skips the text-angle classifier, which only separates
    upright lines from upside-down ones. Box art prints its words upright or a
    quarter turn round the spine. An upside-down cover is too rare to pay the
    classifier's time on every line.
    """

    def __init__(self, threads: int | None = None):
        from coverpick.vision.extract import intra_op_threads

        self.threads = threads or intra_op_threads()
        self._engine = None

    def _load(self):
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise TextReaderUnavailable(
                    "Reading cover text needs the package rapidocr-onnxruntime: pip install rapidocr-onnxruntime "
                    "(or reinstall coverpick, which depends on it)."
                ) from exc
            self._engine = RapidOCR(
                det_limit_side_len=DETECT_SIDE,
                intra_op_num_threads=self.threads,
                inter_op_num_threads=1,
            )
        return self._engine

    def read(self, rgb: Image.Image) -> list[TextLine]:
        """Return the text lines found on the RGB image, in the engine's reading order."""
        if rgb.mode != "RGB":
            raise ValueError(f"TextReader.read needs an RGB image, got mode {rgb.mode!r}; convert it first.")
        if min(rgb.size) < MIN_SIDE:
            return []
        found, _ = self._load()(bounded_aspect(rgb), use_cls=False)
        return [
            TextLine(text=str(text), score=float(score), box=tuple((float(x), float(y)) for x, y in box))
            for box, text, score in (found or [])
        ]

    def read_corners(self, rgb: Image.Image) -> list[TextLine]:
        """Return the text lines found in the cover's two top corners, each turned so that a diagonal sash reads level.

        Shops lay a sash across a top corner ("Game-Key Card", "Pre-order",
        "New") at 45 degrees. ``read`` reads most such sashes too, among all
        the other words of the cover. This second reading counts the words of
        the top corners again, so that they weigh more in the text vector than
        the same words elsewhere on the cover. A square of CORNER_SHARE of the
        shorter side is cut from each top corner and turned: the top right 45
        degrees anticlockwise, the top left 45 degrees clockwise. Each square
        is then read like a cover, with its shorter side scaled to
        CORNER_DETECT_SIDE. Lines keep the boxes of the turned squares.
        """
        if rgb.mode != "RGB":
            raise ValueError(f"TextReader.read_corners needs an RGB image, got mode {rgb.mode!r}; convert it first.")
        width, height = rgb.size
        side = round(CORNER_SHARE * min(width, height))
        if side < MIN_SIDE:
            return []
        engine = self._load()
        lines = []
        for box, angle in (((width - side, 0, width, side), 45), ((0, 0, side, side), -45)):
            square = rgb.crop(box).rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))
            found = self._read_at(engine, square, CORNER_DETECT_SIDE)
            lines += [
                TextLine(text=str(text), score=float(score), box=tuple((float(x), float(y)) for x, y in points))
                for points, text, score in found
            ]
        return lines

    @staticmethod
    def _read_at(engine, rgb: Image.Image, detect_side: int) -> list:
        """Run detection and recognition with the detector's shorter side at ``detect_side``, then restore the side it had.

        NOTE: the engine's detector side is set for the call, so a TextReader
        must not read from two threads at once. coverpick gives each pass a
        reader of its own.
        """
        detector = getattr(engine, "text_det", None)
        if not hasattr(detector, "limit_side_len"):
            raise TextReaderUnavailable(
                "This rapidocr-onnxruntime version has no text_det.limit_side_len, which the corner reading sets. "
                "Install the version range that coverpick's pyproject.toml names (rapidocr-onnxruntime>=1.4,<2)."
            )
        earlier = detector.limit_side_len
        detector.limit_side_len = detect_side
        try:
            found, _ = engine(rgb, use_cls=False)
        finally:
            detector.limit_side_len = earlier
        return found or []

    def read_spine(self, rgb: Image.Image) -> list[TextLine]:
        """Return the word printed up the cover's left spine, as at most one line.

        Many box fronts print the console's name up the left spine
        ("PlayStation", "NINTENDO DS"), a quarter turn from the rest of the
        text, and the detector in ``read`` misses it. The left SPINE_SHARE of
        the cover is turned a quarter clockwise and given to the recogniser
        alone, which reads it as one line.
        """
        if rgb.mode != "RGB":
            raise ValueError(f"TextReader.read_spine needs an RGB image, got mode {rgb.mode!r}; convert it first.")
        width, height = rgb.size
        spine_width = round(SPINE_SHARE * width)
        # A banner taller than MAX_ASPECT times its width is no box front, and
        # its strip would give the recogniser one very long line.
        if min(spine_width, height) < MIN_SIDE or height > MAX_ASPECT * width:
            return []
        strip = rgb.crop((0, 0, spine_width, height)).rotate(-90, expand=True)
        found, _ = self._load()(strip, use_det=False, use_cls=False, use_rec=True)
        box = ((0.0, 0.0), (float(spine_width), 0.0), (float(spine_width), float(height)), (0.0, float(height)))
        return [
            TextLine(text=str(text), score=float(score), box=box) for text, score in (found or []) if float(score) >= SPINE_MIN_SCORE
        ]


def bounded_aspect(rgb: Image.Image) -> Image.Image:
    """Return the image padded with white on its right or bottom so that its longer side is at most MAX_ASPECT times its shorter."""
    width, height = rgb.size
    if max(width, height) <= MAX_ASPECT * min(width, height):
        return rgb
    short = math.ceil(max(width, height) / MAX_ASPECT)
    canvas = Image.new("RGB", (max(width, short), max(height, short)), (255, 255, 255))
    canvas.paste(rgb, (0, 0))
    return canvas


def text_grams(text: str) -> list[str]:
    """Character GRAM_SIZES-grams of the lowercased letters and digits of ``text``, all spaces and punctuation removed."""
    letters = _NOT_ALPHANUMERIC.sub("", text.lower())
    return [letters[start : start + size] for size in GRAM_SIZES for start in range(len(letters) - size + 1)]


def gram_bucket(gram: str) -> int:
    """Return the text-vector bucket of one character n-gram (CRC-32, so the same in every process)."""
    return zlib.crc32(gram.encode("ascii")) % TEXT_DIM


def title_buckets(title: str) -> np.ndarray:
    """Return the sorted, distinct text-vector buckets of the n-grams of ``title``.

    The result is empty when the title has no letters a-z or digits 0-9.
    """
    return np.array(sorted({gram_bucket(gram) for gram in text_grams(title)}), dtype=np.int64)


def text_vector(lines: list[TextLine]) -> np.ndarray:
    """Hash the lines' character n-grams into TEXT_DIM buckets: log(1 + sum of recognition scores) per bucket.

    CRC-32 is the hash, so a gram lands in the same bucket in every process
    and on every machine. A cover without text gives zeros.
    """
    counts = np.zeros(TEXT_DIM, dtype=np.float64)
    for line in lines:
        for gram in text_grams(line.text):
            counts[gram_bucket(gram)] += line.score
    return np.log1p(counts).astype(np.float32)

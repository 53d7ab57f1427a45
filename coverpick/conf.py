"""coverpick's own settings: paths and thresholds, each with its default and environment variable.

This module imports nothing heavy, so the idle tick can read it before
Django, numpy or ONNX Runtime are loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CLEAN_THRESHOLD = 0.35
DEFAULT_PLATFORM_THRESHOLD = 0.70
DEFAULT_BACKBONE = "efficientnet_lite0"
# Numeric precisions of the backbone's ONNX model. Their features differ, so
# heads trained at one precision are rejected at the other.
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
# Valid backbone ids (coverpick.vision.backbones.BACKBONES contains their details).
BACKBONE_IDS = ("efficientnet_lite0", "mobilenet_v3_small")


class SettingError(ValueError):
    """An environment variable set to a value coverpick cannot use; the message names it and the fix."""


def home() -> Path:
    """Return COVERPICK_HOME (default ./var), the folder for the database, images, features and models."""
    # An empty value counts as unset, so `COVERPICK_HOME= coverpick ...` does not use the current folder.
    return Path(os.environ.get("COVERPICK_HOME", "").strip() or "var").resolve()


def sqlite_path() -> Path:
    return home() / "coverpick.sqlite3"


def image_store_dir() -> Path:
    return home() / "images"


def feature_cache_dir() -> Path:
    return home() / "features"


def display_copy_dir() -> Path:
    """Folder of the PNG copies the web pages send for covers stored in a format browsers do not show (TIFF, JPEG 2000)."""
    return home() / "display"


def text_cache_dir() -> Path:
    """Folder of the cached cover text vectors: COVERPICK_TEXT_CACHE, else the feature cache.

    Text vectors are keyed by image content and depend on nothing else, so
    several homes (a staging copy, the test suite's many homes) can share one
    folder and read each image once.
    """
    raw = os.environ.get("COVERPICK_TEXT_CACHE", "").strip()
    if not raw:
        return feature_cache_dir()
    return make_folder(
        Path(raw).expanduser(),
        f"COVERPICK_TEXT_CACHE={raw!r} cannot be used as the cover text cache",
        "Set it to a folder coverpick may create and write, or unset it to keep the text in COVERPICK_HOME/features.",
    )


def file_in_the_way(path: Path) -> Path | None:
    """Return the nearest of ``path`` and its parents that exists when it is a file, not a folder; else None."""
    existing = next((folder for folder in (path, *path.parents) if folder.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def make_folder(folder: Path, problem: str, fix: str) -> Path:
    """Create ``folder`` if needed and return it. Raise SettingError with ``problem``, the cause and ``fix`` when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # A file in the path raises FileExistsError or NotADirectoryError, whose message hides the cause.
        blocked = isinstance(exc, (FileExistsError, NotADirectoryError))
        raise SettingError(f"{problem} ({'a file is in the way' if blocked else exc.strerror or exc}). {fix}") from None
    return folder


def model_dir() -> Path:
    return home() / "models"


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number; set it to a probability such as {default}.") from None
    if not 0.0 <= value <= 1.0:
        raise SettingError(f"{name}={raw!r} is outside [0, 1]; set it to a probability such as {default}.")
    return value


def clean_threshold() -> float:
    """Probability below which a predicted `clean` becomes `unknown` (CLEAN_THRESHOLD)."""
    return _float_env("CLEAN_THRESHOLD", DEFAULT_CLEAN_THRESHOLD)


def platform_threshold() -> float:
    """Probability below which the platform head abstains (PLATFORM_THRESHOLD)."""
    return _float_env("PLATFORM_THRESHOLD", DEFAULT_PLATFORM_THRESHOLD)


def backbone_id() -> str:
    """Return the backbone id (COVERPICK_BACKBONE), efficientnet_lite0 by default."""
    value = os.environ.get("COVERPICK_BACKBONE", "").strip() or DEFAULT_BACKBONE
    if value not in BACKBONE_IDS:
        raise SettingError(f"COVERPICK_BACKBONE={value!r} is not a known backbone; valid values are {', '.join(BACKBONE_IDS)}.")
    return value


def backbone_precision() -> str:
    """Return the backbone precision (COVERPICK_BACKBONE_PRECISION): fp32, the default, or int8."""
    value = os.environ.get("COVERPICK_BACKBONE_PRECISION", "").strip().lower() or DEFAULT_PRECISION
    if value not in PRECISIONS:
        raise SettingError(
            f"COVERPICK_BACKBONE_PRECISION={value!r} is invalid; valid values are {', '.join(PRECISIONS)}."
        )
    return value


def shop_preference() -> list[str]:
    """Shop ids in order of preference (COVERPICK_SHOP_PREFERENCE, comma-separated).

    The import ranks the shops not listed after the listed ones, all level.
    """
    raw = os.environ.get("COVERPICK_SHOP_PREFERENCE", "")
    return [item.strip() for item in raw.split(",") if item.strip()]

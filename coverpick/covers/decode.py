"""Safe decoding of untrusted cover images into RGBA.

Retailer feeds link to files of any quality: HTML error pages, truncated
downloads, CMYK scans, animations and the occasional decompression bomb. Every
failure here raises ImageDecodeError with a worded reason, so callers handle one
exception type and can store the reason beside the cover.

This module imports only Pillow and numpy because it is on the inference path.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

# Cover images in the sample catalogue are at most 0.52 megapixels. 40
# megapixels leaves room for print-resolution scans such as 7000x5700 while
# capping a decoded RGBA image at 160 MB. Pillow reads Image.MAX_IMAGE_PIXELS,
# warns above it and raises DecompressionBombError above twice it. This module
# turns the warning into an error too, and _check_size enforces the limit even
# if other code changes Pillow's value. Setting it here changes the limit for
# every Pillow user in the process, which is deliberate: no code in coverpick
# should decode larger images.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# Exceptions that malformed input can raise from Pillow. Image.open turns
# SyntaxError, IndexError, TypeError and struct.error from a plugin's header
# parser into UnidentifiedImageError (an OSError), but load(), seek() and
# getexif() can still let a plugin's own exceptions through.
_MALFORMED_INPUT_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)

# Pillow plugin names tried for each sniffed format. Restricting Image.open to
# these keeps rarely used parsers (EPS through Ghostscript, PSD, ...) out of
# reach of untrusted bytes. A multi-picture JPEG opens as "MPO".
_PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": ("JPEG", "MPO"),
    "PNG": ("PNG",),
    "GIF": ("GIF",),
    "WEBP": ("WEBP",),
    "TIFF": ("TIFF",),
    "BMP": ("BMP",),
    "ICO": ("ICO",),
    "AVIF": ("AVIF",),
    "JPEG2000": ("JPEG2000",),
}

_ISO_BMFF_AVIF_BRANDS = {b"avif", b"avis"}
_ISO_BMFF_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}

# EXIF Orientation values 5 to 8 rotate by 90 degrees, so width and height swap.
_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPOSE_BY_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}

_WHITE = (255, 255, 255)


class ImageDecodeError(ValueError):
    """Failure to decode bytes into a usable image. The message states the reason."""


@dataclass(frozen=True)
class ImageInfo:
    """Container format and natural size of an image, after EXIF orientation."""

    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """Return the image format that the magic bytes of ``data`` identify, or None.

    Returns one of JPEG (including multi-picture MPO files), PNG, GIF, WEBP,
    TIFF (including BigTIFF), BMP, ICO, AVIF, HEIF and JPEG2000. Anything else,
    such as an HTML error page, returns None.
    """
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")):
        return "ICO"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff_brand(data)
    return None


def _sniff_iso_bmff_brand(data: bytes) -> str | None:
    """Return AVIF or HEIF from the major and compatible brands of an ftyp box."""
    box_size = int.from_bytes(data[0:4], "big")
    box_end = min(max(box_size, 16), len(data), 256)
    brands = {data[8:12]}
    brands.update(data[offset : offset + 4] for offset in range(16, box_end - 3, 4))
    if brands & _ISO_BMFF_AVIF_BRANDS:
        return "AVIF"
    if brands & _ISO_BMFF_HEIF_BRANDS:
        return "HEIF"
    return None


def read_info(data: bytes) -> ImageInfo:
    """Read the format and natural size from the image header without decoding pixels.

    Raises ImageDecodeError for the same header problems as decode_rgba. A
    truncated or corrupt pixel stream is only found by decode_rgba.
    """
    fmt = _check_format(data)
    with _pillow_errors(fmt), _open_image(data, fmt) as img:
        _check_size(img.size)
        orientation = _read_orientation(img, allow_load=False)
        return _natural_info(fmt, img.size, orientation)


def decode_rgba(
    data: bytes, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, ImageInfo]:
    """Decode the first frame of an image into an upright RGBA image.

    The EXIF orientation is applied, and an unreadable EXIF block counts as no
    orientation. CMYK (including Adobe's inverted CMYK), palette and colour-key
    transparency, grey with alpha and 16-bit grey all end up as 8-bit RGBA.

    ``draft_size`` (width, height) lets libjpeg decode a JPEG at 1/2, 1/4 or
    1/8 scale, keeping both sides at least as large as requested. Other formats
    decode at full size. The returned ImageInfo always reports the natural size
    from the header.

    Raises ImageDecodeError for empty, unrecognised, oversized, zero-sized,
    truncated or corrupt data.
    """
    image, info = decode_image(data, draft_size)
    return (image if image.mode == "RGBA" else image.convert("RGBA")), info


def decode_image(
    data: bytes, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, ImageInfo]:
    """Decode like decode_rgba, but return an RGB image when the image has no transparency.

    An image has transparency when its mode has an alpha channel or it carries
    a colour key ("transparency" in Pillow's info); those come back as RGBA,
    exactly as decode_rgba returns them. Every other image comes back as RGB,
    which saves the alpha channel and compositing onto white for the opaque
    covers that most feeds send (every JPEG). Its pixels equal decode_rgba's
    RGB channels, and decode_rgba's alpha would be 255 everywhere.
    """
    if draft_size is not None and (draft_size[0] <= 0 or draft_size[1] <= 0):
        raise ValueError(f"draft_size must be two positive integers, got {draft_size!r}")
    fmt = _check_format(data)
    with _pillow_errors(fmt), _open_image(data, fmt) as img:
        natural_size = img.size
        _check_size(natural_size)
        orientation = _read_orientation(img, allow_load=False)
        if draft_size is not None and img.format in ("JPEG", "MPO"):
            _apply_draft(img, draft_size, swapped=orientation in _SWAPPING_ORIENTATIONS)
        img.load()
        # A PNG may store its eXIf chunk after the pixel data, which only load() reads.
        orientation = _read_orientation(img, allow_load=True)
        decoded = _to_rgb(img) if _is_opaque(img) else _to_rgba(img)
    transpose = _TRANSPOSE_BY_ORIENTATION.get(orientation)
    if transpose is not None:
        decoded = decoded.transpose(transpose)
    return decoded, _natural_info(fmt, natural_size, orientation)


def to_rgb_on_white(img_rgba: Image.Image) -> Image.Image:
    """Composite an image over a white background and return it as RGB."""
    if img_rgba.mode == "RGB":
        return img_rgba.copy()
    rgba = img_rgba if img_rgba.mode == "RGBA" else img_rgba.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _check_format(data: bytes) -> str:
    if not data:
        raise ImageDecodeError("file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        first_bytes = " ".join(f"{byte:02x}" for byte in data[:4])
        raise ImageDecodeError(
            f"unsupported or unrecognised image format (first bytes: {first_bytes})"
        )
    if fmt not in _PILLOW_FORMATS:
        raise ImageDecodeError(
            f"{fmt} images are not supported: this Pillow build has no {fmt} decoder"
        )
    return fmt


def _open_image(data: bytes, fmt: str) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])


@contextmanager
def _pillow_errors(fmt: str) -> Iterator[None]:
    """Turn Pillow's exceptions and DecompressionBombWarning into ImageDecodeError.

    Pillow's other warnings, such as "Corrupt EXIF data", are logged at debug
    level instead of printed, because Pillow carries on after them.

    NOTE: warnings.catch_warnings swaps the process-wide filter list, so a
    thread decoding at the same time may briefly see the bomb warning as a
    warning. _check_size still rejects those images, because it compares the
    header size against the same limit.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                yield
            finally:
                for warning in caught:
                    logger.debug("Pillow warned while decoding %s: %s", fmt, warning.message)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError(_describe_bomb(error)) from error
    except UnidentifiedImageError as error:
        raise ImageDecodeError(
            f"file starts like {fmt} but its header is invalid or unsupported"
        ) from error
    except _MALFORMED_INPUT_ERRORS as error:
        raise ImageDecodeError(_describe_pillow_error(fmt, error)) from error


def _describe_bomb(error: Exception) -> str:
    # Pillow's message states the pixel count but not the width and height.
    match = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(match.group(1)):,} pixels" if match else "a size"
    return (
        f"image of {size} exceeds the limit of {MAX_IMAGE_PIXELS:,} pixels "
        "(a possible decompression bomb)"
    )


def _describe_pillow_error(fmt: str, error: BaseException) -> str:
    detail = str(error) or type(error).__name__
    lowered = detail.lower()
    if isinstance(error, MemoryError):
        return f"not enough memory to decode this {fmt} image"
    if "truncated" in lowered or isinstance(error, EOFError):
        # Pillow's message ("image file is truncated (8 bytes not processed)")
        # repeats the word, so this wording replaces it.
        return f"image is truncated: the {fmt} file ends before the decoder finished reading it"
    if "max_text_chunk" in lowered or "max_text_memory" in lowered:
        return f"PNG text chunk is too large after decompression (a decompression bomb): {detail}"
    return f"{fmt} data is corrupt or unsupported: {detail}"


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image has zero width or height ({width}x{height} pixels)")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"image of {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS:,} pixels"
        )


def _read_orientation(img: Image.Image, *, allow_load: bool) -> int:
    """Return the EXIF orientation (1 to 8), or 1 when it is missing or unreadable.

    Pillow's PNG plugin decodes the whole image to find an eXIf chunk, so with
    ``allow_load`` false a PNG only uses an eXIf chunk placed before its pixels.
    """
    if img.format == "PNG" and not allow_load and "exif" not in img.info:
        return 1
    try:
        with warnings.catch_warnings():
            # Pillow warns "Corrupt EXIF data" and carries on with what it read.
            warnings.simplefilter("ignore", UserWarning)
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except _MALFORMED_INPUT_ERRORS as error:
        logger.debug("Ignoring unreadable EXIF block: %s", error)
        return 1
    if isinstance(orientation, int) and orientation in _TRANSPOSE_BY_ORIENTATION:
        return orientation
    return 1


def _natural_info(fmt: str, size: tuple[int, int], orientation: int) -> ImageInfo:
    width, height = size
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(format=fmt, width=width, height=height)


def _apply_draft(img: Image.Image, draft_size: tuple[int, int], *, swapped: bool) -> None:
    """Ask libjpeg for a reduced decode no smaller than ``draft_size`` once upright."""
    width, height = draft_size
    if swapped:
        width, height = height, width
    # Passing the image's own mode keeps CMYK and grey JPEGs in their mode, so
    # _to_rgba converts them the same way as a full-size decode.
    img.draft(img.mode, (width, height))


# Modes that decode_image returns as RGB when the frame has no colour key and
# no palette alpha. Modes with an alpha channel, 16-bit grey (scaled in
# _to_rgba) and rare modes such as LAB keep the RGBA path.
_OPAQUE_MODES = ("RGB", "RGBX", "CMYK", "P", "L", "1", "YCbCr")


def _is_opaque(img: Image.Image) -> bool:
    """Return True when the loaded frame has no alpha channel, colour key or palette alpha."""
    if img.mode not in _OPAQUE_MODES or "transparency" in img.info:
        return False
    return img.mode != "P" or img.palette is None or img.palette.mode == "RGB"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a loaded frame without transparency to 8-bit RGB, as _to_rgba would minus its alpha."""
    return img.copy() if img.mode == "RGB" else img.convert("RGB")


def _to_rgba(img: Image.Image) -> Image.Image:
    """Convert a loaded frame of any Pillow mode to 8-bit RGBA."""
    mode = img.mode
    if mode == "RGBA":
        return img.copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _sixteen_bit_grey_to_rgba(img)
    if mode == "La":
        # Pillow converts premultiplied grey with alpha only to LA.
        return img.convert("LA").convert("RGBA")
    if mode in ("RGB", "RGBa", "RGBX", "CMYK", "P", "PA", "L", "LA", "1", "YCbCr", "LAB", "HSV", "F"):
        # Pillow carries palette and colour-key transparency ("transparency" in
        # img.info) into the alpha channel here. A CMYK JPEG with an Adobe marker
        # is already un-inverted by the decoder.
        return img.convert("RGBA")
    raise ImageDecodeError(f"image mode {mode} is not supported (convert the image to RGB)")


def _sixteen_bit_grey_to_rgba(img: Image.Image) -> Image.Image:
    """Scale 16-bit grey samples to 8 bits, because Pillow's convert clips them at 255.

    NOTE: samples are scaled from the full 16-bit range, so a 12-bit scan
    stored in 16-bit samples comes out dark. The header gives no reliable sign
    of the smaller depth.
    """
    samples = np.asarray(img, dtype=np.float64)
    grey = np.clip(np.rint(samples / 257.0), 0, 255).astype(np.uint8)
    rgba = np.empty(grey.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 255
    if "transparency" in img.info and isinstance(img.info["transparency"], int):
        rgba[..., 3] = np.where(samples == img.info["transparency"], 0, 255)
    return Image.fromarray(rgba, "RGBA")

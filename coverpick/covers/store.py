"""Content-addressed cover store: each distinct image is written once, named by its SHA-256."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from coverpick import conf
from coverpick.covers.decode import ImageDecodeError, decode_image, read_info

logger = logging.getLogger(__name__)

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp", "MPO": "jpg"}


class CoverSourceError(OSError):
    """A listing's image reference could not be read: missing file, bad path or failed fetch."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_path_for(sha256: str, image_format: str) -> str:
    extension = EXTENSIONS.get(image_format.upper(), "bin")
    return f"{sha256[:2]}/{sha256}.{extension}"


def absolute_path(relative: str) -> Path:
    return conf.image_store_dir() / relative


def read_bytes(relative: str) -> bytes:
    return absolute_path(relative).read_bytes()


def write_once(relative: str, data: bytes) -> None:
    """Write the file unless it exists; write to a temporary name and rename, so no reader sees half a file."""
    target = absolute_path(relative)
    if target.is_file() and target.stat().st_size == len(data):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def delete_stored_file(relative: str) -> None:
    """Remove one file from the image store. A file already gone is not an error."""
    try:
        absolute_path(relative).unlink()
    except FileNotFoundError:
        pass


def store_image(data: bytes):
    """Store image bytes and return their CoverImage row, creating it on first sight of the content.

    ``store_image_created`` also says whether the row is new.

    Images that do not decode are stored too, with the reason in
    ``decode_error``, so the listing shows why it has no usable cover.
    """
    return store_image_created(data)[0]


def store_image_created(data: bytes):
    """Store image bytes; return (CoverImage row, whether the row was created now)."""
    from coverpick.catalogue.models import CoverImage

    digest = sha256_bytes(data)
    existing = CoverImage.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing, False
    try:
        info = read_info(data)
        image_format, width, height, error = info.format, info.width, info.height, None
    except ImageDecodeError as exc:
        image_format, width, height, error = "", None, None, str(exc)
    else:
        # A whole header can precede a cut pixel stream, so a new image is decoded
        # once here and the import reports a truncated one as unusable.
        try:
            decode_image(data, draft_size=(64, 64))
        except ImageDecodeError as exc:
            error = str(exc)
    relative = relative_path_for(digest, image_format or "bin")
    write_once(relative, data)
    return CoverImage.objects.get_or_create(
        sha256=digest,
        defaults={
            "path": relative,
            "size_bytes": len(data),
            "format": image_format,
            "width": width,
            "height": height,
            "decode_error": error,
        },
    )


def check_pixels(cover) -> str | None:
    """Return why a stored cover's pixels cannot be read or decoded, or None when they decode.

    Storing an image now decodes it, but a row stored while coverpick read
    only the header may contain a truncated pixel stream, which is found here.
    The reason is saved in the row's ``decode_error``. JPEGs are decoded at a
    reduced scale, which still reads the whole stream.
    """
    if cover.decode_error:
        return cover.decode_error
    try:
        data = read_bytes(cover.path)
    except OSError as exc:
        # Not saved: the file may come back, and the image itself may be fine.
        return f"the image store's copy {cover.path} cannot be read ({exc.strerror or exc})"
    try:
        decode_image(data, draft_size=(64, 64))
    except ImageDecodeError as exc:
        cover.decode_error = str(exc)
        cover.save(update_fields=["decode_error"])
        return cover.decode_error
    return None


def load_reference(image_ref: str, base_dir: Path) -> bytes:
    """Read the bytes a feed's image reference points at: a path relative to the catalogue, or an http(s) URL."""
    if image_ref.startswith(("http://", "https://")):
        from coverpick.covers.fetch import fetch_image

        return fetch_image(image_ref).content
    if "://" in image_ref:
        scheme = image_ref.split("://", 1)[0]
        raise CoverSourceError(f"image URL scheme {scheme!r} is not allowed; only http and https are fetched")
    base = base_dir.resolve()
    path = (base / image_ref).resolve()
    # A listing stores the message, so a missing file's message leaves out the
    # catalogue folder: a feed exported to a new folder each day rewrites nothing.
    if not path.is_relative_to(base):
        raise CoverSourceError(
            f"image path {image_ref!r} resolves to {path}, outside the catalogue folder "
            "through .. or a symbolic link; keep the images inside the catalogue folder"
        )
    if not path.is_file():
        raise CoverSourceError(f"image file {image_ref!r} not found in the catalogue folder")
    return path.read_bytes()

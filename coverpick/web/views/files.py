"""File responses: cover images from the image store and the app's own CSS and JavaScript.

Cover images are content-addressed (the URL carries the SHA-256), so a
response can be cached for a year and marked immutable. A cover stored in a
format that browsers do not show (TIFF, JPEG 2000) is sent as a PNG copy,
made on its first request and kept in COVERPICK_HOME/display. The app serves its
own assets, so the site needs no collectstatic step. Asset URLs carry a hash
of the content, so they can be cached the same way.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from coverpick import conf
from coverpick.catalogue.models import CoverImage
from coverpick.covers.decode import ImageDecodeError, decode_image

logger = logging.getLogger(__name__)

ONE_YEAR_S = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={ONE_YEAR_S}, immutable"

# Only raster formats a browser displays are served. Anything else (a file
# whose header did not decode, or an unexpected format) gets 404, so stored
# bytes are never sent with a type the browser might sniff or execute.
IMAGE_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
    "ICO": "image/x-icon",
}
# Formats the import decodes but browsers do not show: these are sent as PNG.
CONVERTED_FORMATS = frozenset({"TIFF", "JPEG2000"})

ASSET_DIR = Path(__file__).resolve().parent.parent / "static" / "web"
ASSET_CONTENT_TYPES = {
    "style.css": "text/css; charset=utf-8",
    "label.js": "text/javascript; charset=utf-8",
}


def _etag_matches(request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    return any(part.strip() in (etag, f"W/{etag}", "*") for part in header.split(","))


@require_safe
def cover_image(request, sha256: str):
    """Send the stored image with this SHA-256."""
    cover = get_object_or_404(CoverImage, sha256=sha256)
    image_format = cover.format.upper() if cover.format else ""
    converted = image_format in CONVERTED_FORMATS
    content_type = "image/png" if converted else IMAGE_CONTENT_TYPES.get(image_format)
    if cover.decode_error or content_type is None or not cover.path:
        raise Http404("This cover has no displayable image.")
    etag = f'"{cover.sha256}"'
    if _etag_matches(request, etag):
        response = HttpResponseNotModified()
        response["ETag"] = etag
        response["Cache-Control"] = IMMUTABLE
        return response

    store = conf.image_store_dir().resolve()
    path = (store / cover.path).resolve()
    if not path.is_relative_to(store):
        logger.error("Cover path outside the image store: cover=%s path=%r", cover.pk, cover.path)
        raise Http404("This cover has no displayable image.")
    try:
        handle = _display_copy(cover, path).open("rb") if converted else path.open("rb")
    except FileNotFoundError:
        logger.warning("Cover file missing from the image store: cover=%s path=%s", cover.pk, path)
        raise Http404("The image file is missing from the image store.") from None
    except ImageDecodeError as exc:
        logger.warning("Cover could not be converted for display: cover=%s path=%s: %s", cover.pk, path, exc)
        raise Http404("This cover has no displayable image.") from None
    response = FileResponse(handle, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE
    return response


def _display_copy(cover: CoverImage, stored: Path) -> Path:
    """Return the PNG copy of a stored cover, writing it first if it is not there yet.

    The copy is decoded as the import decoded it (upright, 8 bits a channel,
    transparency kept). It is written under a temporary name and renamed, so
    a request at the same moment reads a whole file or makes its own copy.
    Raises FileNotFoundError when the stored file is missing, and
    ImageDecodeError when it no longer decodes.
    """
    folder = conf.display_copy_dir()
    target = folder / f"{cover.sha256}.png"
    if target.is_file():
        return target
    image, _ = decode_image(stored.read_bytes())
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{target.name}.{os.getpid()}-{threading.get_ident()}.partial"
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, target)
    return target


@lru_cache(maxsize=None)
def _asset(name: str) -> tuple[bytes, str]:
    # The file name comes from the table, not from the caller, so only listed
    # files are read. It is also a plain str, while templates pass SafeString,
    # which pathlib cannot intern.
    known = next((key for key in ASSET_CONTENT_TYPES if key == name), None)
    if known is None:
        raise KeyError(f"No asset named {name!r}. Known assets: {', '.join(ASSET_CONTENT_TYPES)}.")
    data = (ASSET_DIR / known).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def asset_version(name: str) -> str:
    """Return the short content hash that asset URLs carry, so a changed file gets a new URL."""
    return _asset(name)[1]


@require_safe
def asset(request, name: str):
    """Send one of the app's CSS or JavaScript files, cached as immutable when the URL carries its current hash."""
    content_type = ASSET_CONTENT_TYPES.get(name)
    if content_type is None:
        raise Http404(f"No asset named {name!r}.")
    data, version = _asset(name)
    etag = f'"{version}"'
    cache = IMMUTABLE if request.GET.get("v") == version else "no-cache"
    if _etag_matches(request, etag):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(data, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = cache
    return response

"""Replies for the loopback image servers in the import tests."""

from http.server import BaseHTTPRequestHandler


def send_status(handler: BaseHTTPRequestHandler, status: int) -> None:
    """Send a reply with ``status`` and no body (404, 304)."""
    handler.send_response(status)
    handler.end_headers()


def send_jpeg(handler: BaseHTTPRequestHandler, body: bytes, etag: str) -> None:
    """Send ``body`` as a 200 JPEG reply carrying ``etag``."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", etag)
    handler.end_headers()
    handler.wfile.write(body)

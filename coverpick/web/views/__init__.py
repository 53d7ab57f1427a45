"""Views of the web app, one module per page family."""

from django.http import HttpResponseBadRequest


def bad_request(message: str) -> HttpResponseBadRequest:
    """Return a 400 response whose body is ``message`` as plain text.

    Django's HttpResponseBadRequest sends text/html, so a message that quotes
    what the client sent could carry markup into the page.
    """
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

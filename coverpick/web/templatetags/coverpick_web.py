"""Template helpers: asset and cover URLs, prices and percentages."""

from django import template
from django.urls import reverse

from coverpick.catalogue.models import CoverImage
from coverpick.web.prices import format_price
from coverpick.web.views.files import asset_version

register = template.Library()


@register.simple_tag
def asset_url(name: str) -> str:
    return f"{reverse('web:asset', args=[name])}?v={asset_version(name)}"


@register.filter
def cover_url(cover) -> str:
    """Return the image URL of a CoverImage, or "" when there is none to show.

    A missing cover arrives as "" when the template engine resolves a path
    through a null foreign key, so anything but a CoverImage returns "".
    """
    if not isinstance(cover, CoverImage) or cover.decode_error:
        return ""
    return reverse("web:cover", args=[cover.sha256])


@register.simple_tag
def price(value, currency) -> str:
    return format_price(value, currency)


@register.filter
def percent(value) -> str:
    if value is None:
        return "–"
    return f"{float(value):.0%}"

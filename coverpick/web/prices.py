"""Best prices: the lowest price per currency among listings that are not out of stock.

Most feeds do not say whether a product is in stock (``in_stock`` is null),
so a listing counts as available unless its shop marked it out of stock.
Prices in different currencies are never converted or compared. A price of
zero is kept as the feed sent it but is not an offer: it more likely fills an
empty field than prices a game, and it would always be the lowest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Min, Q

from coverpick.catalogue.models import Listing

CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}


@dataclass(frozen=True)
class BestPrice:
    currency: str
    price: Decimal
    shop_name: str = ""
    url: str = ""
    stock_known: bool = False

    @property
    def display(self) -> str:
        return format_price(self.price, self.currency)


def format_price(price: Decimal | None, currency: str) -> str:
    if price is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{price:.2f}" if symbol else f"{price:.2f} {currency}".strip()


def shop_link(url: str) -> str:
    """Return the feed's product URL when it is http(s), else "".

    Feeds are untrusted, and a javascript: or data: URL in a link would run
    in the visitor's browser.
    """
    return url if url.lower().startswith(("http://", "https://")) else ""


def is_available(listing: Listing) -> bool:
    return listing.in_stock is not False and listing.price is not None and listing.price > 0 and bool(listing.currency)


def best_prices(listings: Iterable[Listing]) -> list[BestPrice]:
    """Pick the cheapest available listing per currency from already loaded listings (shop selected).

    Ties go to the lower listing id, so the choice is stable between requests.
    """
    best: dict[str, Listing] = {}
    for listing in listings:
        if not is_available(listing):
            continue
        current = best.get(listing.currency)
        if current is None or (listing.price, listing.pk) < (current.price, current.pk):
            best[listing.currency] = listing
    return [
        BestPrice(
            currency=currency,
            price=listing.price,
            shop_name=listing.shop.name,
            url=shop_link(listing.url),
            stock_known=listing.in_stock is True,
        )
        for currency, listing in sorted(best.items())
    ]


def best_prices_by_game(game_ids: Iterable[int]) -> dict[int, list[BestPrice]]:
    """Return the lowest available price per currency for each game, in one aggregate query."""
    rows = (
        Listing.objects.filter(edition__game_id__in=list(game_ids), price__gt=0)
        .exclude(Q(in_stock=False) | Q(currency=""))
        .values("edition__game_id", "currency")
        .annotate(lowest=Min("price"))
        .order_by("edition__game_id", "currency")
    )
    result: dict[int, list[BestPrice]] = {}
    for row in rows:
        result.setdefault(row["edition__game_id"], []).append(BestPrice(row["currency"], row["lowest"]))
    return result

"""coverpick shops: list shops and set their preference order."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count

from coverpick.catalogue.models import Shop, save_shop_order


class Command(BaseCommand):
    help = "List shops with their preference (lower is preferred), or set the order with --order."

    def add_arguments(self, parser):
        parser.add_argument(
            "--order",
            default=None,
            help="Comma-separated shop codes, most preferred first. Primary covers are re-ranked at once",
        )

    def handle(self, order, **options):
        if order is not None:
            self._set_order(order)
        shops = Shop.objects.annotate(listing_count=Count("listings")).order_by("preference", "code")
        if not shops:
            self.stdout.write("No shops yet: `coverpick import` adds one per feed file.")
            return
        self.stdout.write("preference  listings  shop")
        for shop in shops:
            self.stdout.write(f"{shop.preference:>10}  {shop.listing_count:>8}  {shop.code}")

    def _set_order(self, order: str) -> None:
        from coverpick.ranking import compute_primaries

        codes = [code.strip() for code in order.split(",") if code.strip()]
        known = set(Shop.objects.values_list("code", flat=True))
        if not codes:
            raise CommandError(f"--order is empty. List shop codes separated by commas. Known shops: {', '.join(sorted(known))}.")
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise CommandError(f"--order names {', '.join(repeated)} more than once. List each shop once.")
        missing = [code for code in codes if code not in known]
        if missing:
            raise CommandError(f"Unknown shop(s): {', '.join(missing)}. Known shops: {', '.join(sorted(known))}.")
        with transaction.atomic():
            save_shop_order(codes)
            games = compute_primaries()
        self.stdout.write(f"Shop order saved; primary covers re-ranked for {games} games.")

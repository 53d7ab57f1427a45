"""coverpick shops: list shops and set their preference order."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from coverpick.catalogue.models import Shop


class Command(BaseCommand):
    help = "List shops with their preference (lower is preferred), or set the order with --order."

    def add_arguments(self, parser):
        parser.add_argument("--order", default="", help="Comma-separated shop codes, most preferred first")

    def handle(self, order, **options):
        codes = [code.strip() for code in order.split(",") if code.strip()]
        if codes:
            known = set(Shop.objects.values_list("code", flat=True))
            missing = [code for code in codes if code not in known]
            if missing:
                raise CommandError(f"Unknown shop(s): {', '.join(missing)}. Known shops: {', '.join(sorted(known))}.")
            with transaction.atomic():
                Shop.objects.exclude(code__in=codes).update(preference=len(codes))
                for rank, code in enumerate(codes):
                    Shop.objects.filter(code=code).update(preference=rank)
        for shop in Shop.objects.order_by("preference", "code"):
            self.stdout.write(f"{shop.preference:>4}  {shop.code}")

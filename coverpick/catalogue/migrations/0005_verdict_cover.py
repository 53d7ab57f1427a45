"""Record on each staff row the cover it was written for.

Rows that exist already are taken to describe the cover their listing shows
now, since nothing recorded which image they were given for.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

STAFF_SOURCES = ("manual-train", "review", "manual-pin")


def fill_covers(apps, schema_editor):
    Listing = apps.get_model("catalogue", "Listing")
    Verdict = apps.get_model("catalogue", "Verdict")
    current = Listing.objects.filter(pk=OuterRef("listing_id")).values("cover_id")[:1]
    Verdict.objects.filter(source__in=STAFF_SOURCES).update(cover_id=Subquery(current))


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0004_catalogue_generation"),
    ]

    operations = [
        migrations.AddField(
            model_name="verdict",
            name="cover",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="catalogue.coverimage"
            ),
        ),
        migrations.RunPython(fill_covers, migrations.RunPython.noop),
    ]

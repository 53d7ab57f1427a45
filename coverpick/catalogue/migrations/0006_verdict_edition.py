"""Record on each staff row the edition its listing was filed under.

Rows that exist already are taken to belong to the edition their listing has
now, since nothing recorded the edition they were given under.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

STAFF_SOURCES = ("manual-train", "review", "manual-pin")


def fill_editions(apps, schema_editor):
    Listing = apps.get_model("catalogue", "Listing")
    Verdict = apps.get_model("catalogue", "Verdict")
    current = Listing.objects.filter(pk=OuterRef("listing_id")).values("edition_id")[:1]
    Verdict.objects.filter(source__in=STAFF_SOURCES).update(edition_id=Subquery(current))


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0005_verdict_cover"),
    ]

    operations = [
        migrations.AddField(
            model_name="verdict",
            name="edition",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="catalogue.edition"
            ),
        ),
        migrations.RunPython(fill_editions, migrations.RunPython.noop),
    ]

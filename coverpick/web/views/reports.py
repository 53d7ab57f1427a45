"""The staff reports page and its two charts."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from coverpick import reports
from coverpick.web.access import staff_required


@require_safe
@staff_required
def report_page(request):
    version = reports.active_heads_version()
    context = {
        "version": version,
        "recall_rows": reports.recall_rows(version) if version else [],
        "label_count_source": reports.training_label_counts(version)[1] if version else "",
        "verdicts": reports.verdict_distribution(version) if version else {},
        "versions": reports.version_summaries(),
        "supported_min": reports.SUPPORTED_MIN_LABELS,
    }
    context["verdict_total"] = sum(context["verdicts"].values())
    return render(request, "web/reports.html", context)


def _png_response(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    # The charts change whenever verdicts change, and they are for staff only.
    response["Cache-Control"] = "private, no-cache"
    return response


@require_safe
@staff_required
def recall_chart(request):
    return _png_response(reports.recall_chart(reports.active_heads_version()))


@require_safe
@staff_required
def verdict_chart(request):
    return _png_response(reports.verdict_chart(reports.active_heads_version()))

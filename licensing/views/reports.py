"""The reports page: every export, with its filters."""

from django.shortcuts import render
from django.urls import reverse

from core.lists import polish_filter_form
from licensing import models as m
from licensing.reports import REPORTS


def reports(request):
    # Requesters see what exists; the export buttons are for admins and auditors.
    entries = []
    for name, report in REPORTS.items():
        filterset = report.filterset_class
        form = filterset(queryset=filterset._meta.model.objects.none()).form
        form.auto_id = f"id_{name.replace('-', '_')}_%s"
        polish_filter_form(form)
        if name == "licenses":
            form.initial["status"] = m.LicenseStatus.ACTIVE
        entries.append({"name": name, "title": report.title, "description": report.description,
                        "fields": [form[f] for f in report.page_filters if f in form.fields],
                        "csv_url": reverse("report-download", kwargs={"name": name, "fmt": "csv"}),
                        "xlsx_url": reverse("report-download", kwargs={"name": name, "fmt": "xlsx"})})
    return render(request, "licensing/reports.html", {"reports": entries})

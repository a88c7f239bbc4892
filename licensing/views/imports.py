"""The import pages: upload (a preview job), the job's page with its progress, its report and
the confirmation, and the history of snapshots."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core import roles
from core.jobs import JobStatus
from core.views import attach_errors
from licensing.importers.wmi import DATE_ORDER_EXAMPLES, DATE_ORDERS
from licensing.models import ImportJob, LicenseServer, Snapshot
from licensing.services.imports import import_confirm, import_start

PROBLEMS_SHOWN = 200
HISTORY_SHOWN = 30


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportUploadForm(forms.Form):
    server = forms.ModelChoiceField(
        queryset=LicenseServer.objects.order_by("name"), label="License server",
        help_text="The server the files were exported from.",
    )
    files = MultipleFileField(
        label="Export files",
        help_text="Export-Csv files of Win32_TSLicenseKeyPack and Win32_TSIssuedLicense (UTF-8 or UTF-16).",
    )
    date_order = forms.ChoiceField(
        choices=[(order, f"{order} (e.g. {DATE_ORDER_EXAMPLES[order]})") for order in DATE_ORDERS],
        initial="mdy", label="Date order",
        help_text="For PowerShell 7 exports, whose dates follow the exporting machine's culture.",
    )
    installed_on = forms.DateField(
        required=False, label="Installed on",
        help_text="Recorded for new key packs (the export has no install date); default today.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )


def _require_admin(request):
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only license administrators import license server exports.")


@require_http_methods(["GET", "POST"])
def import_upload(request):
    """Upload files: they are read by a preview job (nothing is written until confirmed)."""
    _require_admin(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = import_start(
                    license_server=data["server"], files=[(f.name, f) for f in data["files"]], actor=request.user,
                    date_order=data["date_order"], installed_on=data["installed_on"], dry_run=True,
                )
            except ValidationError as exc:
                attach_errors(form, exc)
            else:
                return redirect(job)
    context = {
        "form": form, "title": "Imports",
        "jobs": ImportJob.objects.select_related("license_server", "requested_by").order_by("-pk")[:HISTORY_SHOWN],
        "snapshots": Snapshot.objects.select_related("license_server", "sent_by", "import_job")
        .order_by("-pk")[:HISTORY_SHOWN],
    }
    return render(request, "licensing/import_upload.html", context, status=status)


def import_job(request, pk):
    """One import: its progress while it runs, then its report; a clean preview can be confirmed."""
    _require_admin(request)
    job = get_object_or_404(ImportJob.objects.select_related("license_server", "requested_by", "preview_of"), pk=pk)
    summary = job.summary or {}
    snapshot = Snapshot.objects.filter(import_job=job).first()
    confirmed = job.confirmations.order_by("-pk").first()
    return render(request, "licensing/import_job.html", {
        "job": job, "summary": summary, "snapshot": snapshot, "confirmed": confirmed,
        "finished": job.is_finished,
        "problems": job.problems[:PROBLEMS_SHOWN],
        "problems_hidden": max(0, job.problem_count - PROBLEMS_SHOWN),
        "counts": [
            (kind.replace("_", " "), *(summary.get(what, {}).get(kind, 0)
                                       for what in ("created", "updated", "ended", "unchanged")))
            for kind in ("machine", "key_pack", "license", "per_user_issuance")
        ],
        "confirmable": job.dry_run and job.status == JobStatus.DONE and not job.problem_count and confirmed is None,
        "title": f"Import #{job.pk}",
    })


@require_POST
def import_confirm_view(request, pk):
    _require_admin(request)
    preview = get_object_or_404(ImportJob, pk=pk)
    try:
        job = import_confirm(preview=preview, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(preview)
    messages.success(request, f"Import #{job.pk} started: the files of preview #{preview.pk}, for real.")
    return redirect(job)

"""The upload page for license server exports: upload, preview (a dry run), confirm.

The uploaded files wait in the imports storage between the preview and the confirmation,
under a random token bound to the administrator who uploaded them. The confirmation
runs the same service as the preview, for real.
"""

import hashlib
import json
import secrets
from datetime import date, timedelta
from pathlib import Path

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core import roles
from core.files import import_storage
from licensing.importers.wmi import DATE_ORDER_EXAMPLES, DATE_ORDERS
from licensing.models import LicenseServer
from licensing.services.imports import license_server_import

PROBLEMS_SHOWN = 200
UPLOAD_MAX_AGE_SECONDS = 24 * 3600
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _delete_upload(store, token: str) -> None:
    for name in store.listdir(token)[1]:
        store.delete(f"{token}/{name}")


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
        help_text="Export-Csv files of Win32_TSLicenseKeyPack and Win32_TSIssuedLicense "
        "(UTF-8 or UTF-16).",
    )
    date_order = forms.ChoiceField(
        choices=[(order, f"{order} (e.g. {DATE_ORDER_EXAMPLES[order]})") for order in DATE_ORDERS],
        initial="mdy", label="Date order",
        help_text="For PowerShell 7 exports, whose dates follow the exporting machine's locale.",
    )
    installed_on = forms.DateField(
        required=False, label="Installed on",
        help_text="Recorded for new key packs (the export has no install date); default today.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    skip_bad_rows = forms.BooleanField(
        required=False, label="Skip the rows with errors and import the rest",
    )


def _require_admin(request):
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only license administrators import license server exports.")


def _clean_old_uploads(store) -> None:
    cutoff = timezone.now() - timedelta(seconds=UPLOAD_MAX_AGE_SECONDS)
    try:
        tokens = store.listdir("")[0]
    except FileNotFoundError:  # a local storage's folder is made by its first file
        return
    for token in tokens:
        manifest = f"{token}/manifest.json"
        if not store.exists(manifest) or store.get_modified_time(manifest) < cutoff:
            _delete_upload(store, token)


def _load(request, token: str) -> tuple[str, dict]:
    if not token or not set(token) <= TOKEN_CHARS:
        raise Http404("No such upload.")
    store = import_storage()
    try:
        with store.open(f"{token}/manifest.json", "rb") as handle:
            manifest = json.loads(handle.read())
    except (OSError, ValueError):
        raise Http404("This upload has expired; upload the files again.") from None
    if manifest["user"] != request.user.get_username():
        raise Http404("No such upload.")
    return token, manifest


def _run(request, token: str, manifest: dict, *, dry_run: bool):
    files = []
    store = import_storage()
    for stored in manifest["files"]:
        with store.open(f"{token}/{stored['stored']}", "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != stored["sha256"]:
            raise Http404("The uploaded files changed; upload them again.")
        files.append((stored["name"], data))
    installed_on = manifest.get("installed_on")
    return license_server_import(
        server_name=manifest["server"], files=files, actor=request.user,
        date_order=manifest["date_order"], skip_bad_rows=manifest["skip_bad_rows"],
        dry_run=dry_run, installed_on=date.fromisoformat(installed_on) if installed_on else None,
    )


def _context(report, manifest, token):
    problems = report.problems
    return {
        "title": "Import a license server export",
        "report": report,
        "manifest": manifest,
        "token": token,
        "problems": problems[:PROBLEMS_SHOWN],
        "problems_hidden": max(0, len(problems) - PROBLEMS_SHOWN),
        "counts": [
            (kind.replace("_", " "),
             (report.created if report.committed else report.planned_created)[kind],
             (report.updated if report.committed else report.planned_updated)[kind],
             report.unchanged[kind])
            for kind in ("machine", "key_pack", "license")
        ],
        "importable": all(f.readable for f in report.files)
        and (not report.errors or manifest["skip_bad_rows"]),
    }


@require_http_methods(["GET", "POST"])
def import_upload(request):
    _require_admin(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        store = import_storage()
        _clean_old_uploads(store)
        token = secrets.token_urlsafe(18)
        stored = []
        for index, upload in enumerate(form.cleaned_data["files"]):
            digest = hashlib.sha256()
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
            name = store.save(f"{token}/{index}.upload", upload)
            stored.append({"name": Path(upload.name).name, "stored": name.rsplit("/", 1)[-1],
                           "sha256": digest.hexdigest()})
        installed_on = form.cleaned_data["installed_on"]
        manifest = {
            "user": request.user.get_username(),
            "server": form.cleaned_data["server"].name,
            "date_order": form.cleaned_data["date_order"],
            "skip_bad_rows": form.cleaned_data["skip_bad_rows"],
            "installed_on": installed_on.isoformat() if installed_on else None,
            "files": stored,
        }
        store.save(f"{token}/manifest.json", ContentFile(json.dumps(manifest).encode()))
        return redirect("import-preview", token=token)
    return _upload_page(request, form)


def _upload_page(request, form, refusal=None):
    return render(request, "licensing/import_upload.html",
                  {"form": form, "refusal": refusal, "title": "Import a license server export"})


@require_http_methods(["GET"])
def import_preview(request, token):
    _require_admin(request)
    token, manifest = _load(request, token)
    try:
        report = _run(request, token, manifest, dry_run=True)
    except ValidationError as exc:
        return _upload_page(request, ImportUploadForm(), refusal=" ".join(exc.messages))
    return render(request, "licensing/import_preview.html", _context(report, manifest, token))


@require_POST
def import_confirm(request, token):
    _require_admin(request)
    token, manifest = _load(request, token)
    try:
        report = _run(request, token, manifest, dry_run=False)
    except ValidationError as exc:
        return _upload_page(request, ImportUploadForm(), refusal=" ".join(exc.messages))
    if report.committed:
        _delete_upload(import_storage(), token)
    return render(request, "licensing/import_result.html", _context(report, manifest, token),
                  status=200 if report.committed else 409)

"""Report downloads (``reports/<name>.csv|xlsx``) and background exports (``exports/``)."""

import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import files, roles
from core.jobs import JobStatus
from core.permissions import CanExport
from licensing.models import ExportJob
from licensing.reports import REPORTS, InvalidFilters, get_report
from licensing.reports.writers import CONTENT_TYPES, FORMATS, csv_stream, export_filename, write_xlsx
from licensing.services.exports import audit_export, export_start


def _drf_validation_error(exc: DjangoValidationError) -> ValidationError:
    if hasattr(exc, "error_dict"):
        return ValidationError(exc.message_dict)
    return ValidationError({"non_field_errors": exc.messages})


class FileDownloadMixin:
    """Files on success, JSON for errors, whatever the client's Accept header says."""

    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class ReportDownloadView(FileDownloadMixin, APIView):
    permission_classes = [CanExport]

    @extend_schema(
        operation_id="reports_download",
        summary="Download a report",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(REPORTS)),
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(FORMATS), description="File format"),
        ],
        description="The report as a CSV (streamed) or XLSX file. Takes the filters of the matching "
        f"list. Reports: {', '.join(REPORTS)}.",
        responses={(200, "text/csv"): OpenApiTypes.BINARY,
                   (200, CONTENT_TYPES["xlsx"]): OpenApiTypes.BINARY,
                   400: OpenApiResponse(description="Bad filter values"),
                   404: OpenApiResponse(description="Unknown report")},
    )
    def get(self, request, name: str, fmt: str):
        report = get_report(name)
        if report is None or fmt not in FORMATS:
            raise Http404(f"There is no report {name}.{fmt}.")
        filters = report.clean_filters(request.query_params)
        try:
            report.validate(filters)
        except DjangoValidationError as exc:
            raise _drf_validation_error(exc) from exc
        audit_export(actor=request.user, report=report, fmt=fmt, filters=filters)
        filename = export_filename(report, fmt)
        if fmt == "csv":
            response = StreamingHttpResponse(csv_stream(report, filters), content_type=CONTENT_TYPES["csv"])
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        # XlsxWriter needs a file to finish the workbook; it is deleted when the response closes.
        handle = tempfile.NamedTemporaryFile(suffix=".xlsx")  # noqa: SIM115
        write_xlsx(report, filters, Path(handle.name))
        handle.seek(0)
        return FileResponse(handle, as_attachment=True, filename=filename, content_type=CONTENT_TYPES["xlsx"])


class ExportJobSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id", "report", "format", "filters", "status", "progress", "download_url", "rows",
            "requested_by", "created_at", "started_at", "finished_at", "expires_at", "error", "attempts",
        ]
        read_only_fields = fields

    def get_download_url(self, job) -> str | None:
        if job.status != JobStatus.DONE or not job.file_name:
            return None
        url = reverse("exportjob-download", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ExportStartSerializer(serializers.Serializer):
    report = serializers.ChoiceField(choices=list(REPORTS))
    format = serializers.ChoiceField(choices=list(FORMATS))
    filters = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)


class ExportJobViewSet(
    FileDownloadMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Background exports. Admins see every job; an auditor sees their own."""

    serializer_class = ExportJobSerializer
    permission_classes = [CanExport]
    queryset = ExportJob.objects.select_related("requested_by")
    filterset_fields = ["status", "report", "format"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if roles.role_of(self.request.user) != roles.ADMIN:
            queryset = queryset.filter(requested_by=self.request.user)
        return queryset

    @extend_schema(request=ExportStartSerializer, responses={202: ExportJobSerializer})
    def create(self, request, *args, **kwargs):
        given = ExportStartSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            job = export_start(report=data["report"], format=data["format"],
                               filters=data["filters"], actor=request.user)
        except InvalidFilters as exc:
            raise ValidationError({"filters": exc.message_dict}) from exc
        except DjangoValidationError as exc:
            raise _drf_validation_error(exc) from exc
        job.refresh_from_db()
        body = self.get_serializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": reverse("exportjob-detail", args=[job.pk])})

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        job = self.get_object()
        if job.status != JobStatus.DONE:
            raise Http404(f"Export #{job.pk} is {job.get_status_display().lower()}; it has no file.")
        store = files.export_storage()
        if not job.file_name or not store.exists(job.file_name):
            raise Http404(f"The file of export #{job.pk} has expired and was deleted.")
        report = get_report(job.report)
        filename = export_filename(report, job.format, job.finished_at)
        return FileResponse(store.open(job.file_name, "rb"), as_attachment=True, filename=filename,
                            content_type=CONTENT_TYPES[job.format])

"""Imports, snapshots, per-user issuances and drift over the API.

A collector account (role ``collector``) is bound to one license server: it may push that
server's exports (``POST imports/``) and read the jobs it pushed; everything else is 403.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core import roles
from core.api.base import DETAIL_ERRORS, LIST_ERRORS, WRITE_DETAIL_ERRORS, WRITE_ERRORS, PortalViewSet, conflict
from core.api.serializers import username_field
from core.errors import DomainCode, field_errors
from licensing import filtersets
from licensing import models as m
from licensing.importers.wmi import DATE_ORDERS
from licensing.services.imports import import_start
from licensing.services.reconciliation import drift_acknowledge


class ImportJobSerializer(serializers.ModelSerializer):
    requested_by = username_field(allow_null=True)
    snapshot = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = m.ImportJob
        fields = [
            "id", "license_server", "status", "progress", "dry_run", "date_order", "files", "summary", "problems",
            "problem_count", "snapshot", "preview_of", "requested_by", "created_at", "started_at", "finished_at",
            "error",
        ]
        read_only_fields = fields

    def get_snapshot(self, job) -> int | None:
        snapshot = getattr(job, "snapshot", None)
        return snapshot.pk if snapshot else None

    def get_files(self, job) -> list[dict]:
        return [{"name": entry["name"], "size": entry.get("size")} for entry in job.files]


class ImportStartSerializer(serializers.Serializer):
    license_server = serializers.PrimaryKeyRelatedField(queryset=m.LicenseServer.objects.all())
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    date_order = serializers.ChoiceField(choices=DATE_ORDERS, default="mdy")
    dry_run = serializers.BooleanField(default=False)
    installed_on = serializers.DateField(required=False, allow_null=True, default=None)


@extend_schema_view(
    list=extend_schema(responses={200: ImportJobSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: ImportJobSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description="Starts the import of a license server's Export-Csv files (multipart: `license_server`, `files`, "
        "`date_order`, `dry_run`). Admins, and the collector account of that server. A file with any problem "
        "imports nothing; the job's `problems` say where.",
        request={"multipart/form-data": ImportStartSerializer},
        responses={202: ImportJobSerializer, **WRITE_ERRORS},
    ),
)
class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.ImportJob.objects.select_related("requested_by", "snapshot")
    serializer_class = ImportJobSerializer
    filterset_class = filtersets.ImportJobFilterSet
    parser_classes = [MultiPartParser, FormParser]
    collector_actions = ("create", "list", "retrieve")

    def get_queryset(self):
        queryset = super().get_queryset()
        if roles.role_of(self.request.user) == roles.COLLECTOR:
            queryset = queryset.filter(requested_by=self.request.user)
        return queryset

    def create(self, request, *args, **kwargs):
        given = ImportStartSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            job = import_start(
                license_server=data["license_server"], files=[(f.name, f) for f in data["files"]],
                actor=request.user, date_order=data["date_order"], dry_run=data["dry_run"],
                installed_on=data["installed_on"],
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(field_errors(exc)) from exc
        job = self.get_queryset().get(pk=job.pk)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": reverse("api-importjob-detail", args=[job.pk])})


class SnapshotSerializer(serializers.ModelSerializer):
    sent_by = username_field(allow_null=True)
    files = serializers.SerializerMethodField()

    class Meta:
        model = m.Snapshot
        fields = ["id", "license_server", "taken_at", "sent_by", "files", "import_job"]
        read_only_fields = fields

    def get_files(self, snapshot) -> list[dict]:
        return [{"name": f["name"], "sha256": f["sha256"], "rows": f["rows"]} for f in snapshot.files]


@extend_schema_view(
    list=extend_schema(responses={200: SnapshotSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: SnapshotSerializer, **DETAIL_ERRORS}),
)
class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.Snapshot.objects.select_related("sent_by")
    serializer_class = SnapshotSerializer
    filterset_class = filtersets.SnapshotFilterSet
    http_method_names = ["get", "head", "options"]


class PerUserIssuanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.PerUserIssuance
        fields = ["id", "license_server", "key_pack", "user", "license_id", "issued_at", "expires_at", "snapshot"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(responses={200: PerUserIssuanceSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: PerUserIssuanceSerializer, **DETAIL_ERRORS}),
)
class PerUserIssuanceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.PerUserIssuance.objects.all()
    serializer_class = PerUserIssuanceSerializer
    filterset_class = filtersets.PerUserIssuanceFilterSet
    http_method_names = ["get", "head", "options"]


class DriftItemSerializer(serializers.ModelSerializer):
    acknowledged_by = username_field(allow_null=True)

    class Meta:
        model = m.DriftItem
        fields = [
            "id", "kind", "license_server", "key_pack", "license", "machine", "detail", "first_seen_snapshot",
            "last_seen_snapshot", "state", "acknowledged_by", "note",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField()


@extend_schema_view(
    list=extend_schema(responses={200: DriftItemSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: DriftItemSerializer, **DETAIL_ERRORS}),
)
class DriftItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.DriftItem.objects.select_related("acknowledged_by")
    serializer_class = DriftItemSerializer
    output_serializer_class = DriftItemSerializer
    filterset_class = filtersets.DriftItemFilterSet

    def get_serializer_class(self):
        return AcknowledgeSerializer if self.action == "acknowledge" else DriftItemSerializer

    @extend_schema(
        description="An admin accepts an open drift item, with a note; a later snapshot still resolves it.",
        request=AcknowledgeSerializer,
        responses={200: DriftItemSerializer, 409: conflict(DomainCode.INVALID_STATE), **WRITE_DETAIL_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        item = self.get_object()
        data = self.validated_input()
        item = drift_acknowledge(item=item, actor=self.actor(), note=data["note"])
        return self.respond(item)

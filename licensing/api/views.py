"""The licensing API: thin views that translate input, call one service, and show the result."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.base import (
    BAD_REQUEST,
    DETAIL_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_DETAIL_ERRORS,
    WRITE_ERRORS,
    PortalViewSet,
    ServiceCrudViewSet,
    conflict,
)
from core.api.renderers import FastJSONRenderer
from core.errors import DomainCode
from core.pagination import KeysetQuery
from licensing import filtersets
from licensing import models as m
from licensing.api import serializers as s
from licensing.selectors import compliance_rows, forecast_rows
from licensing.services import licenses as license_services
from licensing.services import reissue as reissue_services
from licensing.services import revocations as revocation_services
from licensing.services import servers as server_services
from licensing.services import transfers as transfer_services

ISSUE_CODES = (
    DomainCode.NO_LICENSES_AVAILABLE, DomainCode.PER_USER_KEY_PACK, DomainCode.OS_INCLUDES_CAL,
    DomainCode.MACHINE_ALREADY_LICENSED, DomainCode.TEMPORARY_ALREADY_USED, DomainCode.MACHINE_RETIRED,
    DomainCode.VERSION_NOT_SUPPORTED,
)
REVOKE_CODES = (DomainCode.REVOKE_NOT_SUPPORTED, DomainCode.REVOKE_QUOTA_EXCEEDED, DomainCode.TRANSFER_PENDING)
TRANSFER_RULE_CODES = (
    DomainCode.ALREADY_TRANSFERRED, DomainCode.NOT_TRANSFERABLE, DomainCode.TRANSFER_PENDING,
    DomainCode.SAME_MACHINE, DomainCode.OS_INCLUDES_CAL, DomainCode.MACHINE_ALREADY_LICENSED,
    DomainCode.MACHINE_RETIRED,
)


# --- License servers, key packs, CSC contacts ----------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: s.LicenseServerSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.LicenseServerSerializer, **DETAIL_ERRORS}),
    create=extend_schema(responses={201: s.LicenseServerSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: s.LicenseServerSerializer, **WRITE_DETAIL_ERRORS}),
)
class LicenseServerViewSet(ServiceCrudViewSet):
    queryset = m.LicenseServer.objects.all()
    serializer_class = s.LicenseServerSerializer
    filterset_class = filtersets.LicenseServerFilterSet

    def create_service(self, *, actor, data):
        return server_services.license_server_create(actor=actor, **data)

    def update_service(self, *, instance, actor, data):
        return server_services.license_server_update(license_server=instance, actor=actor, data=data)


@extend_schema_view(
    list=extend_schema(responses={200: s.KeyPackSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.KeyPackSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description="Records a purchased key pack (origin `original`). Reissued packs come "
        "from `reissue-requests/{id}/install/`. A pack newer than its server's Windows version is "
        "`version_not_supported`.",
        responses={201: s.KeyPackSerializer, 409: conflict(DomainCode.VERSION_NOT_SUPPORTED), **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        request=s.KeyPackUpdateSerializer,
        responses={200: s.KeyPackSerializer, 409: conflict(DomainCode.BELOW_ISSUED, DomainCode.VERSION_NOT_SUPPORTED),
                   **WRITE_DETAIL_ERRORS},
    ),
)
class KeyPackViewSet(ServiceCrudViewSet):
    queryset = m.KeyPack.objects.with_counts()
    serializer_class = s.KeyPackSerializer
    update_serializer_class = s.KeyPackUpdateSerializer
    filterset_class = filtersets.KeyPackFilterSet

    def create_service(self, *, actor, data):
        return server_services.key_pack_install(actor=actor, **data)

    def update_service(self, *, instance, actor, data):
        return server_services.key_pack_update(key_pack=instance, actor=actor, data=data)


@extend_schema_view(
    list=extend_schema(responses={200: s.CscContactSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.CscContactSerializer, **DETAIL_ERRORS}),
    create=extend_schema(responses={201: s.CscContactSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: s.CscContactSerializer, **WRITE_DETAIL_ERRORS}),
)
class CscContactViewSet(ServiceCrudViewSet):
    queryset = m.CscContact.objects.all()
    serializer_class = s.CscContactSerializer
    filterset_class = filtersets.CscContactFilterSet

    def create_service(self, *, actor, data):
        return server_services.csc_contact_create(actor=actor, **data)

    def update_service(self, *, instance, actor, data):
        return server_services.csc_contact_update(contact=instance, actor=actor, data=data)


# --- Licenses ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: s.LicenseSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.LicenseSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description='`{"machine", "key_pack"}` issues a permanent CAL; `{"machine", "kind": '
        '"temporary", "license_server", "product_version"}` issues a 90-day temporary CAL.',
        request=s.LicenseIssueSerializer,
        responses={201: s.LicenseSerializer, 409: conflict(*ISSUE_CODES), **WRITE_ERRORS},
    ),
    revoke=extend_schema(
        description="Records that the CAL was revoked in RD Licensing Manager (rule 12; license servers running "
        "Windows Server 2008 R2 or later): its seat returns to its pack at once, and it holds a place in the "
        "server's revocation quota (20% of the version's installed per-device CALs) until its expiry date, or "
        "89 days after `revoked_at` when that is unknown. Admins only.",
        request=s.RevokeSerializer,
        responses={200: s.LicenseSerializer, 409: conflict(*REVOKE_CODES), **WRITE_DETAIL_ERRORS},
    ),
)
class LicenseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.License.objects.select_related("machine")
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]
    # Built once: resolving its subquery is a good part of a page's cost.
    list_queryset = s.license_list_queryset()
    serializer_class = s.LicenseSerializer
    output_serializer_class = s.LicenseSerializer
    filterset_class = filtersets.LicenseFilterSet

    def get_serializer_class(self):
        if self.action == "revoke":
            return s.RevokeSerializer
        return s.LicenseIssueSerializer if self.creating() else s.LicenseSerializer

    def list(self, request, *args, **kwargs):
        """The assignment browser's hot path: rows come as tuples (``KeysetQuery`` when nothing
        filters, ``values_list()`` otherwise) and are written by ``s.license_list_row`` (the same
        fields and formats as LicenseSerializer; a test compares the bytes), so a page builds no
        model instances and no serializer field per cell."""
        queryset = self.list_queryset  # not cloned: KeysetQuery and the FilterSet only clone it
        filtered = self.filter_queryset(queryset)
        if filtered is queryset:  # no filter given: the page's SQL is compiled once per shape
            page = self.paginate_queryset(
                KeysetQuery("licenses", queryset, s.LICENSE_LIST_COLUMNS, row=s.license_list_row))
        else:
            rows = self.paginate_queryset(filtered.values_list(*s.LICENSE_LIST_COLUMNS, named=True))
            page = [s.license_list_row(row) for row in rows]
        return self.get_paginated_response(page)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["kind"] == m.LicenseKind.PERMANENT:
            license = license_services.license_issue_permanent(
                machine=data["machine"], key_pack=data["key_pack"], actor=self.actor()
            )
        else:
            license = license_services.license_issue_temporary(
                machine=data["machine"], license_server=data["license_server"],
                product_version=data["product_version"], actor=self.actor(),
            )
        return self.respond(license, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        data = self.validated_input()
        license = revocation_services.license_revoke(
            license=self.get_object(), actor=self.actor(), note=data["note"], revoked_at=data.get("revoked_at"),
        )
        return self.respond(license)


# --- Transfers -----------------------------------------------------------------------------------


def _transfer_action(request_serializer, codes, description):
    return extend_schema(
        description=description,
        request=request_serializer,
        responses={200: s.TransferSerializer, 409: conflict(*codes), **WRITE_DETAIL_ERRORS},
    )


@extend_schema_view(
    list=extend_schema(responses={200: s.TransferSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.TransferSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description="Files *source license -> target machine*. Admins and requesters may.",
        request=s.TransferFileSerializer,
        responses={201: s.TransferSerializer, 409: conflict(*TRANSFER_RULE_CODES), **WRITE_ERRORS},
    ),
)
class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.TransferRequest.objects.select_related(
        "requested_by", "approved_by", "removal_confirmed_by"
    )
    serializer_class = s.TransferSerializer
    output_serializer_class = s.TransferSerializer
    filterset_class = filtersets.TransferFilterSet
    requester_actions = ("create", "cancel")

    def get_serializer_class(self):
        if self.creating():
            return s.TransferFileSerializer
        return {
            "approve": s.OptionalNoteSerializer,
            "cancel": s.OptionalNoteSerializer,
            "reject": s.RequiredNoteSerializer,
            "confirm_removal": s.ConfirmRemovalSerializer,
        }.get(self.action, s.TransferSerializer)

    def create(self, request, *args, **kwargs):
        data = self.validated_input()
        transfer = transfer_services.transfer_file(
            license=data["license"], target_machine=data["target_machine"], reason=data["reason"],
            actor=self.actor(),
        )
        return self.respond(transfer, status.HTTP_201_CREATED)

    @_transfer_action(
        s.OptionalNoteSerializer, (DomainCode.FOUR_EYES, DomainCode.INVALID_STATE, *TRANSFER_RULE_CODES),
        "A second administrator approves; the transfer rules are checked again.",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        transfer = self.get_object()
        data = self.validated_input()
        transfer = transfer_services.transfer_approve(
            transfer=transfer, actor=self.actor(), note=data["note"]
        )
        return self.respond(transfer)

    @_transfer_action(
        s.RequiredNoteSerializer, (DomainCode.FOUR_EYES, DomainCode.INVALID_STATE),
        "A second administrator rejects a requested or approved transfer.",
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        transfer = self.get_object()
        data = self.validated_input()
        transfer = transfer_services.transfer_reject(
            transfer=transfer, actor=self.actor(), note=data["note"]
        )
        return self.respond(transfer)

    @_transfer_action(
        s.ConfirmRemovalSerializer, (DomainCode.INVALID_STATE, *TRANSFER_RULE_CODES),
        "The CAL was removed from the source: its license registry key was deleted, or the "
        "machine was decommissioned.",
    )
    @action(detail=True, methods=["post"], url_path="confirm-removal")
    def confirm_removal(self, request, pk=None):
        transfer = self.get_object()
        data = self.validated_input()
        transfer = transfer_services.transfer_confirm_removal(
            transfer=transfer, actor=self.actor(), method=data["method"]
        )
        return self.respond(transfer)

    @_transfer_action(
        s.OptionalNoteSerializer, (DomainCode.INVALID_STATE,),
        "Withdraws a requested or approved transfer. A requester cancels only their own (403).",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        transfer = self.get_object()
        data = self.validated_input()
        transfer = transfer_services.transfer_cancel(
            transfer=transfer, actor=self.actor(), note=data["note"]
        )
        return self.respond(transfer)


# --- CSC reissue calls ----------------------------------------------------------------------------


def _reissue_action(request_serializer, codes, description):
    return extend_schema(
        description=description,
        request=request_serializer,
        responses={200: s.ReissueRequestSerializer, 409: conflict(*codes), **WRITE_DETAIL_ERRORS},
    )


@extend_schema_view(
    list=extend_schema(responses={200: s.ReissueRequestSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.ReissueRequestSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description="Logs one telephone call to the CSC. The transfers it covers (whose removal "
        "is confirmed, for this license server and product) move to `awaiting_reissue`.",
        request=s.ReissueLogCallSerializer,
        responses={
            201: s.ReissueRequestSerializer,
            409: conflict(DomainCode.TRANSFER_NOT_READY, DomainCode.PRODUCT_MISMATCH),
            **WRITE_ERRORS,
        },
    ),
)
class ReissueRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = m.ReissueRequest.objects.select_related("logged_by", "key_pack").prefetch_related(
        Prefetch("transfers", queryset=m.TransferRequest.objects.only("id"))
    )
    serializer_class = s.ReissueRequestSerializer
    output_serializer_class = s.ReissueRequestSerializer
    filterset_class = filtersets.ReissueRequestFilterSet

    def get_serializer_class(self):
        if self.creating():
            return s.ReissueLogCallSerializer
        return {
            "install": s.ReissueInstallSerializer,
            "deny": s.RequiredNoteSerializer,
            "cancel": s.OptionalNoteSerializer,
        }.get(self.action, s.ReissueRequestSerializer)

    def create(self, request, *args, **kwargs):
        data = dict(self.validated_input())
        call = reissue_services.reissue_log_call(actor=self.actor(), **data)
        return self.respond(call, status.HTTP_201_CREATED)

    @_reissue_action(
        s.ReissueInstallSerializer,
        (DomainCode.INVALID_STATE, DomainCode.QUANTITY_TOO_SMALL, DomainCode.NO_LICENSES_AVAILABLE,
         *TRANSFER_RULE_CODES),
        "Installs the reissued key pack (origin `reissue`) and completes every covered transfer "
        "in one transaction: sources become `transferred`, targets receive permanent CALs from "
        "the new pack, and their temporary CALs for the product end.",
    )
    @action(detail=True, methods=["post"])
    def install(self, request, pk=None):
        call = self.get_object()
        data = self.validated_input()
        reissue_services.reissue_install(reissue_request=call, actor=self.actor(), **data)
        return self.respond(call)

    @_reissue_action(
        s.RequiredNoteSerializer, (DomainCode.INVALID_STATE,),
        "The CSC refused: the covered transfers go back to `removal_confirmed`.",
    )
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        call = self.get_object()
        data = self.validated_input()
        call = reissue_services.reissue_deny(reissue_request=call, actor=self.actor(), note=data["note"])
        return self.respond(call)

    @_reissue_action(
        s.OptionalNoteSerializer, (DomainCode.INVALID_STATE,),
        "The call is withdrawn: the covered transfers go back to `removal_confirmed`.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        call = self.get_object()
        data = self.validated_input()
        call = reissue_services.reissue_cancel(reissue_request=call, actor=self.actor(), note=data["note"])
        return self.respond(call)


# --- Audit trail and compliance ---------------------------------------------------------------------


class ComplianceView(APIView):
    """One row per license server and product version (not paged: one row per pair)."""

    http_method_names = ["get", "head", "options"]

    @extend_schema(
        parameters=[s.ComplianceFilterSerializer],
        responses={200: s.ComplianceListSerializer, 400: BAD_REQUEST, **READ_ERRORS},
    )
    def get(self, request):
        filters = s.ComplianceFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = compliance_rows(
            license_server=filters.validated_data.get("license_server"),
            product_version=filters.validated_data.get("product_version"),
        )
        results = s.ComplianceRowSerializer([row.as_dict() for row in rows], many=True).data
        return Response({"results": results, "next": None})


class ForecastView(APIView):
    """Rule 14: one row per license server and product version (not paged)."""

    http_method_names = ["get", "head", "options"]

    @extend_schema(
        parameters=[s.ForecastFilterSerializer],
        responses={200: s.ForecastListSerializer, 400: BAD_REQUEST, **READ_ERRORS},
    )
    def get(self, request):
        filters = s.ForecastFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = forecast_rows(license_server=filters.validated_data.get("license_server"))
        results = s.ForecastRowSerializer([row.as_dict() for row in rows], many=True).data
        return Response({"results": results, "next": None})


# --- Tokens ------------------------------------------------------------------------------------------



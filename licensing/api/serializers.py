"""Input and output shapes of the licensing API (CONTRACT.md "REST API v1").

Output serializers only read: every related object they show is loaded by the
view's queryset (``select_related``/``prefetch_related``), so a list page runs a
fixed number of queries. Input serializers only check shapes and turn ids into
rows; the rules live in the services.
"""

from datetime import UTC

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import BIG_INTEGER_MAX, INTEGER_MAX, username_field
from inventory.models import ClientMachine
from licensing import models as m
from licensing import rules

# --- License servers -------------------------------------------------------------------------


class LicenseServerSerializer(serializers.ModelSerializer):
    builtin_cal_for_pro_clients = serializers.BooleanField(
        required=False,
        help_text="Defaults on for Windows 2000 Server and Windows Server 2003, off for later "
        "versions.",
    )

    class Meta:
        model = m.LicenseServer
        fields = [
            "id", "name", "windows_version", "server_id", "activation_status",
            "builtin_cal_for_pro_clients", "location", "notes",
        ]


# --- Key packs -------------------------------------------------------------------------------


class KeyPackSerializer(serializers.ModelSerializer):
    """A key pack as read. The view's queryset is ``KeyPack.objects.with_counts()``."""

    key_pack_id = serializers.IntegerField(min_value=0, max_value=BIG_INTEGER_MAX)
    total_licenses = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)
    issued_licenses = serializers.IntegerField(source="issued_count", read_only=True)
    available_licenses = serializers.IntegerField(source="available_count", read_only=True)
    installed_on = serializers.DateField(required=False, help_text="Today when not given.")

    class Meta:
        model = m.KeyPack
        fields = [
            "id", "license_server", "key_pack_id", "product_version", "cal_type",
            "license_program", "agreement_number", "total_licenses", "issued_licenses",
            "available_licenses", "installed_on", "expires_on", "origin", "reissue_request",
            "description", "notes",
        ]
        read_only_fields = ["origin", "reissue_request"]
        # The service validates the whole row (constraints included) in one place.
        validators = []


class KeyPackUpdateSerializer(KeyPackSerializer):
    """PATCH: a pack stays on the license server it was installed on."""

    class Meta(KeyPackSerializer.Meta):
        read_only_fields = ["license_server", "origin", "reissue_request"]


# --- Licenses --------------------------------------------------------------------------------


class LicenseSerializer(serializers.ModelSerializer):
    hostname = serializers.CharField(source="machine.hostname", read_only=True)
    transferable = serializers.BooleanField(read_only=True)
    end_reason = serializers.ChoiceField(choices=m.LicenseEndReason.choices, allow_blank=True, read_only=True,
                                         help_text="Why it ended; empty while it is active.")
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True,
                                           help_text="When it was revoked in RD Licensing Manager (rule 12).")

    class Meta:
        model = m.License
        fields = [
            "id", "license_id", "machine", "hostname", "key_pack", "license_server",
            "product_version", "kind", "status", "issued_at", "expires_at", "transferred_from",
            "transferable", "end_reason", "revoked_at",
        ]
        read_only_fields = fields


# The list's columns, the host name last: it is the ``hostname`` annotation of
# ``license_list_queryset`` (a subquery per listed row, cheaper than a join for a page).
LICENSE_LIST_COLUMNS = (
    "id", "license_id", "machine_id", "key_pack_id", "license_server_id", "product_version", "kind", "status",
    "issued_at", "expires_at", "transferred_from_id", "end_reason", "ended_at", "hostname",
)


def license_list_queryset():
    hostname = ClientMachine.objects.filter(pk=OuterRef("machine_id")).values("hostname")
    return m.License.objects.annotate(hostname=Subquery(hostname))


def _datetime(value):
    """DRF's DateTimeField output for a stored (UTC) datetime: ISO 8601, UTC written as Z."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # PostgreSQL's rows come in UTC already
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_REVOKED = m.LicenseStatus.REVOKED.value


def license_list_row(row: tuple) -> dict:
    """LicenseSerializer's output for one row of ``LICENSE_LIST_COLUMNS``, in that order."""
    (pk, license_id, machine_id, key_pack_id, license_server_id, product_version, kind, status,
     issued_at, expires_at, transferred_from_id, end_reason, ended_at, hostname) = row
    return {
        "id": pk,
        "license_id": license_id,
        "machine": machine_id,
        "hostname": hostname,
        "key_pack": key_pack_id,
        "license_server": license_server_id,
        "product_version": product_version,
        "kind": kind,
        "status": status,
        "issued_at": _datetime(issued_at),
        "expires_at": _datetime(expires_at) if expires_at is not None else None,
        "transferred_from": transferred_from_id,
        "transferable": rules.transferability_reason(
            kind=kind, status=status, transferred_from_id=transferred_from_id) is None,
        "end_reason": end_reason,
        "revoked_at": _datetime(ended_at) if status == _REVOKED else None,
    }


class LicenseIssueSerializer(serializers.Serializer):
    """``{"machine", "key_pack"}`` issues a permanent CAL; ``{"machine", "kind": "temporary",
    "license_server", "product_version"}`` a 90-day temporary one."""

    machine = serializers.PrimaryKeyRelatedField(queryset=ClientMachine.objects.all())
    kind = serializers.ChoiceField(choices=m.LicenseKind.choices, default=m.LicenseKind.PERMANENT)
    key_pack = serializers.PrimaryKeyRelatedField(
        queryset=m.KeyPack.objects.select_related("license_server"), required=False
    )
    license_server = serializers.PrimaryKeyRelatedField(
        queryset=m.LicenseServer.objects.all(), required=False
    )
    product_version = serializers.ChoiceField(choices=m.WindowsVersion.choices, required=False)

    def validate(self, attrs):
        errors = {}
        if attrs["kind"] == m.LicenseKind.PERMANENT:
            if attrs.get("key_pack") is None:
                errors["key_pack"] = ["A permanent CAL comes from a key pack."]
        else:
            if attrs.get("key_pack") is not None:
                errors["key_pack"] = ["A temporary CAL comes from no key pack."]
            for field in ("license_server", "product_version"):
                if attrs.get(field) is None:
                    errors[field] = ["A temporary CAL needs a license server and a product version."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# --- Transfers -------------------------------------------------------------------------------


class TransferSerializer(serializers.ModelSerializer):
    requested_by = username_field()
    approved_by = username_field(allow_null=True)
    removal_confirmed_by = username_field(allow_null=True)
    # Empty until the removal is confirmed.
    removal_method = serializers.ChoiceField(choices=m.RemovalMethod.choices, allow_blank=True, read_only=True)

    class Meta:
        model = m.TransferRequest
        fields = [
            "id", "license", "source_machine", "target_machine", "reason", "status",
            "requested_by", "requested_at", "approved_by", "approved_at", "removal_method",
            "removal_confirmed_by", "removal_confirmed_at", "reissue_request",
            "resulting_license", "completed_at", "decision_note",
        ]
        read_only_fields = fields


class TransferFileSerializer(serializers.Serializer):
    license = serializers.PrimaryKeyRelatedField(
        queryset=m.License.objects.select_related("machine", "license_server")
    )
    target_machine = serializers.PrimaryKeyRelatedField(queryset=ClientMachine.objects.all())
    reason = serializers.CharField()


class OptionalNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class RequiredNoteSerializer(serializers.Serializer):
    note = serializers.CharField()


class RevokeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
    revoked_at = serializers.DateTimeField(required=False, help_text="When it was revoked; now by default.")


class ConfirmRemovalSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=m.RemovalMethod.choices)


# --- CSC contacts and reissue requests --------------------------------------------------------


class CscContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.CscContact
        fields = ["id", "location", "phone_number", "hours", "notes"]


class ReissueRequestSerializer(serializers.ModelSerializer):
    """A CSC call as read. The queryset selects ``key_pack`` and prefetches ``transfers``."""

    transfers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    logged_by = username_field()
    key_pack = serializers.SerializerMethodField()

    class Meta:
        model = m.ReissueRequest
        fields = [
            "id", "called_at", "csc_location", "csc_phone_number", "representative",
            "confirmation_number", "channel", "license_server", "product_version",
            "license_program", "agreement_number", "quantity_requested", "quantity_granted",
            "transfers", "status", "logged_by", "notes", "key_pack",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "integer", "nullable": True, "readOnly": True})
    def get_key_pack(self, call) -> int | None:
        try:
            return call.key_pack.pk
        except ObjectDoesNotExist:
            return None


class ReissueLogCallSerializer(serializers.ModelSerializer):
    """POST: log one telephone call. ``csc_contact`` fills in the location and number."""

    csc_contact = serializers.PrimaryKeyRelatedField(
        queryset=m.CscContact.objects.all(), required=False, allow_null=True, write_only=True
    )
    csc_location = serializers.CharField(max_length=128, required=False, default="")
    csc_phone_number = serializers.CharField(max_length=64, required=False, default="")
    quantity_requested = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)
    transfers = serializers.PrimaryKeyRelatedField(
        many=True, queryset=m.TransferRequest.objects.all(), required=False
    )

    class Meta:
        model = m.ReissueRequest
        fields = [
            "called_at", "csc_contact", "csc_location", "csc_phone_number", "representative",
            "confirmation_number", "license_server", "product_version", "license_program",
            "agreement_number", "quantity_requested", "transfers", "notes",
        ]

    def validate(self, attrs):
        if attrs.get("csc_contact") is None:
            errors = {
                field: ["Name the CSC location and number dialled, or a csc_contact."]
                for field in ("csc_location", "csc_phone_number")
                if not attrs.get(field)
            }
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


class ReissueInstallSerializer(serializers.Serializer):
    key_pack_id = serializers.IntegerField(min_value=0, max_value=BIG_INTEGER_MAX)
    total_licenses = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)
    installed_on = serializers.DateField(required=False, allow_null=True, default=None)
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


# --- Audit trail, compliance, tokens -----------------------------------------------------------


class ComplianceRowSerializer(serializers.Serializer):
    license_server = serializers.IntegerField()
    product_version = serializers.ChoiceField(choices=m.WindowsVersion.choices)
    installed = serializers.IntegerField()
    issued = serializers.IntegerField()
    available = serializers.IntegerField()
    temporary_active = serializers.IntegerField()
    temporary_expiring_14d = serializers.IntegerField()
    revoked = serializers.IntegerField(help_text="Revoked CALs holding a place in the revocation quota today.")
    revoke_quota = serializers.IntegerField(
        help_text="How many may be revoked at one time: 20% of the installed per-device CALs, rounded down.")
    per_user_installed = serializers.IntegerField()
    per_user_issued = serializers.IntegerField(help_text="Per-user CALs the server's latest snapshot listed.")
    shortfall_on = serializers.DateField(allow_null=True, help_text="See forecast/.")


class ComplianceListSerializer(serializers.Serializer):
    results = ComplianceRowSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class TemporaryEndingSerializer(serializers.Serializer):
    date = serializers.DateField()
    count = serializers.IntegerField()


class ForecastRowSerializer(serializers.Serializer):
    license_server = serializers.IntegerField()
    product_version = serializers.ChoiceField(choices=m.WindowsVersion.choices)
    free_seats = serializers.IntegerField(help_text="Available permanent per-device seats.")
    temporary_ending = TemporaryEndingSerializer(many=True, help_text="When the active temporary CALs end.")
    shortfall_on = serializers.DateField(
        allow_null=True,
        help_text="The first date on which more machines have lost their temporary CAL than seats are free.")


class ForecastListSerializer(serializers.Serializer):
    results = ForecastRowSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class ForecastFilterSerializer(serializers.Serializer):
    license_server = serializers.IntegerField(required=False, min_value=1, max_value=BIG_INTEGER_MAX)


class ComplianceFilterSerializer(serializers.Serializer):
    license_server = serializers.IntegerField(required=False, min_value=1, max_value=BIG_INTEGER_MAX)
    product_version = serializers.ChoiceField(choices=m.WindowsVersion.choices, required=False)



"""One FilterSet per list, shared by the API, the HTML lists and the report exports."""

import django_filters
from django.db.models import Q

from core.filtersets import SearchFilterSet, int_or_none, matching_ids
from inventory.models import OsEdition, hostname_prefix_ids
from licensing import models as m


class LicenseFilterSet(SearchFilterSet):
    hostname = django_filters.CharFilter(field_name="machine__hostname", lookup_expr="iexact")
    license_server = django_filters.ModelChoiceFilter(queryset=m.LicenseServer.objects.all())
    os_edition = django_filters.ChoiceFilter(field_name="machine__os_edition", choices=OsEdition.choices)
    license_program = django_filters.ChoiceFilter(
        field_name="key_pack__license_program", choices=m.LicenseProgram.choices
    )
    issued_after = django_filters.DateFilter(field_name="issued_at", lookup_expr="date__gte")
    issued_before = django_filters.DateFilter(field_name="issued_at", lookup_expr="date__lte")

    class Meta:
        model = m.License
        fields = ["machine", "key_pack", "status", "kind", "product_version"]

    def search_q(self, value):
        # Every branch is on the license's own columns, so PostgreSQL ORs index scans
        # instead of joining the machines and key packs first.
        packs = m.KeyPack.objects.filter(agreement_number__iexact=value)
        number = int_or_none(value)
        if number is not None:
            packs = m.KeyPack.objects.filter(Q(agreement_number__iexact=value) | Q(key_pack_id=number))
        query = Q(machine_id__in=matching_ids(hostname_prefix_ids(value))) | Q(
            key_pack_id__in=matching_ids(packs)
        )
        if number is not None:
            query |= Q(pk=number) | Q(license_id=number)
        return query


class KeyPackFilterSet(SearchFilterSet):
    class Meta:
        model = m.KeyPack
        fields = ["license_server", "product_version", "cal_type", "license_program", "origin"]

    def search_q(self, value):
        query = Q(agreement_number__iexact=value) | Q(description__icontains=value)
        number = int_or_none(value)
        if number is not None:
            query |= Q(key_pack_id=number) | Q(pk=number)
        return query


class LicenseServerFilterSet(SearchFilterSet):
    class Meta:
        model = m.LicenseServer
        fields = ["windows_version", "activation_status"]

    def search_q(self, value):
        return Q(name__icontains=value) | Q(server_id__iexact=value)


class TransferFilterSet(SearchFilterSet):
    requested_by = django_filters.CharFilter(field_name="requested_by__username")
    since = django_filters.DateFilter(field_name="requested_at", lookup_expr="date__gte")
    until = django_filters.DateFilter(field_name="requested_at", lookup_expr="date__lte")
    product_version = django_filters.ChoiceFilter(
        field_name="license__product_version", choices=m.WindowsVersion.choices
    )
    license_server = django_filters.ModelChoiceFilter(
        field_name="license__license_server", queryset=m.LicenseServer.objects.all()
    )

    class Meta:
        model = m.TransferRequest
        fields = ["status", "license", "source_machine", "target_machine", "reissue_request"]

    def search_q(self, value):
        machines = matching_ids(hostname_prefix_ids(value))
        query = Q(source_machine_id__in=machines) | Q(target_machine_id__in=machines)
        number = int_or_none(value)
        if number is not None:
            query |= Q(pk=number) | Q(license_id=number) | Q(license__license_id=number)
        return query


class ReissueRequestFilterSet(SearchFilterSet):
    since = django_filters.DateFilter(field_name="called_at", lookup_expr="date__gte")
    until = django_filters.DateFilter(field_name="called_at", lookup_expr="date__lte")

    class Meta:
        model = m.ReissueRequest
        fields = ["status", "license_server", "product_version", "license_program"]

    def search_q(self, value):
        query = (
            Q(confirmation_number__iexact=value)
            | Q(agreement_number__iexact=value)
            | Q(csc_location__icontains=value)
            | Q(representative__icontains=value)
        )
        number = int_or_none(value)
        if number is not None:
            query |= Q(pk=number) | Q(key_pack__key_pack_id=number)
        return query


class CscContactFilterSet(SearchFilterSet):
    class Meta:
        model = m.CscContact
        fields = []

    def search_q(self, value):
        return Q(location__icontains=value) | Q(phone_number__icontains=value)




class DriftItemFilterSet(SearchFilterSet):
    class Meta:
        model = m.DriftItem
        fields = ["license_server", "kind", "state", "product_version"]

    def search_q(self, value):
        query = (Q(machine_id__in=matching_ids(hostname_prefix_ids(value))) | Q(subject__icontains=value)
                 | Q(detail__icontains=value))
        number = int_or_none(value)
        if number is not None:
            query |= Q(pk=number) | Q(license__license_id=number) | Q(key_pack__key_pack_id=number)
        return query


class SnapshotFilterSet(django_filters.FilterSet):
    class Meta:
        model = m.Snapshot
        fields = ["license_server"]


class PerUserIssuanceFilterSet(SearchFilterSet):
    class Meta:
        model = m.PerUserIssuance
        fields = ["license_server", "key_pack", "product_version", "snapshot"]

    def search_q(self, value):
        return Q(user__icontains=value)


class ImportJobFilterSet(django_filters.FilterSet):
    class Meta:
        model = m.ImportJob
        fields = ["license_server", "status", "dry_run"]

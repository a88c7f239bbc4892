"""Assertions shared by the service tests."""

from contextlib import contextmanager

import pytest

from core.errors import DomainError
from core.models import AuditEvent
from licensing.models import KeyPack, License, ReissueRequest, TransferRequest


def table_state():
    """What a refused request must leave untouched."""
    return (
        list(License.objects.order_by("pk").values_list("pk", "status", "ended_at")),
        list(TransferRequest.objects.order_by("pk").values_list("pk", "status", "reissue_request")),
        list(ReissueRequest.objects.order_by("pk").values_list("pk", "status", "quantity_granted")),
        list(KeyPack.objects.order_by("pk").values_list("pk", "total_licenses")),
        AuditEvent.objects.count(),
    )


@contextmanager
def refused(code: str):
    """The block raises DomainError with this code, and nothing changed."""
    before = table_state()
    with pytest.raises(DomainError) as info:
        yield info
    assert info.value.code == code, info.value.detail
    assert info.value.detail
    assert table_state() == before

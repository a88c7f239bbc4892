"""The audit trail and sign-in over the API."""

from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import serializers as s
from core.api.base import BAD_REQUEST, DETAIL_ERRORS, LIST_ERRORS, READ_ERRORS, PortalViewSet
from core.audit import audit_record, audit_verify_chain
from core.directory import sign_in_refusal
from core.filtersets import AuditEventFilterSet
from core.models import AuditEvent


@extend_schema_view(
    list=extend_schema(responses={200: s.AuditEventSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: s.AuditEventSerializer, **DETAIL_ERRORS}),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = s.AuditEventSerializer
    filterset_class = AuditEventFilterSet
    cursor_ordering = ("-sequence",)
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        description="Recomputes the hash chain from the first event and names the first event "
        "that does not verify.",
        responses={200: s.AuditVerificationSerializer, **READ_ERRORS},
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def verify(self, request):
        result = audit_verify_chain()
        data = {"ok": result.ok, "events": result.events, "first_bad_sequence": result.first_bad_sequence}
        return Response(s.AuditVerificationSerializer(data).data)


class TokenView(APIView):
    """Trade a username and password for an API token. Both outcomes are audited: the
    failure by the ``user_login_failed`` signal, the issue here."""

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = s.CredentialsSerializer

    @extend_schema(
        request=s.CredentialsSerializer,
        responses={200: s.TokenSerializer, 400: BAD_REQUEST},
        auth=[],
    )
    def post(self, request):
        serializer = s.CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        user = authenticate(
            request._request, username=username, password=serializer.validated_data["password"]
        )
        if user is None:  # authenticate() has audited the failure (core.signals)
            refusal = sign_in_refusal(request._request)  # e.g. the directory is not reachable
            return Response(
                {"non_field_errors": [str(refusal or "Unable to log in with the username and password given.")]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        with transaction.atomic():
            token, _ = Token.objects.get_or_create(user=user)
            audit_record(
                actor=user, action="auth.token_issued", obj=user,
                summary=f"API token issued to {user.get_username()}.",
                data=getattr(user, "portal_sign_in", {}),
            )
        return Response({"token": token.key})

"""The audit trail and sign-in over the API."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles
from core.api import serializers as s
from core.api.auth import PortalTokenAuthentication
from core.api.base import BAD_REQUEST, DETAIL_ERRORS, LIST_ERRORS, READ_ERRORS, UNAUTHENTICATED, PortalViewSet
from core.audit import audit_verify_chain
from core.directory import sign_in_refusal
from core.filtersets import AuditEventFilterSet
from core.models import AuditEvent
from core.signin import is_locked_out, locked_out_message, sign_in_succeeded
from core.throttles import AnonymousRateThrottle, SignInRateThrottle
from core.tokens import token_issue, token_revoke

logger = logging.getLogger("core.signin")

COLLECTOR_TOKEN_REFUSAL = ("This is a collector account: its token comes from a portal administrator "
                           "(manage.py collector_token), not from signing in here.")
TOO_MANY = OpenApiResponse(s.DetailSerializer, description="Locked out after too many failed sign-ins "
                           "(PORTAL_LOGIN_FAILURE_LIMIT), or too many requests from this address.")


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
    """Trade a username and password for a new API token that expires after
    PORTAL_TOKEN_TTL_HOURS. A failure is counted toward the lockout (django-axes, see
    core.signin); the issue is audited (core.tokens)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousRateThrottle, SignInRateThrottle]
    throttle_scope = "sign_in"
    serializer_class = s.CredentialsSerializer

    @extend_schema(
        request=s.CredentialsSerializer,
        responses={200: s.TokenSerializer, 400: BAD_REQUEST,
                   403: OpenApiResponse(s.DetailSerializer, description="A collector account (it gets its "
                                        "token from an administrator)."),
                   429: TOO_MANY},
        auth=[],
    )
    def post(self, request):
        serializer = s.CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        django_request = request._request  # django-axes and the directory read the plain request
        user = authenticate(django_request, username=username, password=serializer.validated_data["password"])
        if user is None:
            if is_locked_out(django_request):
                return Response({"detail": locked_out_message()}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            refusal = sign_in_refusal(django_request)  # e.g. the directory is not reachable
            return Response(
                {"non_field_errors": [str(refusal or "Unable to log in with the username and password given.")]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if roles.role_of(user) == roles.COLLECTOR:
            logger.warning("Token sign-in refused: %s is a collector account.", user.get_username())
            return Response({"detail": COLLECTOR_TOKEN_REFUSAL}, status=status.HTTP_403_FORBIDDEN)
        sign_in_succeeded(django_request, user)
        token, expires_at = token_issue(
            user=user, ttl=timedelta(hours=settings.PORTAL_TOKEN_TTL_HOURS),
            data=getattr(user, "portal_sign_in", {}),
        )
        return Response(s.TokenSerializer({"token": token, "expires_at": expires_at}).data)


class LogoutView(APIView):
    """Revoke the token the request is sent with."""

    authentication_classes = [PortalTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, 401: UNAUTHENTICATED})
    def post(self, request):
        token_revoke(token=request.auth, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

"""Shapes every API shares: error bodies, the audit trail, sign-in."""

from rest_framework import serializers

from core.errors import DomainCode
from core.models import AuditEvent

# PostgreSQL column ranges, so an out-of-range number is a 400 and never a database error.
INTEGER_MAX = 2_147_483_647


BIG_INTEGER_MAX = 9_223_372_036_854_775_807


class ConflictSerializer(serializers.Serializer):
    """409: a domain rule refused the request; nothing changed."""

    code = serializers.ChoiceField(choices=[code.value for code in DomainCode])
    detail = serializers.CharField()


class DetailSerializer(serializers.Serializer):
    """401, 403, 404 and 405 bodies."""

    detail = serializers.CharField()


def username_field(**kwargs):
    return serializers.SlugRelatedField(slug_field="username", read_only=True, **kwargs)


class AuditEventSerializer(serializers.ModelSerializer):
    data = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "sequence", "occurred_at", "actor", "action", "object_type", "object_id",
            "summary", "data", "prev_hash", "hash",
        ]
        read_only_fields = fields


class AuditVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events = serializers.IntegerField()
    first_bad_sequence = serializers.IntegerField(allow_null=True)


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()

"""Plain inventory writes (create and edit) with validation and their audit event."""

from django.db import models
from django.forms.models import model_to_dict

from core.audit import audit_record

# The audit ``refs`` kind of each model, so the trail can be filtered by machine or key pack.
REF_KINDS = {
    "clientmachine": "machine",
    "keypack": "key_pack",
    "licenseserver": "license_server",
    "license": "license",
    }


def refs_for(instance: models.Model) -> dict | None:
    kind = REF_KINDS.get(instance._meta.model_name)
    return {kind: [instance.pk]} if kind else None


def snapshot(instance: models.Model, fields=None) -> dict:
    data = model_to_dict(instance, fields=fields)
    data["id"] = instance.pk
    return data


def create_validated(*, instance: models.Model, actor, action: str, summary: str):
    """Validate (fields and database constraints), save and audit a new row."""
    instance.full_clean()
    instance.save()
    audit_record(
        actor=actor, action=action, obj=instance, summary=summary,
        data={"after": snapshot(instance)}, refs=refs_for(instance),
    )
    return instance


def update_validated(
    *, instance: models.Model, data: dict, fields: tuple[str, ...], actor, action: str,
    summary: str,
) -> tuple[models.Model, dict]:
    """Apply the allowed fields that changed, validate, save and audit. Returns the
    instance and the changes as ``{field: [before, after]}``; nothing is written or
    audited when nothing changed."""
    changes = {}
    for field in fields:
        if field not in data:
            continue
        before = getattr(instance, field)
        after = data[field]
        if before != after:
            changes[field] = [before, after]
            setattr(instance, field, after)
    if not changes:
        return instance, changes
    instance.full_clean()
    instance.save(update_fields=[f for f in changes])
    audit_record(
        actor=actor, action=action, obj=instance, summary=summary,
        data={"changes": {k: [_plain(v) for v in pair] for k, pair in changes.items()}},
        refs=refs_for(instance),
    )
    return instance, changes


def _plain(value):
    return value.pk if isinstance(value, models.Model) else value

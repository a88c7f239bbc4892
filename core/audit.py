"""The audit trail: one hash-chained event per change, in the change's own transaction.

Writers serialise on the single ``AuditChainHead`` row, so concurrent services
never fork the chain: each event's ``prev_hash`` is the hash of the event with
the sequence number just before it. Call ``audit_record`` last in a service, so
the head row is held for as short a time as possible.
"""

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from core.models import AuditChainHead, AuditEvent

SYSTEM_ACTOR = "system"
GENESIS_HASH = "0" * 64


def actor_name(actor) -> str:
    """A username for a user, or the string given (``system`` for tasks)."""
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor
    return actor.get_username()


_ENCODER = DjangoJSONEncoder()


_PLAIN = (str, int, bool, float, type(None))


def json_safe(value):
    """The value as JSON will store it (what is hashed is exactly what the database keeps):
    string keys, lists for tuples, and dates, decimals and UUIDs as DjangoJSONEncoder writes
    them. Equal to a json.dumps/json.loads round trip, without the round trip."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {key if type(key) is str else str(key): json_safe(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [json_safe(item) for item in value]
    if isinstance(value, str):  # e.g. a TextChoices member: stored as its value
        return str(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return json_safe(dict(value))
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return _ENCODER.default(value)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    summary: str,
    data,
    prev_hash: str,
) -> bytes:
    payload = {
        "sequence": sequence,
        "occurred_at": format_timestamp(occurred_at),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "summary": summary,
        "data": data,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(**fields) -> str:
    return hashlib.sha256(canonical_bytes(**fields)).hexdigest()


def event_hash(event: AuditEvent) -> str:
    return compute_hash(
        sequence=event.sequence,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        summary=event.summary,
        data=event.data,
        prev_hash=event.prev_hash,
    )


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # The migration creates the row; a flushed test database may not have it.
        AuditChainHead.objects.bulk_create([AuditChainHead(pk=1)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def object_ref(obj: models.Model) -> tuple[str, str]:
    return obj._meta.model_name, str(obj.pk)


def _next_fields(
    head: AuditChainHead,
    *,
    actor,
    action: str,
    summary: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    data: dict | None = None,
    refs: dict[str, list] | None = None,
    occurred_at: datetime | None = None,
) -> dict:
    """The fields of the event that follows ``head``; the (locked) head moves on to it."""
    if obj is not None:
        object_type, object_id = object_ref(obj)
    data = dict(data or {})
    if refs:
        data["refs"] = {kind: sorted({int(i) for i in ids if i is not None}) for kind, ids in refs.items()}
    fields = {
        "sequence": head.last_sequence + 1,
        "occurred_at": occurred_at or timezone.now(),
        "actor": actor_name(actor),
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "summary": summary,
        "data": json_safe(data),
        "prev_hash": head.last_hash,
    }
    fields["hash"] = compute_hash(**fields)
    head.last_sequence = fields["sequence"]
    head.last_hash = fields["hash"]
    return fields


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit events must be written inside the transaction of the change")


def audit_record(
    *,
    actor,
    action: str,
    summary: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    data: dict | None = None,
    refs: dict[str, list] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the change's transaction.

    ``refs`` names every other object the change touched, by kind
    (``machine``, ``key_pack``, ``license``, ``transfer``, ``reissue_request``,
    ``license_server``), so the trail can be filtered by machine or key pack.
    It is stored in ``data["refs"]``.
    """
    _require_transaction()
    head = _lock_head()
    event = AuditEvent(**_next_fields(
        head, actor=actor, action=action, summary=summary, obj=obj, object_type=object_type,
        object_id=object_id, data=data, refs=refs,
    ))
    event.save(force_insert=True)
    head.save(update_fields=["last_sequence", "last_hash"])
    return event


class AuditBatch:
    """Many events for one bulk change (an import, the demo data): the head is locked once,
    every event is chained exactly as ``audit_record`` chains it, and events are inserted
    in batches. Call ``close()`` before the transaction commits."""

    def __init__(self, *, batch_size: int = 5000):
        _require_transaction()
        self.head = _lock_head()
        self.batch_size = batch_size
        self.pending: list[dict] = []
        self.count = 0

    def add(self, **event) -> dict:
        """Takes ``audit_record``'s arguments, plus ``occurred_at`` for recorded history.
        Returns the event's fields."""
        fields = _next_fields(self.head, **event)
        self.pending.append(fields)
        self.count += 1
        if len(self.pending) >= self.batch_size:
            self.flush()
        return fields

    def flush(self) -> None:
        if not self.pending:
            return
        if connection.vendor == "postgresql":
            _copy_events(self.pending)
        else:
            AuditEvent.objects.bulk_create([AuditEvent(**fields) for fields in self.pending],
                                           batch_size=self.batch_size)
        self.pending = []

    def close(self) -> None:
        self.flush()
        self.head.save(update_fields=["last_sequence", "last_hash"])


EVENT_COLUMNS = ("sequence", "occurred_at", "actor", "action", "object_type", "object_id", "summary", "data",
                 "prev_hash", "hash")


def _copy_field(value) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace('"', '""') + '"'


def _copy_events(events: list[dict]) -> None:
    """PostgreSQL's COPY for many events: several times faster than INSERT, same rows."""
    buffer = io.StringIO()
    for fields in events:
        buffer.write(",".join((
            str(fields["sequence"]), fields["occurred_at"].isoformat(), _copy_field(fields["actor"]),
            _copy_field(fields["action"]), _copy_field(fields["object_type"]), _copy_field(fields["object_id"]),
            _copy_field(fields["summary"]), _copy_field(json.dumps(fields["data"], ensure_ascii=False)),
            fields["prev_hash"], fields["hash"],
        )))
        buffer.write("\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {AuditEvent._meta.db_table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events: int
    first_bad_sequence: int | None
    reason: str = ""


def audit_verify_chain(*, batch_size: int = 5000) -> ChainVerification:
    """Recompute the chain from the first event and name the first one that fails.

    A tampered field breaks that event's hash; a deleted or reordered event
    breaks the sequence or the ``prev_hash`` link of the event after it.
    """
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    count = 0
    fields = (
        "sequence", "occurred_at", "actor", "action", "object_type",
        "object_id", "summary", "data", "prev_hash", "hash",
    )
    last_sequence = 0
    while True:
        batch = list(
            AuditEvent.objects.filter(sequence__gt=last_sequence)
            .order_by("sequence")
            .only(*fields)[:batch_size]
        )
        if not batch:
            break
        for event in batch:
            count += 1
            if event.sequence != expected_sequence:
                return ChainVerification(
                    False, count, expected_sequence,
                    f"event #{expected_sequence} is missing (next found is #{event.sequence})",
                )
            if event.prev_hash != expected_prev:
                return ChainVerification(
                    False, count, event.sequence,
                    f"event #{event.sequence} does not link to the event before it",
                )
            if event_hash(event) != event.hash:
                return ChainVerification(
                    False, count, event.sequence,
                    f"event #{event.sequence} was altered: its hash does not match its content",
                )
            expected_prev = event.hash
            expected_sequence += 1
        last_sequence = batch[-1].sequence
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_sequence > count:
        return ChainVerification(
            False, count, count + 1,
            f"the chain head records {head.last_sequence} events but only {count} remain",
        )
    return ChainVerification(True, count, None)

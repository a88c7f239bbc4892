"""Tasks every app's background jobs share. The beat schedule is in portal/settings.py."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from core import jobs
from core.audit import SYSTEM_ACTOR, audit_record, audit_verify_chain
from core.signin import sign_in_failures_summarise
from core.tokens import tokens_purge_expired

logger = logging.getLogger(__name__)


@shared_task(name="core.tasks.sweep_background_jobs")
def sweep_background_jobs() -> dict:
    return jobs.sweep()


@shared_task(name="core.tasks.verify_audit_chain")
def verify_audit_chain() -> dict:
    """The daily check of the audit chain. A break is mailed to the alert recipients
    and recorded in the trail itself."""
    result = audit_verify_chain()
    if result.ok:
        # Recorded too, so the dashboard can say when the chain was last confirmed intact.
        with transaction.atomic():
            audit_record(
                actor=SYSTEM_ACTOR, action="audit.verified", object_type="auditevent",
                object_id=str(result.events),
                summary=f"The audit chain verified: {result.events} events intact.",
                data={"events": result.events},
            )
        return {"ok": True, "events": result.events}
    message = (
        f"The audit trail does not verify: {result.reason}. "
        f"First event that does not verify: #{result.first_bad_sequence}. "
        f"{result.events} events were checked. Run `python manage.py verify_audit` for details."
    )
    recipients = list(settings.PORTAL_ALERT_RECIPIENTS)
    if recipients:
        send_mail(
            subject=f"[TS CAL portal] Audit chain broken at event #{result.first_bad_sequence}",
            message=message,
            from_email=None,
            recipient_list=recipients,
        )
    with transaction.atomic():
        audit_record(
            actor=SYSTEM_ACTOR,
            action="audit.verification_failed",
            object_type="auditevent",
            object_id=str(result.first_bad_sequence),
            summary=message,
            data={"first_bad_sequence": result.first_bad_sequence, "events": result.events,
                  "reason": result.reason, "alerted": recipients},
        )
    logger.error(message)
    return {"ok": False, "events": result.events, "first_bad_sequence": result.first_bad_sequence}


@shared_task(name="core.tasks.summarise_sign_in_failures")
def summarise_sign_in_failures() -> dict:
    """Hourly: one audit event counting the failed sign-ins since the last one (core.signin)."""
    event = sign_in_failures_summarise()
    return {"failures": event.data["failures"] if event else 0}


@shared_task(name="core.tasks.purge_expired_tokens")
def purge_expired_tokens() -> dict:
    return {"deleted": tokens_purge_expired()}

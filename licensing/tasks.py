"""Celery tasks. They take ids (or nothing), re-read the rows, call a service, and are
safe to run twice or at the same time. The beat schedule is in portal/settings.py."""

from celery import shared_task

from core import jobs
from licensing import alerts
from licensing.models import ExportJob, ImportJob
from licensing.services import exports, imports
from licensing.services.licenses import expire_due_temporary_licenses


@shared_task(name="licensing.tasks.expire_temporary_licenses")
def expire_temporary_licenses() -> int:
    return expire_due_temporary_licenses()


@shared_task(name="licensing.tasks.alert_expiring_temporary_licenses")
def alert_expiring_temporary_licenses() -> int:
    return alerts.alert_expiring_temporary_licenses()


@shared_task(name="licensing.tasks.alert_stale_reissue_requests")
def alert_stale_reissue_requests() -> int:
    return alerts.alert_stale_reissue_requests()


@jobs.task_for(ExportJob)
@shared_task(bind=True, name="licensing.tasks.run_export")
def run_export(self, job_id: int) -> str:
    """Write one export job's file (``core.jobs.run``: safe to run twice or at once)."""
    return jobs.run(ExportJob, job_id, task=self, work=exports.write_export_job)


@shared_task(name="licensing.tasks.purge_expired_exports")
def purge_expired_exports() -> int:
    return exports.purge_expired_exports()




@jobs.task_for(ImportJob)
@shared_task(bind=True, name="licensing.tasks.run_import")
def run_import(self, job_id: int) -> str:
    """Import one job's files (``core.jobs.run``: safe to run twice or at once)."""
    return jobs.run(ImportJob, job_id, task=self, work=imports.run_import_job)


@shared_task(name="licensing.tasks.purge_import_files")
def purge_import_files() -> int:
    return imports.purge_import_files()


@shared_task(name="licensing.tasks.alert_shortfalls")
def alert_shortfalls() -> int:
    return alerts.alert_shortfalls()


@shared_task(name="licensing.tasks.alert_new_drift")
def alert_new_drift() -> int:
    return alerts.alert_new_drift()

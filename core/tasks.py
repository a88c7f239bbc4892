"""Tasks every app's background jobs share. The beat schedule is in portal/settings.py."""

from celery import shared_task

from core import jobs


@shared_task(name="core.tasks.sweep_background_jobs")
def sweep_background_jobs() -> dict:
    return jobs.sweep()

"""Background export jobs are never lost (core.jobs): one run at a time, a dead run taken
over, a bounded number of chances, and the sweeper for what no worker is working on."""

import os
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerOperationalError
from rest_framework.test import APIClient

from core import jobs
from core.errors import ServiceUnavailable
from core.jobs import JobStatus
from core.models import AuditEvent
from licensing.models import ExportJob
from licensing.services.exports import export_start
from licensing.tasks import run_export


@pytest.fixture(autouse=True)
def _files(file_store, settings):
    settings.PORTAL_JOB_STALE_SECONDS = 60
    settings.PORTAL_JOB_PENDING_SECONDS = 300
    settings.PORTAL_JOB_MAX_ATTEMPTS = 3


@pytest.fixture
def job(admin_user):
    return ExportJob.objects.create(report="licenses", format="csv", requested_by=admin_user)


def test_a_job_another_live_run_owns_is_left_to_it(job):
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1, heartbeat_at=timezone.now(),
                                               worker="other-host:42")
    assert jobs.claim(ExportJob, job.pk) is jobs.BUSY
    assert run_export(job.pk) == "busy"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker) == (JobStatus.RUNNING, 1, "other-host:42")


def test_a_run_whose_heartbeat_stopped_is_taken_over_from_the_start(job):
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1, progress=60,
                                               heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.progress) == (JobStatus.DONE, 2, 100)
    assert job.file_name and job.worker.endswith(f":{os.getpid()}")


def test_a_taken_over_run_can_no_longer_change_the_job(job):
    first = jobs.claim(ExportJob, job.pk)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    second = jobs.claim(ExportJob, job.pk)
    assert (first.number, second.number) == (1, 2)
    assert first.finish(rows=999) is False
    with pytest.raises(jobs.Superseded):
        first.set_progress(50)
    assert second.finish(rows=3) is True
    job.refresh_from_db()
    assert (job.status, job.rows) == (JobStatus.DONE, 3)


def test_after_its_last_attempt_a_job_fails_with_a_reason_the_user_sees(job, admin_user):
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=3, worker="ws-worker-2:777",
                                               heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert run_export(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert "stopped 3 times" in job.error and "ws-worker-2:777" in job.error
    client = APIClient()
    client.force_authenticate(admin_user)
    body = client.get(f"/api/v1/exports/{job.pk}/").json()
    assert body["status"] == "failed" and "stopped 3 times" in body["error"] and body["download_url"] is None


def test_a_finished_job_is_never_run_again(job):
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    assert run_export(job.pk) == "skipped"
    assert ExportJob.objects.get(pk=job.pk).attempts == job.attempts == 1


def test_the_sweeper_requeues_what_nobody_works_on_and_leaves_the_rest(admin_user, django_capture_on_commit_callbacks):
    now = timezone.now()
    old = now - timedelta(minutes=10)

    def make(**fields):
        return ExportJob.objects.create(report="licenses", format="csv", requested_by=admin_user, **fields)

    forgotten = make(queued_at=old)
    fresh = make(queued_at=now)
    dead = make(status=JobStatus.RUNNING, attempts=1, heartbeat_at=old, queued_at=old)
    alive = make(status=JobStatus.RUNNING, attempts=1, heartbeat_at=now, queued_at=old)
    never_picked = make(queued_at=old, requeues=3)
    out_of_runs = make(status=JobStatus.RUNNING, attempts=3, heartbeat_at=old, queued_at=old)

    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.sweep(now=now) == {"requeued": 2, "failed": 2}
    status = dict(ExportJob.objects.values_list("pk", "status"))
    # Eager here: a requeued job runs at once.
    assert status[forgotten.pk] == status[dead.pk] == JobStatus.DONE
    assert status[fresh.pk] == JobStatus.PENDING and status[alive.pk] == JobStatus.RUNNING
    assert ExportJob.objects.get(pk=forgotten.pk).requeues == 1
    assert "No worker ran this job" in ExportJob.objects.get(pk=never_picked.pk).error
    assert "stopped 3 times" in ExportJob.objects.get(pk=out_of_runs.pk).error
    assert jobs.sweep(now=now) == {"requeued": 0, "failed": 0}


def test_a_send_that_fails_after_commit_leaves_a_pending_job_for_the_sweeper(
    job, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_gone(*args, **kwargs):
        raise BrokerOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(jobs, "_eager", lambda: False)
        patched.setitem(jobs._TASKS, ExportJob, type("Task", (), {"delay": staticmethod(broker_gone)}))
        assert jobs._send(ExportJob, job.pk) is False
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING
    ExportJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.sweep() == {"requeued": 1, "failed": 0}
    assert ExportJob.objects.get(pk=job.pk).status == JobStatus.DONE


def test_with_the_broker_down_an_export_is_refused_with_503_and_nothing_is_written(auditor, monkeypatch):
    monkeypatch.setattr(jobs, "_eager", lambda: False)
    # A real connection attempt, to a port where nothing listens.
    monkeypatch.setattr(current_app, "connection_for_write", lambda *a, **k: Connection("redis://127.0.0.1:1/0"))
    events = AuditEvent.objects.count()
    client = APIClient()
    client.force_authenticate(auditor)
    response = client.post("/api/v1/exports/", {"report": "licenses", "format": "csv"}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable" and "broker" in response.json()["detail"]
    assert response["Retry-After"]
    assert not ExportJob.objects.exists() and AuditEvent.objects.count() == events
    with pytest.raises(ServiceUnavailable):  # the service itself refuses the same way
        export_start(report="licenses", format="csv", filters={}, actor=auditor)
    assert not ExportJob.objects.exists()

"""Background jobs that are never lost.

A job is a row (a concrete ``BackgroundJob``) worked by a Celery task that takes its id.

- A request that starts a job first checks that the broker answers (``require_broker``),
  so a refused request leaves no row. The task is sent once the row commits (``enqueue``);
  if that send fails anyway, the job stays ``pending`` and ``sweep`` sends it again.
- Each run claims the job under the next attempt number (``run``). While it works, a
  heartbeat thread writes ``heartbeat_at`` and ``progress`` through its own database
  connection, so progress shows even while the job's own transaction is still open.
- A run that finds the job running under a fresh heartbeat retries later; one that finds
  the heartbeat stale (the worker died) takes the job over and starts it again from the
  beginning. Every write of a run is conditional on its attempt number, so a run that was
  taken over can no longer change the job.
- ``sweep`` (beat, every minute) sends again the pending jobs no worker picked up and the
  running jobs whose heartbeat stopped, a bounded number of times; then the job fails with
  a reason the user sees.
"""

import logging
import os
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ServiceUnavailable

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BackgroundJob(models.Model):
    """What every background job records about its runs."""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs started so far.")
    requeues = models.PositiveSmallIntegerField(default=0, help_text="Times the sweeper sent it again.")
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the latest run.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="%(app_label)s_%(class)s_progress_max")
        ]

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


def _setting(name: str) -> int:
    return int(getattr(settings, name))


def heartbeat_seconds() -> int:
    return _setting("PORTAL_JOB_HEARTBEAT_SECONDS")


def stale_seconds() -> int:
    return _setting("PORTAL_JOB_STALE_SECONDS")


def max_attempts() -> int:
    return _setting("PORTAL_JOB_MAX_ATTEMPTS")


def _eager() -> bool:
    return bool(current_app.conf.task_always_eager)


# --- the broker ------------------------------------------------------------------------------


def broker_error() -> Exception | None:
    """Why the broker cannot be reached, or None when it answers."""
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
    except Exception as exc:  # any failure to connect, whatever the transport raises
        return exc
    return None


def require_broker() -> None:
    """Refuse to start a job (``ServiceUnavailable``) while the broker is down."""
    if _eager():
        return
    error = broker_error()
    if error is not None:
        logger.warning("The broker is not reachable: %r", error)
        raise ServiceUnavailable(
            "The task queue (broker) is not reachable, so the job was not started and nothing "
            "was saved. Try again once it is back."
        )


# --- sending ---------------------------------------------------------------------------------

# Each job model's task, registered by the module that defines the task.
_TASKS: dict[type[BackgroundJob], object] = {}


def task_for(model: type[BackgroundJob]):
    """Register the Celery task that works ``model``'s jobs (used by ``enqueue`` and ``sweep``)."""

    def register(task):
        _TASKS[model] = task
        return task

    return register


def _send(model: type[BackgroundJob], pk: int) -> bool:
    task = _TASKS[model]
    if _eager():
        task.delay(pk)
        return True
    try:
        task.delay(pk)
    except Exception:  # the broker went away after the request checked it
        logger.exception("Could not queue %s #%s; the sweeper will queue it again.", model.__name__, pk)
        return False
    return True


def enqueue(job: BackgroundJob) -> None:
    """Send the job's task once the row (and whatever else the transaction writes) commits."""
    model, pk = type(job), job.pk
    transaction.on_commit(lambda: _send(model, pk))


# --- running ---------------------------------------------------------------------------------


class Superseded(Exception):
    """Another run took the job over; this one must stop without writing."""


BUSY = object()


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:255]


def claim(model: type[BackgroundJob], pk: int):
    """Start a run: an ``Attempt``, ``BUSY`` while another run is alive, or None when the
    job is finished, gone, or has just failed for running out of attempts."""
    now = timezone.now()
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=pk).first()
        if job is None or job.is_finished:
            return None
        if (job.status == JobStatus.RUNNING and job.heartbeat_at is not None
                and job.heartbeat_at > now - timedelta(seconds=stale_seconds())):
            return BUSY
        if job.attempts >= max_attempts():
            _fail_exhausted(model, job, now)
            return None
        job.attempts += 1
        job.status = JobStatus.RUNNING
        job.progress = 0
        job.error = ""
        job.worker = _worker_name()
        job.started_at = job.heartbeat_at = now
        job.save(update_fields=["attempts", "status", "progress", "error", "worker", "started_at", "heartbeat_at"])
    return Attempt(job)


def _fail_exhausted(model, job, now) -> None:
    reason = (f"The worker running this job stopped {job.attempts} times (last {job.worker or 'unknown'}); "
              "it was not started again. Start a new one.")
    model.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=reason, finished_at=now)
    logger.error("%s #%s failed: %s", model.__name__, job.pk, reason)


class Attempt:
    """One run of one job. Every write is conditional on the run still owning the job."""

    def __init__(self, job: BackgroundJob):
        self.job = job
        self.number = job.attempts
        self.progress = 0
        self.on_progress = None  # e.g. a command that shows the progress as it runs
        self._lost = False
        self._thread: threading.Thread | None = None

    def _mine(self):
        return type(self.job).objects.filter(pk=self.job.pk, attempts=self.number, status=JobStatus.RUNNING)

    def check(self) -> None:
        if self._lost:
            raise Superseded()

    def set_progress(self, percent: int) -> None:
        """Report progress (0-99); the heartbeat writes it. Raises ``Superseded`` when taken over."""
        self.progress = max(0, min(99, int(percent)))
        if self.on_progress is not None:
            self.on_progress(self.progress)
        if self._thread is None:
            self.beat()
        self.check()

    def beat(self) -> None:
        if not self._mine().update(heartbeat_at=timezone.now(), progress=self.progress):
            self._lost = True

    def _beat_every(self, interval: float, stop: threading.Event) -> None:
        try:
            while not stop.wait(interval):
                self.beat()
        except Exception:  # a heartbeat that cannot write lets the job go stale, and the sweeper act
            logger.exception("The heartbeat of %s #%s stopped", type(self.job).__name__, self.job.pk)
        finally:
            connections.close_all()  # this thread's own connections

    @contextmanager
    def heartbeat(self):
        """Beat from a thread while the block runs (in-process, eager runs need none)."""
        if _eager():
            yield
            return
        stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat_every, args=(heartbeat_seconds(), stop), daemon=True,
            name=f"heartbeat-{type(self.job).__name__}-{self.job.pk}",
        )
        self._thread.start()
        try:
            yield
        finally:
            stop.set()
            self._thread.join()
            self._thread = None

    def finish(self, **fields) -> bool:
        """Mark the job done with ``fields`` (``finished_at`` defaults to now); the work may
        finish it ``failed`` instead, with its reason in ``error``."""
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("status", JobStatus.DONE)
        if fields["status"] == JobStatus.DONE:
            fields["progress"] = 100
        return bool(self._mine().update(heartbeat_at=fields["finished_at"], **fields))

    def fail(self, reason: str, **fields) -> bool:
        return bool(self._mine().update(status=JobStatus.FAILED, error=reason[:2000], finished_at=timezone.now(),
                                        **fields))


def run(model: type[BackgroundJob], pk: int, *, task, work) -> str:
    """Run ``work(job, attempt)`` as one attempt at the job; it returns the fields to save
    with ``done``. Safe to call twice or at once: a finished job is left alone, and a job
    another live run owns is retried later (the task's ``retry``)."""
    attempt = claim(model, pk)
    if attempt is BUSY:
        if not _eager() and task is not None and task.request.retries < max_attempts() * 2:
            raise task.retry(countdown=stale_seconds())
        return "busy"
    if attempt is None:
        return "skipped"
    with attempt.heartbeat():
        try:
            fields = work(attempt.job, attempt) or {}
        except Superseded:
            return "superseded"
        except Exception as exc:
            logger.exception("%s #%s failed", model.__name__, pk)
            attempt.fail(f"{type(exc).__name__}: {exc}")
            return "failed"
        if attempt._lost:
            return "superseded"
    return "done" if attempt.finish(**fields) else "superseded"


# --- the sweeper -----------------------------------------------------------------------------


def sweep(*, now=None) -> dict[str, int]:
    """Send again what no worker is working on; fail what ran out of chances. Returns counts."""
    now = now or timezone.now()
    pending_before = now - timedelta(seconds=_setting("PORTAL_JOB_PENDING_SECONDS"))
    stale_before = now - timedelta(seconds=stale_seconds())
    counts = {"requeued": 0, "failed": 0}
    for model in list(_TASKS):
        with transaction.atomic():
            lost = list(
                model.objects.select_for_update(skip_locked=True)
                .filter(Q(status=JobStatus.PENDING, queued_at__lt=pending_before)
                        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before))
                .order_by("pk")
            )
            for job in lost:
                if job.attempts >= max_attempts():
                    _fail_exhausted(model, job, now)
                    counts["failed"] += 1
                elif job.requeues >= max_attempts():
                    reason = (f"No worker ran this job after it was queued {job.requeues + 1} times; "
                              "check that a Celery worker is running, then start a new one.")
                    model.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=reason, finished_at=now)
                    logger.error("%s #%s failed: %s", model.__name__, job.pk, reason)
                    counts["failed"] += 1
                else:
                    model.objects.filter(pk=job.pk).update(
                        status=JobStatus.PENDING, queued_at=now, requeues=job.requeues + 1)
                    enqueue(job)
                    counts["requeued"] += 1
    return counts

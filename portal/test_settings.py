"""Settings for the test suite: production settings plus fast, local pieces."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")

from portal.settings import *  # noqa: E402,F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Tasks run in-process unless a test starts a real worker on purpose.
CELERY_TASK_ALWAYS_EAGER = True
PORTAL_ALERT_RECIPIENTS = ["licensing-team@example.com"]
# Files that tests write (background exports, uploaded imports) go to a scratch folder.
_SCRATCH = Path(tempfile.mkdtemp(prefix="portal-tests-"))
EXPORT_ROOT = _SCRATCH / "exports"
PORTAL_IMPORT_ROOT = _SCRATCH / "imports"
if PORTAL_FILE_STORAGE == "local":
    STORAGES.update(file_storages("local", export_root=EXPORT_ROOT, import_root=PORTAL_IMPORT_ROOT))

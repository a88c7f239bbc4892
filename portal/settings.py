"""Settings for the TS CAL license portal.

Every value that differs between a laptop and production comes from the
environment (see the README's table). Defaults are safe for production except
where ``DJANGO_DEBUG`` is on.
"""

import os
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.directory import AXES_BACKEND, MODEL_BACKEND, directory_settings
from core.network import trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def positive_int(name: str, default: int) -> int:
    value = env.int(name, default=default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, not {value}.")
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    # Before core: its sign-in receivers read what axes has just counted.
    "axes",
    "core",
    "portal",
    "inventory",
    "licensing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 413 for a body over PORTAL_UPLOAD_MAX_MB, before anything below reads it.
    "core.uploads.UploadLimitMiddleware",
    "csp.middleware.CSPMiddleware",
    # Permissions-Policy, and Cache-Control: no-store on every response from here down.
    "core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle and absolute session limits, before the login check sees the user.
    "core.sessions.SessionLimitsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # 403 on every page for a user without a role, and for collector accounts.
    "core.middleware.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.unavailable.ServiceUnavailableMiddleware",
    # Last, as django-axes asks: it turns a lockout into a 429 (core.signin.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles_context",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several requests write at once under runserver; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes checks for a lockout before any backend tries the password.
AUTHENTICATION_BACKENDS = [AXES_BACKEND, MODEL_BACKEND]
# Sign-in with Active Directory / LDAP when LDAP_SERVER_URI is set (docs/directory.md):
# AUTHENTICATION_BACKENDS (axes first there too) and the AUTH_LDAP_* settings.
globals().update(directory_settings(os.environ))

# The proxies whose X-Forwarded-For is believed (addresses or CIDR networks, comma
# separated); none by default, so the client is REMOTE_ADDR (core.network).
PORTAL_TRUSTED_PROXIES = trusted_proxies(env.str("PORTAL_TRUSTED_PROXIES", default=""))

# Lockout (django-axes, docs/security.md): PORTAL_LOGIN_FAILURE_LIMIT failures for one user
# name from one address lock that pair for PORTAL_LOCKOUT_MINUTES, on the login page and the
# token endpoint, even with the right password afterwards.
PORTAL_LOGIN_FAILURE_LIMIT = positive_int("PORTAL_LOGIN_FAILURE_LIMIT", 5)
PORTAL_LOCKOUT_MINUTES = positive_int("PORTAL_LOCKOUT_MINUTES", 15)
AXES_FAILURE_LIMIT = PORTAL_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=PORTAL_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The lockout lasts its minutes from the failure that started it; attempts during it are refused.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "core.signin.attempted_username"
AXES_CLIENT_IP_CALLABLE = "core.signin.axes_client_address"
AXES_LOCKOUT_CALLABLE = "core.signin.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Our own log line names each failure (core.signals); axes need not announce itself too.
AXES_VERBOSE = False
# Failures are kept (and summarised hourly into the audit trail); sign-ins are audited there already.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_DISABLE_ACCESS_LOG = True
# Unlocking goes through `manage.py unlock_user`, which is audited, not through the admin.
AXES_ENABLE_ADMIN = False

# Sessions end after PORTAL_SESSION_IDLE_MINUTES without a request and PORTAL_SESSION_MAX_HOURS
# after sign-in (core.sessions); the cookie lives no longer than that and not past the browser.
PORTAL_SESSION_IDLE_MINUTES = positive_int("PORTAL_SESSION_IDLE_MINUTES", 30)
PORTAL_SESSION_MAX_HOURS = positive_int("PORTAL_SESSION_MAX_HOURS", 10)
SESSION_COOKIE_AGE = PORTAL_SESSION_MAX_HOURS * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# API tokens of people (django-rest-knox) end after PORTAL_TOKEN_TTL_HOURS; each sign-in makes one.
PORTAL_TOKEN_TTL_HOURS = positive_int("PORTAL_TOKEN_TTL_HOURS", 10)
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "TOKEN_TTL": timedelta(hours=PORTAL_TOKEN_TTL_HOURS),
}

# The largest request body accepted (an upload of license server exports); larger is 413.
PORTAL_UPLOAD_MAX_MB = positive_int("PORTAL_UPLOAD_MAX_MB", 512)
FILE_UPLOAD_HANDLERS = [
    "core.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where background exports write their files, and how long they are kept.
EXPORT_ROOT = env.path("PORTAL_EXPORT_ROOT", default=BASE_DIR / "exports")
EXPORT_RETENTION = timedelta(hours=env.int("PORTAL_EXPORT_RETENTION_HOURS", default=24))
# Where uploaded license server exports are kept for their import job.
PORTAL_IMPORT_ROOT = env.path("PORTAL_IMPORT_ROOT", default=BASE_DIR / "imports")
# Exports and uploads go through Django's storage API: folders on disk, or any
# S3-compatible store that every web server and worker can reach.
PORTAL_FILE_STORAGE = env.str("PORTAL_FILE_STORAGE", default="local")


def file_storages(kind: str, *, export_root, import_root) -> dict:
    """The ``exports`` and ``imports`` entries of STORAGES for ``PORTAL_FILE_STORAGE``."""
    if kind == "local":
        return {
            alias: {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(root), "allow_overwrite": True}}
            for alias, root in (("exports", export_root), ("imports", import_root))
        }
    if kind == "s3":
        bucket = env.str("PORTAL_S3_BUCKET", default="")
        if not bucket:
            raise ImproperlyConfigured("PORTAL_FILE_STORAGE=s3 needs PORTAL_S3_BUCKET.")
        options = {
            "bucket_name": bucket,
            "endpoint_url": env.str("PORTAL_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_DEFAULT_REGION", default="") or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        }
        return {alias: {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": alias}}
                for alias in ("exports", "imports")}
    raise ImproperlyConfigured(f"PORTAL_FILE_STORAGE must be local or s3, not {kind!r}.")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    **file_storages(PORTAL_FILE_STORAGE, export_root=EXPORT_ROOT, import_root=PORTAL_IMPORT_ROOT),
}
WHITENOISE_USE_FINDERS = True
# Until collectstatic has run (development, tests), WhiteNoise serves through the finders.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

# Security: production-safe unless DEBUG is on.
# Scripts and styles come from our own static files only (no inline code, no CDN); the
# pages are never framed, and forms post only to the portal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Pico CSS draws its form icons as data: SVG images.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Browser features the portal never uses are switched off (core.middleware).
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "ambient-light-sensor", "autoplay", "bluetooth", "camera", "display-capture",
        "geolocation", "gyroscope", "hid", "magnetometer", "microphone", "midi", "payment",
        "publickey-credentials-get", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
    )
}
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz is probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Email: alerts go through Django's backend; the console in development.
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="ts-cal-portal@localhost")
PORTAL_ALERT_RECIPIENTS = env.list("PORTAL_ALERT_RECIPIENTS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # django-axes says "nothing to clean" at INFO on every sign-in; its warnings still show.
    "loggers": {"axes": {"level": "WARNING"}},
}

# Django REST Framework
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.auth.PortalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Requests without credentials, per address; the token endpoint also has its own rate.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.AnonymousRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute", "sign_in": "20/minute"},
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PortalCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TS CAL license portal API",
    "DESCRIPTION": "Inventory, one-time transfers, CSC reissue calls and audit trail of "
    "Terminal Services client access licenses.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "WindowsVersionEnum": "licensing.choices.WindowsVersion",
        "LicenseStatusEnum": "licensing.choices.LicenseStatus",
        "TransferStatusEnum": "licensing.choices.TransferStatus",
        "ReissueStatusEnum": "licensing.choices.ReissueStatus",
        "MachineStatusEnum": "inventory.models.MachineStatus",
        "RemovalMethodEnum": "licensing.choices.RemovalMethod",
        "LicenseKindEnum": "licensing.choices.LicenseKind",
        "DriftKindEnum": "licensing.choices.DriftKind",
        "DriftStateEnum": "licensing.choices.DriftState",
        "JobStatusEnum": "core.jobs.JobStatus",
    },
}

# Celery: eager in-process when no broker is configured.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task is acknowledged only when it has finished, and given back to the queue when the
# process running it dies; a worker takes one task at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest a job may run; the broker hands an unacknowledged task out again only after
# its visibility timeout, which must be longer (a dead worker's jobs are picked up sooner by
# the sweeper, which watches their heartbeat).
PORTAL_JOB_TIME_LIMIT_SECONDS = env.int("PORTAL_JOB_TIME_LIMIT_SECONDS", default=2 * 3600)
CELERY_TASK_TIME_LIMIT = PORTAL_JOB_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = PORTAL_JOB_TIME_LIMIT_SECONDS - 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": PORTAL_JOB_TIME_LIMIT_SECONDS + 3600,
    "socket_connect_timeout": 5,
}
# A request that finds the broker gone fails in seconds, not minutes.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# Background jobs (core.jobs): a running job's heartbeat, when it counts as stopped, how
# long a job may wait for a worker, and how many runs it gets.
PORTAL_JOB_HEARTBEAT_SECONDS = env.int("PORTAL_JOB_HEARTBEAT_SECONDS", default=10)
PORTAL_JOB_STALE_SECONDS = env.int("PORTAL_JOB_STALE_SECONDS", default=90)
PORTAL_JOB_PENDING_SECONDS = env.int("PORTAL_JOB_PENDING_SECONDS", default=300)
PORTAL_JOB_MAX_ATTEMPTS = env.int("PORTAL_JOB_MAX_ATTEMPTS", default=3)
CELERY_BEAT_SCHEDULE = {
    "expire-temporary-licenses": {
        "task": "licensing.tasks.expire_temporary_licenses",
        "schedule": crontab(minute=5),
    },
    "alert-expiring-temporary-licenses": {
        "task": "licensing.tasks.alert_expiring_temporary_licenses",
        "schedule": crontab(minute=15, hour=6),
    },
    "alert-stale-reissue-requests": {
        "task": "licensing.tasks.alert_stale_reissue_requests",
        "schedule": crontab(minute=20, hour=6),
    },
    "alert-shortfalls": {
        "task": "licensing.tasks.alert_shortfalls",
        "schedule": crontab(minute=25, hour=6),
    },
    "verify-audit-chain": {
        "task": "core.tasks.verify_audit_chain",
        "schedule": crontab(minute=30, hour=2),
    },
    "alert-new-drift": {
        "task": "licensing.tasks.alert_new_drift",
        "schedule": crontab(minute="*/10"),
    },
    "purge-import-files": {
        "task": "licensing.tasks.purge_import_files",
        "schedule": crontab(minute=50),
    },
    "sweep-background-jobs": {
        "task": "core.tasks.sweep_background_jobs",
        "schedule": 60.0,
    },
    "purge-expired-exports": {
        "task": "licensing.tasks.purge_expired_exports",
        "schedule": crontab(minute=45),
    },
    "summarise-sign-in-failures": {
        "task": "core.tasks.summarise_sign_in_failures",
        "schedule": crontab(minute=40),
    },
    "purge-expired-tokens": {
        "task": "core.tasks.purge_expired_tokens",
        "schedule": crontab(minute=55),
    },
}

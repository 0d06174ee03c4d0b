"""Settings, all driven by the environment (see the configuration table in README.md).

With nothing set this runs on a laptop with nothing installed: SQLite, an embedded
(filesystem) Celery broker, and email written to an outbox folder.
"""

import secrets
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Made by the processes that write there (partnership_crm.var), not by importing settings.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development only: a random key kept in var/ so sessions survive a restart.
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Links in emails. Under `make run` it follows PORT, so links land on the running server.
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{env_str('PORT', '8000')}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "simple_history",
    # Below every domain app: the audit trail's fields, channel and recording.
    "audit",
    "accounts",
    "tickets",
    "visits",
    "nudges",
    "inbound",
    "termfeeds",
    "reports",
    "renewals",
    # Above every domain app: the audit trail's pages, subject access, erasure, retention.
    "privacy",
    "demo",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NUL bytes in the URL refused with 400; a page's out-of-range value is 400, not 500.
    "partnership_crm.middleware.BadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The audit trail: who (simple-history reads the request's user) and through which
    # channel (page, API, admin).
    "simple_history.middleware.HistoryRequestMiddleware",
    "audit.middleware.AuditMiddleware",
    # Last: turns a locked-out sign-in (django-axes) into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "partnership_crm.urls"
WSGI_APPLICATION = "partnership_crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
# Persistent connections for gunicorn and workers; none under DEBUG, where runserver starts
# a thread per request and each thread's kept connection lingers idle (60 requests left 2
# idle connections with 60 s, none with 0): Django's advice is not to enable them there.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 0 if DEBUG else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast (and let /healthz say so) instead of waiting on the OS's TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # web, worker and beat share one SQLite file: WAL and a busy timeout stop
    # "database is locked" under concurrent writers (Django >= 5.1 options).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "crm")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The folders are made when a process starts (partnership_crm.var.ensure_dirs).
    _QUEUE_DIR = Path(env_str("CELERY_FILESYSTEM_DIR", str(VAR_DIR / "celery")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_QUEUE_DIR / "queue"),
        "data_folder_out": str(_QUEUE_DIR / "queue"),
        "control_folder": str(_QUEUE_DIR / "control"),
        "processed_folder": str(_QUEUE_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "Europe/London"
# Every periodic task lives here; beat copies them into django-celery-beat's tables
# at start, where the admin can pause or retime them.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        # Proves beat -> broker -> worker end to end; /healthz reports its age.
        "task": "accounts.tasks.heartbeat",
        "schedule": float(env_int("HEARTBEAT_SECONDS", 60)),
        "options": {"expires": 60},
    },
    "sweep-ticket-emails": {
        # Re-queues raiser emails whose on-commit dispatch was lost.
        "task": "tickets.tasks.sweep_notifications",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "dispatch-nudges": {
        # Recover dead claims, then send what is due. Safe to overlap: claims are exclusive.
        "task": "nudges.tasks.dispatch_nudges",
        "schedule": float(env_int("NUDGE_DISPATCH_SECONDS", 60)),
        "options": {"expires": 60},
    },
    "plan-nudges": {
        # Turn rules into nudge rows for the next two weeks; re-running never duplicates.
        "task": "nudges.tasks.plan_nudges",
        "schedule": 900.0,
        "options": {"expires": 900},
    },
    "purge-expired-api-tokens": {
        "task": "accounts.tasks.purge_expired_tokens",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "check-term-date-feeds": {
        # Subscribed term-dates calendars; what they would change waits for a school lead.
        "task": "termfeeds.tasks.check_term_feeds",
        "schedule": 86400.0,
        "options": {"expires": 86400},
    },
    "apply-retention": {
        # Deletes or blanks what is past its retention (RETENTION below), in small batches.
        "task": "privacy.tasks.apply_retention",
        "schedule": 86400.0,
        "options": {"expires": 86400},
    },
    "open-value-reviews": {
        # Opens each agreement term's value review RENEWAL_REVIEW_WEEKS before its notice date.
        "task": "renewals.tasks.open_due_reviews",
        "schedule": 86400.0,
        "options": {"expires": 86400},
    },
}
# Renewals (renewals/): the value review opens this many weeks before a term's notice date;
# the portfolio and the school's renewals list show terms whose notice date falls within
# RENEWAL_DUE_WEEKS; a supplier sees staff survey answers only from this many respondents.
RENEWAL_REVIEW_WEEKS = env_int("RENEWAL_REVIEW_WEEKS", 8)
RENEWAL_DUE_WEEKS = env_int("RENEWAL_DUE_WEEKS", 12)
SURVEY_MIN_RESPONDENTS = env_int("SURVEY_MIN_RESPONDENTS", 5)
# How long personal data is kept, in days (privacy/retention.py; the README says why).
RETENTION_DAYS = {
    # Ticket messages and attachments, after the ticket closes.
    "ticket_messages": env_int("RETENTION_TICKET_MESSAGES_DAYS", 3 * 365),
    # A sent nudge's rendered subject and bodies, after it was sent.
    "nudge_bodies": env_int("RETENTION_NUDGE_BODIES_DAYS", 365),
    # SendGrid event webhook payloads, after they arrived.
    "webhook_payloads": env_int("RETENTION_WEBHOOK_PAYLOADS_DAYS", 90),
    # Inbound Parse raw mail, after it arrived.
    "inbound_raw": env_int("RETENTION_INBOUND_RAW_DAYS", 30),
    # Audit trail entries, after they were recorded.
    "audit": env_int("RETENTION_AUDIT_DAYS", 6 * 365),
}
# Keys the hash of an erased person's email (accounts/privacy_hash.py); default from SECRET_KEY.
# Set it explicitly before rotating SECRET_KEY, or erased addresses stop matching.
PRIVACY_HASH_KEY = env_str("PRIVACY_HASH_KEY", "")
# Image hosts a nudge's HTML may load from (nudges/sanitise.py); empty: any host, with
# 0/1-pixel tracking images always removed.
NUDGE_IMAGE_HOSTS = env_list("NUDGE_IMAGE_HOSTS")
# Rows per statement when retention deletes or blanks (each batch its own transaction).
RETENTION_BATCH = env_int("RETENTION_BATCH", 500)
# Term-dates calendar URLs a school lead subscribes to (termfeeds/fetch.py).
TERM_FEED_TIMEOUT = env_int("TERM_FEED_TIMEOUT", 10)
TERM_FEED_MAX_BYTES = env_int("TERM_FEED_MAX_BYTES", 1_000_000)
TERM_FEED_ALLOW_PRIVATE_HOSTS = False  # tests fetch from a loopback server

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24  # a reset link works for a day
# Brute-force protection (django-axes): the axes backend first, so a locked-out sign-in
# is refused before the password is even checked (pages, admin and the API token alike).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# Per account and address together: a school's staff share one public IP, so locking the
# address alone would shut out the whole staffroom after one person's typos.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "frontend.auth.axes_username"
AXES_LOCKOUT_CALLABLE = "frontend.auth.lockout_response"

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "partnership_crm.drf.CappedPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "partnership_crm.filters.SafeFilterBackend",  # django-filter's, range-checked
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # drf-spectacular's, with times of day and read-only blank choices as we answer them.
    "DEFAULT_SCHEMA_CLASS": "partnership_crm.schema.AutoSchema",
    "EXCEPTION_HANDLER": "partnership_crm.drf.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": env_str("AUTH_THROTTLE_RATE", "20/minute")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_TTL_HOURS", 24 * 30)),
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Partnership CRM API",
    "DESCRIPTION": (
        "The shared record of a supplier's partnership with a school. Every list and "
        "object is limited to what the signed-in user may see; an object outside that "
        "scope answers 404."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "accounts.models.Stage",
        "TicketStatusEnum": "tickets.models.Status",
        "TicketOutcomeEnum": "tickets.models.Ticket.Outcome",
        "VisitStatusEnum": "visits.models.Visit.Status",
        "ReadinessOutcomeEnum": "visits.models.ReadinessAssessment.Outcome",
        "NudgeStatusEnum": "nudges.models.Nudge.Status",
        "StakeholderTagEnum": "accounts.models.StakeholderTag",
    },
}

# A pilot is small by design (a few confident teachers first): a pilot phase with a larger
# cohort is still saved, and the API answers with a warning.
PILOT_COHORT_WARN_SIZE = env_int("PILOT_COHORT_WARN_SIZE", 8)

# --- Email ----------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Partnership CRM <no-reply@localhost>")
# SendGrid when a key is set (nudges/sendgrid.py, nudges/backends.py); otherwise nudges and
# ordinary mail go to the outbox folder. The SDK has no timeout of its own: ours applies to
# every request.
SENDGRID_API_KEY = env_str("SENDGRID_API_KEY")
SENDGRID_API_HOST = env_str("SENDGRID_API_HOST", "https://api.sendgrid.com").rstrip("/")
SENDGRID_TIMEOUT = env_int("SENDGRID_TIMEOUT", 10)
# The Signed Event Webhook's verification key (base64 DER, as SendGrid's settings page shows
# it); without it /webhooks/sendgrid/events/ refuses every request (503).
SENDGRID_WEBHOOK_PUBLIC_KEY = env_str("SENDGRID_WEBHOOK_PUBLIC_KEY")
SENDGRID_WEBHOOK_MAX_AGE = env_int("SENDGRID_WEBHOOK_MAX_AGE", 300)
# Nudges go From "<account manager's name> <NUDGE_FROM_EMAIL>" (a verified SendGrid sender),
# with replies to the product (INBOUND_DOMAIN below), which tells the account manager.
NUDGE_FROM_EMAIL = env_str("NUDGE_FROM_EMAIL", parseaddr(DEFAULT_FROM_EMAIL)[1])
# Replies by email: ticket emails and nudges carry Reply-To: reply+<signed token>@<domain>.
# Point the domain's MX at SendGrid and its Inbound Parse at
# <SITE_URL>/webhooks/sendgrid/inbound/<INBOUND_SECRET>/. Without a domain, replies go to
# the account manager (nudges) or nowhere (no-reply); without a secret the webhook answers 503.
INBOUND_DOMAIN = env_str("INBOUND_DOMAIN", "reply.localhost" if DEBUG else "")
INBOUND_SECRET = env_str("INBOUND_SECRET")
# A reply token is good for this many days after the email was sent.
INBOUND_REPLY_TOKEN_DAYS = env_int("INBOUND_REPLY_TOKEN_DAYS", 120)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "nudges.backends.SendGridEmailBackend"
    if SENDGRID_API_KEY
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "outbox"))

# --- I18N / time ------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"


def _attachments_storage() -> dict:
    """Files on tickets and messages (tickets.models.attachment_storage). Never served at a
    public URL: only the API's download view, which checks who may see the ticket, reads
    them. ATTACHMENTS_STORAGE=s3 keeps them in an S3-compatible bucket (django-storages;
    ``pip install ".[s3]"`` for boto3, which reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."""
    kind = env_str("ATTACHMENTS_STORAGE", "filesystem").strip().lower()
    if kind == "filesystem":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(VAR_DIR / "attachments"),
                "file_permissions_mode": 0o640,
                "directory_permissions_mode": 0o750,
            },
        }
    if kind == "s3":
        bucket = env_str("ATTACHMENTS_S3_BUCKET")
        if not bucket:
            raise ImproperlyConfigured("ATTACHMENTS_STORAGE=s3 needs ATTACHMENTS_S3_BUCKET")
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": env_str("ATTACHMENTS_S3_ENDPOINT_URL") or None,
                "region_name": env_str("ATTACHMENTS_S3_REGION") or None,
                "location": env_str("ATTACHMENTS_S3_PREFIX", "attachments"),
                "file_overwrite": False,
            },
        }
    raise ImproperlyConfigured(f"ATTACHMENTS_STORAGE={kind!r}: use filesystem or s3")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
    "attachments": _attachments_storage(),
}
WHITENOISE_USE_FINDERS = DEBUG
# Each file on a ticket or message at most this big; at most this many on one message (or
# on a ticket as it is raised); an image at most this many pixels (all frames together).
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
ATTACHMENT_MAX_FILES = env_int("ATTACHMENT_MAX_FILES", 5)
ATTACHMENT_MAX_PIXELS = env_int("ATTACHMENT_MAX_PIXELS", 50_000_000)

# --- Security (tightened whenever DEBUG is off) ---------------------------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    # HSTS is off until the deploy opts in (it cannot be undone for its max-age); a deploy
    # that sets these passes `manage.py check --deploy` (tests/test_deploy.py).
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Nudges -------------------------------------------------------------------------------
NUDGE_BATCH_SIZE = env_int("NUDGE_BATCH_SIZE", 1000)  # SendGrid takes 1,000 per request
NUDGE_CONTACT_WEEKLY_CAP = env_int("NUDGE_CONTACT_WEEKLY_CAP", 2)  # across all suppliers
NUDGE_MAX_ATTEMPTS = env_int("NUDGE_MAX_ATTEMPTS", 8)
NUDGE_STALE_CLAIM_SECONDS = env_int("NUDGE_STALE_CLAIM_SECONDS", 300)
# A nudge whose request's answer was lost waits this long for SendGrid's events. Then it is
# sent again only if events came for requests made after it (more than
# NUDGE_EVENT_MARGIN_SECONDS after, within NUDGE_EVIDENCE_WINDOW_SECONDS) and none for its
# own: otherwise it is held for the supplier admin to resend or drop. Never resent on
# silence. (The settle time is the real margin: five minutes of events for later requests
# and none for this one.)
NUDGE_SETTLE_SECONDS = env_int("NUDGE_SETTLE_SECONDS", 300)
NUDGE_EVENT_MARGIN_SECONDS = env_int("NUDGE_EVENT_MARGIN_SECONDS", 0)
NUDGE_EVIDENCE_WINDOW_SECONDS = env_int("NUDGE_EVIDENCE_WINDOW_SECONDS", 3600)
NUDGE_SETTLE_BATCH = 100  # requests in doubt looked at per recovery run
NUDGE_PLAN_HORIZON_DAYS = env_int("NUDGE_PLAN_HORIZON_DAYS", 14)
# The school side may reopen a resolved ticket for this many days after it was resolved;
# after that, coming back about it files a new ticket linked to the old one.
TICKET_REOPEN_WINDOW_DAYS = env_int("TICKET_REOPEN_WINDOW_DAYS", 14)

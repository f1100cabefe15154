"""Settings for the CDP. Everything comes from the environment (see cdp/config.py and docs/operations.md).

With nothing set, the embedded default runs: SQLite under var/, Celery tasks eagerly in-process, a secret key
generated into var/. ``CDP_ENV=production`` requires the production settings and turns on secure cookies, HSTS and
a strict CSP.
"""

from pathlib import Path

from csp.constants import NONE, SELF

from cdp.config import ConfigError, fail, read_environment

BASE_DIR = Path(__file__).resolve().parent.parent

try:
    ENV = read_environment(BASE_DIR)
except ConfigError as error:
    fail(error)

PRODUCTION = ENV["production"]
VAR_DIR = ENV["var_dir"]
VAR_DIR.mkdir(parents=True, exist_ok=True)
SECRET_KEY = ENV["secret_key"]
DEBUG = ENV["debug"]
ALLOWED_HOSTS = ENV["allowed_hosts"]
CSRF_TRUSTED_ORIGINS = ENV["csrf_trusted_origins"]
HOST = ENV["host"]
PORT = ENV["port"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "cdp.core",
    "profiles",
    "consent",
    "ingestion",
    "segments",
    "activation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "cdp.urls"
WSGI_APPLICATION = "cdp.wsgi.application"

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
                "cdp.core.context_processors.navigation",
            ],
            "builtins": ["cdp.core.templatetags.cdp"],
        },
    }
]

DATABASES = {"default": ENV["database"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
if not PRODUCTION:
    # WhiteNoise warns about a missing STATIC_ROOT; outside production the files come from the finders.
    STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "cdp" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# Uploads above this size stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 5_242_880

CACHES = (
    {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": ENV["redis_url"]}}
    if ENV["redis_url"]
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)

# --- Security --------------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = ENV["secure_ssl_redirect"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = ENV["hsts_seconds"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
# Preloading is a commitment for every subdomain, so it is opt-in (SECURE_HSTS_PRELOAD=1).
SECURE_HSTS_PRELOAD = ENV["hsts_preload"]
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
X_FRAME_OPTIONS = "DENY"
# The same strict policy everywhere, so that development shows what production would block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- API -------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cdp.core.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["cdp.core.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "cdp.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cdp.core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CDP API",
    "DESCRIPTION": "REST API of the Customer Data Platform. Token auth: `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI and ReDoc come from drf-spectacular-sidecar's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for a choice set that several fields or serializers share. Dotted paths, imported only when the
    # schema is generated (like INSTALLED_APPS, a string is no import of an app).
    "ENUM_NAME_OVERRIDES": {
        "PlanModeEnum": "ingestion.models.plans.TrackingPlan.Mode",  # .mode and .unplanned
        "SourceKindEnum": "ingestion.models.sources.Source.Kind",  # Source, SourceCreate, PatchedSource
        "PrivacyRequestKindEnum": "consent.models.DataSubjectRequest.Kind",  # PrivacyRequest, PrivacyRequestCreate
        "PrivacyRequestStatusEnum": "consent.models.DataSubjectRequest.Status",
        "ConsentStatusEnum": "consent.models.ConsentRecord.Status",  # ConsentRecord, ConsentRecordCreate
    },
}

# --- Celery ----------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = ENV["broker_url"]
CELERY_RESULT_BACKEND = ENV["result_backend"]
# Without a broker the embedded default runs every task eagerly, in-process.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Queues, routes and the beat schedule live in cdp/celery.py.

# --- Logging ---------------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_pii": {"()": "cdp.core.logging.RedactPII"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_pii"]},
    },
    "root": {"handlers": ["console"], "level": ENV["log_level"]},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

DEFAULT_FROM_EMAIL = ENV["default_from_email"]
# The key of the erasure suppression list's hashes (consent.suppression); empty: derived from SECRET_KEY.
CDP_SUPPRESSION_KEY = ENV["suppression_key"]
# The keys of encryption at rest (cdp.core.crypto), newest first: CDP_ENCRYPTION_KEYS, in the embedded default a key
# generated into var/. Never derived from SECRET_KEY, so rotating one does not lose the other.
CDP_ENCRYPTION_KEYS = ENV["encryption_keys"]
# Internal networks destinations may reach (activation.destinations.network); by default public addresses only.
CDP_DESTINATION_ALLOWED_NETWORKS = ENV["destination_allowed_networks"]
# The churn model: days without an order that count as churned (profiles.services.insights_churn).
INSIGHTS_CHURN_HORIZON_DAYS = ENV["churn_horizon_days"]
